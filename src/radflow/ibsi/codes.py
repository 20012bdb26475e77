"""IBSI 1 identifiers of radflow's features: the table ``codes.tsv`` and look-ups into it.

``codes.tsv`` (package data, one row per ``(feature_class, feature)`` radflow can emit; its header
comment cites the IBSI reference manual source every code was read from) is the one place the
codes live: PyRadiomics' classes and radflow's own families alike.

The code of a feature row (:func:`ibsi_code`) is

* the feature's IBSI identifier (``YEKZ``), and for the texture families (GLCM, GLRLM, GLSZM,
  NGLDM = PyRadiomics' GLDM, NGTDM), where IBSI gives reference values per aggregation method,
  ``/`` and the aggregation identifier (``ACUI/ITBB``): ``ITBB``/``KOBO`` with PyRadiomics'
  default 3-D texture, ``JJUI``/``62GR`` with its ``force2D`` (see :func:`texture_aggregation`);
* ``""`` when IBSI has no equivalent (the table's ``note`` says why), when the PyRadiomics
  settings make the value another quantity (column ``requires``: Energy with a
  ``voxelArrayShift``, an asymmetric GLCM, distance-weighted texture), and for a feature whose
  value needs a correction (column ``adjust``, applied by :func:`radflow.ibsi.ibsi_adjust`)
  before it is the IBSI feature, unless the caller says it was applied (``adjusted=True``).
"""

from __future__ import annotations

import csv
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from radflow.errors import ConfigError

#: Texture aggregation of PyRadiomics' matrices: ``"3D"`` (default) or ``"2.5D"`` (force2D).
Aggregation = Literal["3D", "2.5D"]

#: Columns of ``codes.tsv``, in order.
COLUMNS: tuple[str, ...] = ("feature_class", "feature", "ibsi_code", "ibsi_name", "ibsi_family",
                            "aggregation_code", "aggregation_code_force2d", "adjust", "requires",
                            "note", "source")
#: Corrections of the ``adjust`` column (see :func:`radflow.ibsi.preset.ibsi_adjust`).
ADJUSTMENTS: tuple[str, ...] = ("excess-kurtosis", "sample-covariance")
#: IBSI families whose reference values depend on the aggregation method.
TEXTURE_FAMILIES: frozenset[str] = frozenset({
    "Grey level co-occurrence based features", "Grey level run length based features",
    "Grey level size zone based features", "Neighbourhood grey tone difference based features",
    "Neighbouring grey level dependence based features"})
#: PyRadiomics' defaults of the settings ``requires`` and :func:`texture_aggregation` read.
PYRADIOMICS_DEFAULTS: dict[str, Any] = {"voxelArrayShift": 0, "symmetricalGLCM": True,
                                        "force2D": False, "weightingNorm": None}
#: Shape of an IBSI permanent identifier.
CODE_RE = re.compile(r"[0-9A-Z]{4}\Z")


@dataclass(frozen=True)
class CodeEntry:
    """One row of ``codes.tsv`` (see the module docstring and the file's header comment)."""

    feature_class: str
    feature: str
    ibsi_code: str
    ibsi_name: str
    ibsi_family: str
    aggregation_code: str
    aggregation_code_force2d: str
    adjust: str
    requires: str
    note: str
    source: str

    @property
    def texture(self) -> bool:
        """The IBSI family distinguishes aggregation methods."""
        return self.ibsi_family in TEXTURE_FAMILIES

    @property
    def required_settings(self) -> dict[str, Any]:
        """``requires`` as ``{setting: value}`` (PyRadiomics setting names, JSON values)."""
        out: dict[str, Any] = {}
        for item in filter(None, self.requires.split(";")):
            key, _, value = item.partition("=")
            out[key.strip()] = json.loads(value)
        return out

    def code(self, settings: Mapping[str, Any] | None = None, *, adjusted: bool = False) -> str:
        """The row's code (see :func:`ibsi_code`)."""
        if not self.ibsi_code or (self.adjust and not adjusted):
            return ""
        effective = {**PYRADIOMICS_DEFAULTS, **(settings or {})}
        if any(effective.get(k) != v for k, v in self.required_settings.items()):
            return ""
        if not self.texture:
            return self.ibsi_code
        aggregation = texture_aggregation(effective)
        if aggregation is None:
            return ""
        agg = self.aggregation_code if aggregation == "3D" else self.aggregation_code_force2d
        return f"{self.ibsi_code}/{agg}"


@functools.cache
def codes_table() -> dict[tuple[str, str], CodeEntry]:
    """``{(feature_class, feature): CodeEntry}`` from the packaged ``codes.tsv`` (read once).

    Raises
    ------
    ConfigError
        The file is malformed (wrong columns, a duplicate row, a code that is not four upper-case
        letters or digits, an unknown ``adjust`` value); the message names the line.
    """
    text = resources.files("radflow.ibsi").joinpath("codes.tsv").read_text(encoding="utf-8")
    return parse_codes(text)


def parse_codes(text: str) -> dict[tuple[str, str], CodeEntry]:
    """Parse the text of a ``codes.tsv`` (``#`` lines are comments); see :func:`codes_table`."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1)
             if line and not line.startswith("#")]
    if not lines or tuple(lines[0][1].split("\t")) != COLUMNS:
        raise ConfigError(f"codes.tsv: the first row after the comments must be the header "
                          f"{' '.join(COLUMNS)}")
    table: dict[tuple[str, str], CodeEntry] = {}
    for n, line in lines[1:]:
        cells = next(csv.reader([line], delimiter="\t", quoting=csv.QUOTE_NONE))
        if len(cells) != len(COLUMNS):
            raise ConfigError(f"codes.tsv line {n}: {len(cells)} cells, expected {len(COLUMNS)}")
        entry = CodeEntry(*cells)
        _check(entry, n)
        key = (entry.feature_class, entry.feature)
        if key in table:
            raise ConfigError(f"codes.tsv line {n}: {entry.feature_class} {entry.feature} is "
                              "listed twice")
        table[key] = entry
    return table


def _check(entry: CodeEntry, line: int) -> None:
    where = f"codes.tsv line {line} ({entry.feature_class} {entry.feature})"
    if entry.ibsi_code:
        if not CODE_RE.match(entry.ibsi_code):
            raise ConfigError(f"{where}: IBSI code {entry.ibsi_code!r} is not 4 upper-case "
                              "letters or digits")
        aggs = (entry.aggregation_code, entry.aggregation_code_force2d)
        if not all(CODE_RE.match(a) for a in aggs) or not entry.ibsi_name or not entry.source:
            raise ConfigError(f"{where}: a coded feature needs its IBSI name, both aggregation "
                              "codes and a source")
    elif not entry.note:
        raise ConfigError(f"{where}: a feature without IBSI code needs a note saying why")
    try:
        _ = entry.required_settings
    except ValueError as exc:  # json.JSONDecodeError
        raise ConfigError(f"{where}: requires {entry.requires!r}: expected key=value pairs "
                          "(JSON values) separated by ';'") from exc
    if entry.adjust not in ("", *ADJUSTMENTS):
        raise ConfigError(f"{where}: adjust {entry.adjust!r} is not one of "
                          f"{', '.join(ADJUSTMENTS)}")


def ibsi_code(feature_class: str, feature: str, *, settings: Mapping[str, Any] | None = None,
              adjusted: bool = False) -> str:
    """The ``ibsi_code`` of a feature row.

    Parameters
    ----------
    feature_class, feature
        radflow's names (``glcm``, ``Contrast``); the image type does not matter (a feature of a
        filtered image is the same IBSI feature, computed on the filter response).
    settings
        The PyRadiomics ``setting`` section the row was computed with (None: PyRadiomics'
        defaults; radflow's own families ignore it). It decides the texture aggregation
        (:func:`texture_aggregation`) and whether the row's ``requires`` hold (e.g. Energy needs
        ``voxelArrayShift: 0``).
    adjusted
        The value went through :func:`radflow.ibsi.ibsi_adjust`; without it, features that
        need its correction (Kurtosis, the axis lengths) get ``""``.

    Returns
    -------
    str
        ``"YEKZ"``, ``"ACUI/ITBB"``, or ``""``: IBSI has no equivalent, the settings or the
        missing correction make the value differ from the IBSI feature, or the table does not
        know the feature.
    """
    entry = codes_table().get((feature_class, feature))
    return entry.code(settings, adjusted=adjusted) if entry else ""


def texture_aggregation(settings: Mapping[str, Any] | None) -> Aggregation | None:
    """How PyRadiomics aggregates texture matrices under ``settings`` (its ``setting`` section).

    ``"3D"`` by default, ``"2.5D"`` with ``force2D: true`` (matrices of in-plane directions,
    accumulated over all slices); None when ``weightingNorm`` is set (PyRadiomics then merges
    distance-weighted matrices, which is none of IBSI's aggregation methods).
    """
    settings = {**PYRADIOMICS_DEFAULTS, **(settings or {})}
    if settings.get("weightingNorm") is not None:
        return None
    return "2.5D" if settings.get("force2D") else "3D"


__all__ = ["ADJUSTMENTS", "CODE_RE", "COLUMNS", "PYRADIOMICS_DEFAULTS", "Aggregation", "CodeEntry",
           "codes_table", "ibsi_code", "parse_codes", "texture_aggregation"]
