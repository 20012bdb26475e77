"""IBSI 1 conformance: radflow on the IBSI digital phantom, the README's table, the CT path.

Data: ``$RADFLOW_TESTDATA/ibsi1_digital_phantom`` (image, mask and the IBSI reference values
parsed from the manual; see its PROVENANCE.md). The CT phantom is not in the reference data: its
code path runs on a small synthetic stand-in with reference values made up for the test.
"""

from __future__ import annotations

import csv
import functools
import math
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from radflow.ibsi.conformance import (
    FAIL,
    KNOWN_CAUSES,
    NOT_COMPUTED,
    PASS,
    Result,
    main,
    read_results,
    results_text,
    run,
    within_tolerance,
)
from radflow.ibsi.phantoms import CT_CONFIGURATIONS, phantom_files
from radflow.ibsi.reference import (
    CSV_COLUMNS,
    read_manual_rst,
    read_reference_csv,
)
from radflow.ibsi.report import readme_block, render_section, replace_block
from radflow.ibsi.resample import ResampleSpec, ibsi_grid, intensity_mask, resample_ibsi

REPO = Path(__file__).resolve().parents[1]
REFERENCE = Path("reference_values/ibsi1_digital_phantom_reference_values_manual.csv")


def _phantom() -> Path:
    root = Path(os.environ.get("RADFLOW_TESTDATA", REPO.parent / "shared" / "data"))
    return root / "ibsi1_digital_phantom"


@functools.cache
def _digital() -> tuple[Result, ...]:
    return tuple(run("digital", _phantom()))


def _rounded3(x: float) -> float:
    """x to three significant digits, written independently of within_tolerance."""
    return float(f"{x:.3g}")


@pytest.mark.testdata
def test_every_reference_value_of_the_digital_phantom_is_reported(testdata: Path) -> None:
    refs = read_reference_csv(testdata / "ibsi1_digital_phantom" / REFERENCE)
    results = _digital()
    assert len(refs) == 482
    seen = {(r.ibsi_code, r.aggregation, r.reference) for r in results}
    assert {(r.ibsi_code, r.aggregation, r.value) for r in refs} <= seen
    assert {r.status for r in results} <= {PASS, FAIL, NOT_COMPUTED}
    assert all(r.reason for r in results if r.status != PASS)


@pytest.mark.testdata
def test_no_feature_marked_pass_is_outside_tolerance(testdata: Path) -> None:
    results = _digital()
    passed = [r for r in results if r.status == PASS]
    assert len(passed) >= 150  # PyRadiomics classes and radflow's families, 3D and 2.5D
    for r in passed:
        assert abs(_rounded3(r.value) - r.reference) <= r.tolerance + 1e-9 * abs(r.reference), r
    for r in results:
        if r.status == FAIL:
            assert not abs(_rounded3(r.value) - r.reference) <= r.tolerance, r
            assert r.reason != "not explained", r


@pytest.mark.testdata
def test_known_causes_are_not_stale(testdata: Path) -> None:
    """A listed cause must explain a value that really fails (cannot go stale)."""
    failing = {(r.configuration, *r.radflow_feature.split("_", 1)) for r in _digital()
               if r.status == FAIL}
    for config, cls, feature in KNOWN_CAUSES:
        if config in ("digital", "*"):
            assert any(k[1:] == (cls, feature) for k in failing), (config, cls, feature)


@pytest.mark.testdata
def test_the_readme_section_is_the_rendered_table(testdata: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme_block(readme, "digital") == render_section(_digital(), "digital"), (
        "README's IBSI block differs from the conformance run: python -m "
        "radflow.ibsi.conformance --phantom digital --path <ibsi1_digital_phantom> "
        "--readme README.md")


@pytest.mark.testdata
def test_the_command_writes_the_table(testdata: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "conformance_digital.tsv"
    readme = tmp_path / "README.md"
    start, end = "<!-- ibsi-conformance:start -->", "<!-- ibsi-conformance:end -->"
    readme.write_text(f"# x\n{start}\nold\n{end}\n", encoding="utf-8")
    assert main(["--phantom", "digital", "--path", str(testdata / "ibsi1_digital_phantom"),
                 "--out", str(out), "--readme", str(readme)]) == 0
    assert "digital: " in capsys.readouterr().out
    table = read_results(out)
    assert [(r.feature, r.status, r.radflow_feature) for r in table] == \
        [(r.feature, r.status, r.radflow_feature) for r in _digital()]
    assert readme_block(readme.read_text(encoding="utf-8"), "digital") == \
        render_section(table, "digital")
    assert main(["--phantom", "ct", "--path", str(tmp_path)]) == 2  # --reference missing


def test_within_tolerance_rounds_to_three_significant_digits() -> None:
    assert within_tolerance(2.1486, 2.15, 0.0)
    assert not within_tolerance(2.1449, 2.15, 0.0)
    assert within_tolerance(-0.35462, -0.355, 0.0)
    assert within_tolerance(358213.0, 358000.0, 5000.0)
    assert within_tolerance(352999.0, 358000.0, 5000.0)  # rounded: 353000
    assert not within_tolerance(352499.0, 358000.0, 5000.0)
    assert within_tolerance(0.0, 0.0, 0.0)
    assert not within_tolerance(math.nan, 1.0, 1.0)


def test_manual_tables_are_read(tmp_path: Path) -> None:
    rst = "\n".join([
        "Grey level size zone based features", "-----------------------------------", "",
        "Small zone emphasis", "^^^^^^^^^^^^^^^^^^^", "", "some text", "",
        "+--------------+------------------+------------+----------+-------------+",
        "| **data**     | **aggr. method** | **value**  | **tol.** | **consensus** |",
        "+==============+==================+============+==========+=============+",
        "| dig. phantom | 3D               | 0.255      | —        | very strong |",
        "| config. C    | 3D               | :math:`3.58 \\times 10^{5}` | 0.01 | strong |",
        "| config. D    | 3D               | —          | —        | moderate |",
        "Intensity-based statistical features", "------------------------------------",
        "10\\ :sup:`th` intensity percentile", "^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
        '  <p style="color:grey;font-style:italic;text-align:right">QG58</p>',
        "| config. A    | :math:`-`\\ 129   | 8          | strong          |",
    ])
    path = tmp_path / "03_Image_features.rst"
    path.write_text(rst, encoding="utf-8")
    refs = read_manual_rst(path)
    assert [(r.ibsi_code, r.data, r.aggregation, r.value, r.tolerance) for r in refs] == [
        ("5QRC", "dig. phantom", "3D", 0.255, 0.0), ("5QRC", "config. C", "3D", 3.58e5, 0.01),
        ("QG58", "config. A", "", -129.0, 8.0)]
    assert refs[2].feature == "10th intensity percentile"


def test_ibsi_interpolation_grid() -> None:
    """The manual's example: 4 voxels of 3 mm to 2 mm: 6 voxels, centres aligned."""
    image = sitk.Image(4, 4, 2, sitk.sitkFloat32)
    image.SetSpacing((3.0, 3.0, 5.0))
    image.SetOrigin((10.0, 20.0, 30.0))
    size, spacing, origin = ibsi_grid(image, (2.0, 2.0, 0.0))
    assert size == (6, 6, 2) and spacing == (2.0, 2.0, 5.0)
    assert origin == pytest.approx((10.0 - 0.5, 20.0 - 0.5, 30.0))
    assert ibsi_grid(image, (3.0, 3.0, 5.0))[2] == pytest.approx((10.0, 20.0, 30.0))


def test_ibsi_resampling_rounds_and_keeps_half_covered_mask_voxels() -> None:
    arr = np.arange(2 * 4 * 4, dtype=np.float64).reshape(2, 4, 4) * 10.3
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((3.0, 3.0, 5.0))
    roi = np.zeros((2, 4, 4), np.uint8)
    roi[:, 1:3, 1:3] = 1
    mask = sitk.GetImageFromArray(roi)
    mask.CopyInformation(image)
    out, out_mask = resample_ibsi(image, mask, ResampleSpec((2.0, 2.0, 0.0), "linear", True))
    values = sitk.GetArrayFromImage(out)
    assert values.shape == (2, 6, 6) and np.array_equal(values, np.rint(values))
    assert values.min() >= arr.min() and values.max() <= arr.max()
    new_roi = sitk.GetArrayFromImage(out_mask)
    assert set(np.unique(new_roi)) == {0, 1}
    # ROI voxel centres at x, y = 3 and 6 mm; new centres at -0.5, 1.5, ..., 9.5 mm: along one
    # axis the interpolated mask is 0, 0.5, 1, 1, 0.5, 0. Bilinear: 0.5 x 1 = 0.5 counts as
    # inside, the corners 0.5 x 0.5 = 0.25 do not
    assert new_roi[0].sum(axis=0).tolist() == [0, 2, 4, 4, 2, 0]
    assert new_roi[1].sum(axis=1).tolist() == [0, 2, 4, 4, 2, 0]
    same, same_mask = resample_ibsi(image, mask, ResampleSpec((3.0, 3.0, 5.0), "linear"))
    assert np.allclose(sitk.GetArrayFromImage(same), arr)
    assert np.array_equal(sitk.GetArrayFromImage(same_mask), roi)


def test_intensity_mask_intersects_range_and_outliers() -> None:
    arr = np.array([[[-2000.0, -900.0, 0.0, 10.0, 20.0, 5000.0]]])
    image = sitk.GetImageFromArray(arr)
    mask = sitk.GetImageFromArray(np.ones_like(arr, dtype=np.uint8))
    keep = sitk.GetArrayFromImage(intensity_mask(image, mask, value_range=(-1000.0, 400.0)))
    assert keep.tolist() == [[[0, 1, 1, 1, 1, 0]]]
    keep = sitk.GetArrayFromImage(intensity_mask(image, mask, value_range=(-1000.0, 400.0),
                                                 outlier_sigma=1.0))
    mean, sd = arr.mean(), arr.std()
    expected = (arr >= -1000) & (arr <= 400) & (np.abs(arr - mean) <= sd)
    assert keep.astype(bool).tolist() == expected.tolist()


def _ct_stand_in(folder: Path) -> None:
    """A small CT-like image (HU, 0.98 x 0.98 x 3 mm) and a spherical mask, IBSI repo layout."""
    rng = np.random.default_rng(7)
    z, y, x = np.mgrid[0:12, 0:40, 0:40]
    ball = ((x - 20) * 0.98) ** 2 + ((y - 20) * 0.98) ** 2 + ((z - 6) * 3.0) ** 2 <= 12.0 ** 2
    hu = np.where(ball, 40.0, -800.0) + rng.normal(0.0, 60.0, ball.shape)
    image = sitk.GetImageFromArray(hu.astype(np.float32))
    image.SetSpacing((0.98, 0.98, 3.0))
    mask = sitk.GetImageFromArray(ball.astype(np.uint8))
    mask.CopyInformation(image)
    for sub, img in (("image", image), ("mask", mask)):
        (folder / "nifti" / sub).mkdir(parents=True)
        sitk.WriteImage(img, str(folder / "nifti" / sub / f"{sub}.nii.gz"))


def test_ct_configurations_run_on_a_stand_in(tmp_path: Path) -> None:
    _ct_stand_in(tmp_path)
    assert phantom_files(tmp_path)[0].name == "image.nii.gz"
    ball = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "nifti/mask/mask.nii.gz")))
    volume_a = float(ball.sum()) * 0.98 * 0.98 * 3.0  # config A: no interpolation
    rows = [("Morphological features", "Volume (voxel counting)", "YEKZ", "config. A", "",
             f"{volume_a:.3g}", "", "strong"),
            ("Morphological features", "Volume (voxel counting)", "YEKZ", "config. C", "",
             "1", "", "strong"),  # made up: must fail
            ("Grey level co-occurrence based features", "Contrast", "ACUI", "config. D",
             "3D, merged", "7", "1", "strong"),  # an aggregation PyRadiomics lacks
            ("Grey level distance zone based features", "Zone percentage", "VIWW", "config. E",
             "3D", "0.1", "0.01", "strong")]  # a family PyRadiomics lacks
    reference = tmp_path / "reference.csv"
    with reference.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([CSV_COLUMNS, *rows])
    results = run("ct", tmp_path, reference=reference)
    assert [(r.configuration, r.radflow_feature, r.status) for r in results] == [
        ("A", "shape_VoxelVolume", PASS), ("C", "shape_VoxelVolume", FAIL),
        ("D", "glcm_Contrast", NOT_COMPUTED), ("E", "", NOT_COMPUTED)]
    assert results[0].value == pytest.approx(volume_a)
    assert results[1].reason == "not explained"
    assert "3D direction" in results[2].reason and "PyRadiomics has no" in results[3].reason
    assert set(CT_CONFIGURATIONS) == {"A", "B", "C", "D", "E"}
    only_b = run("ct", tmp_path, reference=reference, configurations=["B"])
    assert only_b == []  # no reference value of B in the made-up table
    assert read_results_roundtrip(results, tmp_path) == [
        (r.configuration, r.status, r.reason) for r in results]
    block = render_section(results, "ct")
    assert "| C | none (morphology, intensity, histogram) | 1 | 0 | 1 | 0 |" in block
    text = replace_block("a\n<!-- ibsi-conformance-ct:start -->\nx\n"
                         "<!-- ibsi-conformance-ct:end -->\nb\n", "ct", block)
    assert readme_block(text, "ct") == block


def read_results_roundtrip(results: list[Result], folder: Path) -> list[tuple[str, str, str]]:
    path = folder / "table.tsv"
    path.write_text(results_text(results), encoding="utf-8")
    return [(r.configuration, r.status, r.reason) for r in read_results(path)]
