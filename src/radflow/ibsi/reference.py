"""IBSI 1 reference values: read them from a table or from the IBSI manual's reST source.

Two inputs give the same :class:`ReferenceValue` rows:

* a CSV with the columns ``family, feature, ibsi_id, data, aggregation, value, tolerance,
  consensus`` (the ``..._manual.csv`` of radflow's reference data, one row per value);
* the IBSI manual's chapter source ``docs/03_Image_features.rst`` of github.com/theibsi/ibsi-doc
  (:func:`read_manual_rst`): every table "Reference values for ..." under a feature heading,
  with its rows ``dig. phantom`` and ``config. A`` ... ``config. E`` (the CT phantom).

Identifiers are corrected where the manual's current source is wrong or silent
(:data:`CODE_CORRECTIONS`), so the tables of radflow name each feature by one code.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from radflow.errors import InputFileError

#: Columns of the CSV form.
CSV_COLUMNS: tuple[str, ...] = ("family", "feature", "ibsi_id", "data", "aggregation", "value",
                                "tolerance", "consensus")

#: (family, feature) -> code, where the manual's reST source at theibsi/ibsi-doc b952e71 gives
#: none or a wrong one. Source: the same chapter at commit 83162bc (2019-08-13,
#: docs/04_Image_features.rst), which lists GPMT, OZ0C and 5QRC under these features; b952e71
#: prints 1PR8 (the code of the minimum discretised intensity) and GPMT one feature lower.
CODE_CORRECTIONS: dict[tuple[str, str], str] = {
    ("Intensity histogram features", "10th discretised intensity percentile"): "GPMT",
    ("Intensity histogram features", "90th discretised intensity percentile"): "OZ0C",
    ("Grey level size zone based features", "Small zone emphasis"): "5QRC",
}

_UNSET = ("", "—", "-")
_DATA_RE = re.compile(r"(dig\. phantom|config\. [A-E])\Z")
_SUP_RE = re.compile(r"\\ :sup:`([^`]*)`")
_CODE_RE = re.compile(r'text-align:right">([^<]*)</p>')
_UNDERLINE_RE = re.compile(r"([=\-^~'\"])\1{2,}\Z")


@dataclass(frozen=True)
class ReferenceValue:
    """One IBSI 1 reference value.

    Attributes
    ----------
    family, feature
        As the manual names them (reST markup removed: ``10th intensity percentile``).
    ibsi_code
        The feature's IBSI identifier (corrected, :data:`CODE_CORRECTIONS`).
    data
        ``dig. phantom`` or ``config. A`` ... ``config. E``.
    aggregation
        ``""`` or the manual's aggregation method (``3D, averaged``, ``2.5D``...).
    value, tolerance
        The value and its tolerance (0 where the manual prints "—": compare the value rounded
        to three significant digits).
    text
        The value as printed (to see its digits).
    consensus
        The IBSI consensus level.
    """

    family: str
    feature: str
    ibsi_code: str
    data: str
    aggregation: str
    value: float
    tolerance: float
    text: str
    consensus: str


def read_references(path: str | Path) -> list[ReferenceValue]:
    """Reference values from a CSV (``.csv``) or the manual's reST chapter (``.rst``)."""
    path = Path(path)
    if path.suffix.lower() == ".rst":
        return read_manual_rst(path)
    return read_reference_csv(path)


def read_reference_csv(path: str | Path) -> list[ReferenceValue]:
    """Reference values from a CSV with :data:`CSV_COLUMNS`.

    Raises
    ------
    InputFileError
        The file is missing, lacks a column or holds a value that is not a number
        (``bad-reference``); the message names the file and line.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise InputFileError(f"IBSI reference values {path}: {exc.strerror or exc}",
                             reason="bad-reference") from exc
    missing = [c for c in CSV_COLUMNS if rows and c not in rows[0]]
    if not rows or missing:
        raise InputFileError(f"IBSI reference values {path.name}: no rows, or missing columns "
                             f"{', '.join(missing)}", reason="bad-reference")
    out = []
    for n, row in enumerate(rows, 2):
        if _number_text(row["value"]) in _UNSET:
            continue
        out.append(_reference(row["family"], row["feature"], row["ibsi_id"], row["data"],
                              row["aggregation"], row["value"], row["tolerance"],
                              row["consensus"], f"{path.name} line {n}"))
    return out


def read_manual_rst(path: str | Path) -> list[ReferenceValue]:
    """Reference values from the IBSI manual's ``03_Image_features.rst`` (module docstring).

    Raises
    ------
    InputFileError
        The file cannot be read, holds no reference table, or a table row is malformed
        (``bad-reference``).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputFileError(f"IBSI manual {path}: {exc.strerror or exc}",
                             reason="bad-reference") from exc
    family = feature = code = ""
    out: list[ReferenceValue] = []
    for n, line in enumerate(lines):
        underline = _UNDERLINE_RE.match(line)
        if underline and n and lines[n - 1].strip() and not lines[n - 1].startswith(("+", "|")):
            title = lines[n - 1].strip()
            if line[0] == "-" and title.endswith("features") and title != "Aggregating features":
                family, feature, code = title, "", ""
            elif line[0] == "^":
                feature, code = _clean(title), ""
            continue
        found = _CODE_RE.search(line)
        if found and feature:
            code = found.group(1).strip()
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")] \
            if line.lstrip().startswith("|") else []
        if not cells or not _DATA_RE.match(cells[0]):
            continue
        if len(cells) == 4:
            cells.insert(1, "")
        if len(cells) != 5 or not feature:
            raise InputFileError(f"IBSI manual {path.name} line {n + 1}: a reference row needs "
                                 "data, [aggregation], value, tolerance, consensus under a "
                                 "feature heading", reason="bad-reference")
        data, aggregation, value, tolerance, consensus = cells
        if _number_text(value) in _UNSET:  # "An unset value (—) indicates the lack of a
            continue                       # reference value" (the manual)
        out.append(_reference(family, feature, code, data, aggregation, value, tolerance,
                              consensus, f"{path.name} line {n + 1}"))
    if not out:
        raise InputFileError(f"IBSI manual {path.name}: no reference values found",
                             reason="bad-reference")
    return out


def _reference(family: str, feature: str, code: str, data: str, aggregation: str, value: str,
               tolerance: str, consensus: str, where: str) -> ReferenceValue:
    feature = _clean(feature)
    code = CODE_CORRECTIONS.get((family, feature), code)
    text = _number_text(value)
    try:
        number = float(text)
        tol = 0.0 if _number_text(tolerance) in _UNSET else float(_number_text(tolerance))
    except ValueError as exc:
        raise InputFileError(f"IBSI reference values {where}: {value!r} / {tolerance!r} is not "
                             "a number", reason="bad-reference") from exc
    return ReferenceValue(family, feature, code, data, aggregation, number, tol, text,
                          consensus)


def _clean(name: str) -> str:
    """Feature name without reST markup (``10\\ :sup:`th` x`` -> ``10th x``)."""
    return " ".join(_SUP_RE.sub(r"\1", name).split())


def _number_text(text: str) -> str:
    """``:math:`-`\\ 129`` -> ``-129``; ``:math:`3.58 \\times 10^{5}``` -> ``3.58e5``."""
    text = text.strip().replace(":math:", "").replace("`", "").replace("\\ ", "")
    text = re.sub(r"\s*\\times\s*10\^\{?(-?\d+)\}?", r"e\1", text)
    return text.replace(" ", "").replace("−", "-")


__all__ = ["CODE_CORRECTIONS", "CSV_COLUMNS", "ReferenceValue", "read_manual_rst",
           "read_reference_csv", "read_references"]
