"""IBSI 1 conformance of radflow: every reference value of a phantom against radflow's value.

Run it as ``python -m radflow.ibsi.conformance --phantom digital|ct --path FOLDER`` (README,
"IBSI conformance"). For each configuration the manual defines for the phantom
(:mod:`radflow.ibsi.phantoms`) radflow computes its features in IBSI mode, and every reference
value of that configuration becomes one :class:`Result` per radflow feature with its IBSI code
(or one ``not computed`` row when radflow has none, or not for that aggregation method):

``pass``
    the value rounded to three significant digits is within the tolerance of the reference
    (0 where the manual prints "—"): the rule of the IBSI reference implementation's tests
    (MIRP, ``test/ibsi_1_test.py``, ``within_tolerance``);
``fail``
    outside; ``reason`` names the cause (:data:`KNOWN_CAUSES`, or "not explained");
``not computed``
    no radflow feature has the code, or PyRadiomics does not aggregate texture that way.

The table is written to ``results/ibsi/conformance_<phantom>.tsv``; :mod:`radflow.ibsi.report`
renders the README section from it.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from radflow.errors import ConfigError, RadflowError
from radflow.ibsi.codes import codes_table
from radflow.ibsi.phantoms import (
    CT_CONFIGURATIONS,
    DIGITAL,
    FAMILY_CLASSES,
    Configuration,
    Values,
    radflow_features,
    read_phantom,
)
from radflow.ibsi.reference import ReferenceValue, read_references
from radflow.io.atomic import write_text

PASS, FAIL, NOT_COMPUTED = "pass", "fail", "not computed"

#: The manual's aggregation methods -> (IBSI code, radflow's texture aggregation or None).
AGGREGATIONS: dict[str, tuple[str, str | None]] = {
    "": ("", ""),
    "2D, averaged": ("BTW3", None), "2D, slice-merged": ("SUJT", None),
    "2.5D, direction-merged": ("JJUI", "2.5D"), "2.5D, merged": ("ZW7Z", None),
    "3D, averaged": ("ITBB", "3D"), "3D, merged": ("IAZD", None),
    "2D": ("8QNN", None), "2.5D": ("62GR", "2.5D"), "3D": ("KOBO", "3D"),
}
#: Reference values of the digital phantom in radflow's reference data, below the phantom folder.
DIGITAL_REFERENCE = Path("reference_values/ibsi1_digital_phantom_reference_values_manual.csv")

#: (configuration or "*", feature_class, feature) -> why radflow's value is outside tolerance.
#: Keep causes that are understood; a listed cause whose feature passes is reported by the
#: tests (tests/test_ibsi_conformance.py), so the list cannot go stale.
KNOWN_CAUSES: dict[tuple[str, str, str], str] = {}

#: IBSI code -> why radflow has no value although PyRadiomics names the feature.
NOT_EMITTED: dict[str, str] = {
    "8S9J": "PyRadiomics' glcm Dissimilarity raises a DeprecationWarning instead of a value (it "
            "equals DifferenceAverage, TF7R)",
    "OEEB": "PyRadiomics' glcm SumVariance raises a DeprecationWarning instead of a value (it "
            "equals ClusterTendency, DG8W)",
    "5SPA": "PyRadiomics' gldm GrayLevelNonUniformityNormalized raises a DeprecationWarning "
            "instead of a value (it equals firstorder Uniformity, BJ5W)",
    "6XV8": "PyRadiomics' gldm DependencePercentage raises a DeprecationWarning instead of a "
            "value (always 1)",
}

_NOT_AGGREGATED = ("PyRadiomics aggregates texture per 3D direction (ITBB, KOBO) or, with "
                   "force2D, per in-plane direction over all slices (JJUI, 62GR) only")


@dataclass(frozen=True)
class Result:
    """One row of the conformance table (columns in field order)."""

    phantom: str
    configuration: str
    feature: str
    ibsi_code: str
    aggregation: str
    aggregation_code: str
    radflow_feature: str
    value: float
    reference: float
    tolerance: float
    status: str
    reason: str


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Result))


def within_tolerance(value: float, reference: float, tolerance: float) -> bool:
    """IBSI's rule: ``value`` rounded to 3 significant digits is within ``tolerance``."""
    if not math.isfinite(value):
        return False
    if value != 0.0:
        value = round(value, 2 - math.floor(math.log10(abs(value))))
    # 1e-12: the rounded value and the printed reference are both decimal-to-binary roundings
    return abs(value - reference) <= tolerance + 1e-12 * max(1.0, abs(reference))


def compare(phantom: str, config: Configuration, values: Values,
            references: Sequence[ReferenceValue]) -> list[Result]:
    """The results of one configuration (module docstring); references of other
    configurations are ignored."""
    table = codes_table()
    by_code: dict[str, list[tuple[str, str]]] = {}
    for (cls, feature), entry in table.items():
        if entry.ibsi_code:
            by_code.setdefault(entry.ibsi_code, []).append((cls, feature))
    out: list[Result] = []
    for ref in references:
        if ref.data != config.data:
            continue
        agg_code, aggregation = AGGREGATIONS.get(ref.aggregation, ("", None))
        base = (phantom, config.name, ref.feature, ref.ibsi_code, ref.aggregation, agg_code)
        candidates = [(cls, f) for cls, f in by_code.get(ref.ibsi_code, [])
                      if ("", cls, f) in values or any((a, cls, f) in values
                                                       for a in config.texture)]
        if not candidates:
            out.append(Result(*base, "", math.nan, ref.value, ref.tolerance, NOT_COMPUTED,
                              _missing_reason(ref, by_code.get(ref.ibsi_code, []))))
            continue
        for cls, feature in candidates:
            name = f"{cls}_{feature}"
            if aggregation is None or (aggregation and aggregation not in config.texture):
                out.append(Result(*base, name, math.nan, ref.value, ref.tolerance, NOT_COMPUTED,
                                  _NOT_AGGREGATED))
                continue
            value = values.get((aggregation or "", cls, feature), math.nan)
            ok = within_tolerance(value, ref.value, ref.tolerance)
            reason = "" if ok else _cause(config.name, cls, feature)
            out.append(Result(*base, name, value, ref.value, ref.tolerance,
                              PASS if ok else FAIL, reason))
    return out


def _cause(config: str, cls: str, feature: str) -> str:
    return (KNOWN_CAUSES.get((config, cls, feature)) or KNOWN_CAUSES.get(("*", cls, feature))
            or "not explained")


def _missing_reason(ref: ReferenceValue, coded: list[tuple[str, str]]) -> str:
    if ref.ibsi_code in NOT_EMITTED:
        return NOT_EMITTED[ref.ibsi_code]
    if coded and all(cls in FAMILY_CLASSES for cls, _ in coded):
        names = ", ".join(f"{c}_{f}" for c, f in coded)
        return (f"{names}: radflow's families measure the image as converted, not in the "
                "IBSI configurations (run on the digital phantom only)")
    return f"PyRadiomics has no such feature ({ref.family.lower()})"


def run(phantom: str, folder: str | Path, *, reference: str | Path | None = None,
        configurations: Sequence[str] = ()) -> list[Result]:
    """Conformance results of a phantom folder (module docstring).

    Parameters
    ----------
    phantom
        ``digital`` or ``ct``.
    folder
        The phantom folder (:func:`radflow.ibsi.phantoms.phantom_files`).
    reference
        Reference values (:func:`radflow.ibsi.reference.read_references`: CSV or the IBSI
        manual's ``03_Image_features.rst``); default for the digital phantom:
        :data:`DIGITAL_REFERENCE` below ``folder``. Required for ``ct``.
    configurations
        CT configurations to run (default all, ``A`` ... ``E``).
    """
    if phantom == "digital":
        configs = [DIGITAL]
        reference = reference or Path(folder) / DIGITAL_REFERENCE
    elif phantom == "ct":
        unknown = sorted(set(configurations) - set(CT_CONFIGURATIONS))
        if unknown:
            raise ConfigError(f"CT configuration(s) {', '.join(unknown)}: expected some of "
                              f"{', '.join(CT_CONFIGURATIONS)}")
        configs = [CT_CONFIGURATIONS[c] for c in (configurations or CT_CONFIGURATIONS)]
        if reference is None:
            raise ConfigError("the CT phantom needs --reference: the IBSI manual's "
                              "docs/03_Image_features.rst (github.com/theibsi/ibsi-doc) or a "
                              "CSV of reference values")
    else:
        raise ConfigError(f"phantom {phantom!r}: expected digital or ct")
    references = read_references(reference)
    image, mask = read_phantom(folder, ct=phantom == "ct")
    results: list[Result] = []
    for config in configs:
        values = radflow_features(config, image, mask, families=phantom == "digital")
        results += compare(phantom, config, values, references)
    return results


def results_text(results: Sequence[Result]) -> str:
    """The results as TSV text (header :data:`COLUMNS`; values with 6 significant digits)."""
    lines = ["\t".join(COLUMNS)]
    for r in results:
        cells = [f"{c:.6g}" if isinstance(c, float) else str(c) for c in astuple(r)]
        lines.append("\t".join("" if c == "nan" else c for c in cells))
    return "\n".join(lines) + "\n"


def read_results(path: str | Path) -> list[Result]:
    """Results from a TSV written by :func:`results_text`."""
    with Path(path).open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [Result(row["phantom"], row["configuration"], row["feature"], row["ibsi_code"],
                   row["aggregation"], row["aggregation_code"], row["radflow_feature"],
                   _float(row["value"]), _float(row["reference"]), _float(row["tolerance"]),
                   row["status"], row["reason"]) for row in rows]


def _float(text: str) -> float:
    return float(text) if text else math.nan


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m radflow.ibsi.conformance`` (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m radflow.ibsi.conformance",
        description="radflow's IBSI 1 conformance on the digital or the CT phantom")
    parser.add_argument("--phantom", choices=("digital", "ct"), required=True)
    parser.add_argument("--path", required=True, help="phantom folder: image/ and mask/ NIfTI "
                        "(or nifti/image, nifti/mask as in the IBSI data sets repository)")
    parser.add_argument("--reference", help="reference values: CSV, or the IBSI manual's "
                        "docs/03_Image_features.rst (required for ct)")
    parser.add_argument("--config", action="append", default=[], metavar="A-E",
                        help="CT configuration (repeatable; default: all)")
    parser.add_argument("--out", help="output table (default results/ibsi/conformance_"
                        "<phantom>.tsv)")
    parser.add_argument("--readme", help="also write the README section between the markers")
    args = parser.parse_args(argv)
    from radflow.ibsi.report import summary_text, update_readme  # imports this module

    try:
        results = run(args.phantom, args.path, reference=args.reference,
                      configurations=args.config)
        out = Path(args.out or f"results/ibsi/conformance_{args.phantom}.tsv")
        write_text(out, results_text(results))
        if args.readme:
            update_readme(args.readme, args.phantom, results)
    except RadflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary_text(results))
    print(f"table: {out}")
    return 0


__all__ = ["AGGREGATIONS", "COLUMNS", "FAIL", "KNOWN_CAUSES", "NOT_COMPUTED", "NOT_EMITTED", "PASS",
           "Result",
           "compare", "main", "read_results", "results_text", "run", "within_tolerance"]


if __name__ == "__main__":
    sys.exit(main())
