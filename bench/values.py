"""Feature values: radflow's copy of a sheet file vs the ``pyradiomics`` CLI on the file itself.

Not a test (``tests/test_values_cli.py`` is the test, through the whole workflow). Run from the
repository root::

    .venv/bin/python bench/values.py                  # the 5 PyRadiomics test cases
    .venv/bin/python bench/values.py --cases lung1    # one case

Data: ``$RADFLOW_TESTDATA/pyradiomics_testcases`` (NRRD images, int16, float64 geometry).
Params: ``config/pyradiomics.yaml`` (Original + LoG 1/2/3 mm + wavelet, 1 mm B-spline
resampling); Laws is radflow-only and not computed.

The CLI runs once in batch mode on the NRRD files (``pyradiomics batch.csv --param ... -f csv``).
radflow's extraction (:func:`radflow.radiomics_adapter.compute_features`, what the extract stage
runs) is then computed in this process on the volume a convert stage would hand it, for each of:

``float32 + NIfTI (radflow 0.1.0)``
    what radflow 0.1.0 wrote: the image cast to float32, image and mask written as NIfTI
    (float32 geometry) and read back;
``float32 only``
    the float32 cast, geometry exact (the cast alone);
``NIfTI geometry only``
    pixel type kept, image and mask written as NIfTI and read back (the geometry rounding alone);
``exact copy (.mha)``
    this version: :func:`radflow.convert.read_sheet_file` then
    :func:`radflow.io.volume_files.write_mha` and read back.

and every feature value is compared with the CLI's with ``==`` (NaN equals NaN). Printed per
variant: values compared, values that differ, values that differ by more than 1 %, and the largest
relative difference.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import SimpleITK as sitk

from radflow.convert import label_map, read_sheet_file
from radflow.io.nifti import read_image, write_nifti
from radflow.io.volume_files import write_mha
from radflow.radiomics_adapter import compute_features, load_params

REPO = Path(__file__).resolve().parents[1]
CASES = ("brain1", "brain2", "breast1", "lung1", "lung2")


def _data() -> Path:
    root = Path(os.environ.get("RADFLOW_TESTDATA", REPO.parent / "shared" / "data"))
    return root / "pyradiomics_testcases" / "images"


def cli_values(cases: list[str], params: Path, work: Path) -> dict[str, dict[str, float]]:
    """``{case: {"<image type>_<class>_<feature>": value}}`` from the ``pyradiomics`` CLI."""
    batch = work / "batch.csv"
    with batch.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Image", "Mask"])
        for case in cases:
            writer.writerow([_data() / f"{case}_image.nrrd", _data() / f"{case}_label.nrrd"])
    out = work / "cli.csv"
    exe = Path(sys.executable).with_name("pyradiomics")
    subprocess.run([str(exe), str(batch), "--param", str(params), "-f", "csv", "-o", str(out),
                    "--jobs", "2"], check=True, capture_output=True)
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    values = {}
    for row in rows:
        case = Path(row["Image"]).name.removesuffix("_image.nrrd")
        values[case] = {k: float(v) for k, v in row.items()
                        if k not in ("Image", "Mask") and not k.startswith("diagnostics_")}
    return values


def _through_nifti(image: sitk.Image, work: Path) -> sitk.Image:
    write_nifti(work / "v.nii.gz", image)
    return read_image(work / "v.nii.gz")


def _through_mha(image: sitk.Image, work: Path) -> sitk.Image:
    write_mha(work / "v.mha", image)
    return read_image(work / "v.mha")


def _variants(work: Path) -> dict[str, Callable[[str, str], sitk.Image]]:
    """``{name: f(case, role) -> volume handed to extraction}``."""
    def source(case: str, role: str) -> sitk.Image:
        path = _data() / f"{case}_{'image' if role == 'image' else 'label'}.nrrd"
        return read_sheet_file({"series_key": case, "role": role, "files": [str(path)]})

    def old(case: str, role: str) -> sitk.Image:
        img = source(case, role)
        return _through_nifti(sitk.Cast(img, sitk.sitkFloat32) if role == "image" else img, work)

    def cast_only(case: str, role: str) -> sitk.Image:
        img = source(case, role)
        return sitk.Cast(img, sitk.sitkFloat32) if role == "image" else img

    return {
        "float32 + NIfTI (radflow 0.1.0)": old,
        "float32 only": cast_only,
        "NIfTI geometry only": lambda c, r: _through_nifti(source(c, r), work),
        "exact copy (.mha)": lambda c, r: _through_mha(source(c, r), work),
    }


def compare(ours: dict[str, float], cli: dict[str, float]) -> tuple[int, int, int, float]:
    """(values, differ, differ by > 1 %, max relative difference) over the CLI's features."""
    differ = big = 0
    worst = 0.0
    for name, want in cli.items():
        got = ours[name]
        if got == want or (math.isnan(got) and math.isnan(want)):
            continue
        differ += 1
        rel = abs(got - want) / abs(want) if want else math.inf
        big += rel > 0.01
        worst = max(worst, rel)
    return len(cli), differ, big, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--params", type=Path, default=REPO / "config" / "pyradiomics.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cli = cli_values(args.cases, args.params, work)
        print(f"{'variant':34s} {'values':>7s} {'differ':>7s} {'>1 %':>6s} {'max rel':>9s}")
        for name, volume in _variants(work).items():
            totals = [0, 0, 0, 0.0]
            for case in args.cases:
                image, mask = volume(case, "image"), volume(case, "mask")
                table = compute_features(image, label_map(mask, case), params, label=1)
                ours = {f"{r.image_type}_{r.feature_class}_{r.feature}": r.value
                        for r in table.itertuples()}
                n, differ, big, worst = compare(ours, cli[case])
                totals = [totals[0] + n, totals[1] + differ, totals[2] + big,
                          max(totals[3], worst)]
            print(f"{name:34s} {totals[0]:7d} {totals[1]:7d} {totals[2]:6d} {totals[3]:9.3g}")


if __name__ == "__main__":
    main()
