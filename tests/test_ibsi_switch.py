"""``extract.ibsi: true``: the extract stage runs the IBSI conformance script's code path.

The digital phantom (``$RADFLOW_TESTDATA/ibsi1_digital_phantom``) goes through the stage's
per-pair function (:func:`radflow.extract.extract_pair`) and the in-memory extractor with the
switch on; their values must be the conformance script's
(:func:`radflow.ibsi.phantoms.radflow_features`) for the same configuration. A small CT-like
stand-in checks the resampling path (IBSI interpolation, rounding, range lower bound as bin
origin) against the script's configuration C.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from radflow.errors import ConfigError
from radflow.extract import extract_pair, feature_families
from radflow.extract.in_memory import InMemoryExtractor
from radflow.extract.params_set import unit_params
from radflow.ibsi.mode import ibsi_mode
from radflow.ibsi.phantoms import CT_CONFIGURATIONS, DIGITAL, radflow_features, read_phantom
from radflow.ibsi.resample import Interpolator, ResampleSpec, resample_ibsi
from radflow.io.nifti import read_image, voxel_hash
from radflow.params_sets import ParamsChoice, params_sets, unit_choice
from radflow.settings import ExtractSettings, from_mapping

PYRADIOMICS_CLASSES = ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")


def _params_file(folder: Path, setting: dict[str, Any], name: str = "params.yaml",
                 image_type: dict[str, Any] | None = None) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump({"setting": setting,
                                    "imageType": image_type or {"Original": {}},
                                    "featureClass": {c: [] for c in PYRADIOMICS_CLASSES}}),
                    encoding="utf-8")
    return path


def _pair(image: Path, mask: Path) -> dict[str, Any]:
    return {"pair_id": "p1", "case_id": "c1", "image_key": "img1", "mask_key": "msk1",
            "roi": "roi", "label": 1, "status": "ok", "image": str(image), "mask": str(mask),
            "image_hash": voxel_hash(read_image(image)), "mask_hash": voxel_hash(read_image(mask))}


def _choice(ibsi: bool, modality: str = "") -> ParamsChoice:
    return ParamsChoice(modality=modality, key="all", file="params.yaml", ibsi=ibsi)


def _values(table: Any) -> dict[tuple[str, str], float]:
    return {(c, f): float(v) for t, c, f, v in
            table[["image_type", "feature_class", "feature", "value"]].itertuples(index=False)
            if t == "original"}


def _digital_setting(aggregation: str) -> dict[str, Any]:
    """The digital phantom's configuration as a user's params file (README, "Digital phantom")."""
    return {"binWidth": 1, "distances": [1], "gldm_a": 0, "force2D": aggregation == "2.5D",
            "force2Ddimension": 0}


@pytest.mark.testdata
@pytest.mark.parametrize("aggregation", ["3D", "2.5D"])
def test_the_stage_in_ibsi_mode_gives_the_conformance_values(testdata: Path, tmp_path: Path,
                                                              aggregation: str) -> None:
    folder = testdata / "ibsi1_digital_phantom"
    pair = _pair(folder / "image" / "phantom.nii.gz", folder / "mask" / "mask.nii.gz")
    params = _params_file(tmp_path, _digital_setting(aggregation))
    table, status = extract_pair(pair, params, choice=_choice(True))
    assert status["status"] == "ok", status
    stage = _values(table)
    script = radflow_features(DIGITAL, *read_phantom(folder, ct=False))
    compared = 0
    for (cls, feature), value in stage.items():
        key = (aggregation if cls not in ("shape", "firstorder") else "", cls, feature)
        if key in script:
            assert value == script[key] or (math.isnan(value) and math.isnan(script[key])), (
                cls, feature)
            compared += 1
    # every non-deprecated PyRadiomics feature with an IBSI code: shape and first-order once,
    # texture for this aggregation
    assert compared >= 100
    assert stage[("firstorder", "Kurtosis")] == script[("", "firstorder", "Kurtosis")]
    codes = dict(zip(zip(table["feature_class"], table["feature"], strict=True),
                     table["ibsi_code"], strict=True))
    assert codes[("firstorder", "Kurtosis")] == "IPH6"
    assert codes[("shape", "MinorAxisLength")] == "P9VJ"
    assert set(table["params_set"]) == {"all:params.yaml+ibsi"}
    assert set(table["qc"]) == {""}


@pytest.mark.testdata
def test_ibsi_mode_against_off_kurtosis_axes_hash(testdata: Path, tmp_path: Path) -> None:
    folder = testdata / "ibsi1_digital_phantom"
    pair = _pair(folder / "image" / "phantom.nii.gz", folder / "mask" / "mask.nii.gz")
    params = _params_file(tmp_path, _digital_setting("3D"))
    on, _ = extract_pair(pair, params, choice=_choice(True))
    off, _ = extract_pair(pair, params, choice=_choice(False))
    v_on, v_off = _values(on), _values(off)
    assert v_on[("firstorder", "Kurtosis")] == v_off[("firstorder", "Kurtosis")] - 3.0
    n = v_off[("shape", "VoxelVolume")] / math.prod(read_image(pair["image"]).GetSpacing())
    for axis in ("MajorAxisLength", "MinorAxisLength", "LeastAxisLength"):
        assert v_on[("shape", axis)] == pytest.approx(
            v_off[("shape", axis)] * math.sqrt(n / (n - 1)), rel=1e-14)
    # the phantom's settings are already IBSI's (bin width 1 from the minimum 1): the rest is equal
    same = set(v_on) - {("firstorder", "Kurtosis"), ("shape", "MajorAxisLength"),
                        ("shape", "MinorAxisLength"), ("shape", "LeastAxisLength")}
    assert all(v_on[k] == v_off[k] or (math.isnan(v_on[k]) and math.isnan(v_off[k]))
               for k in same)
    assert set(on["params_hash"]) != set(off["params_hash"])
    assert set(off["params_set"]) == {"all:params.yaml"}
    off_codes = set(off.loc[off["feature"] == "Kurtosis", "ibsi_code"])
    assert off_codes == {""}


@pytest.mark.testdata
def test_the_in_memory_extractor_honours_the_switch(testdata: Path, tmp_path: Path) -> None:
    folder = testdata / "ibsi1_digital_phantom"
    pair = _pair(folder / "image" / "phantom.nii.gz", folder / "mask" / "mask.nii.gz")
    params = _params_file(tmp_path, _digital_setting("3D"))
    table, _ = extract_pair(pair, params, choice=_choice(True))
    rows = InMemoryExtractor(params, choice=_choice(True)).rows(
        read_image(pair["image"]), read_image(pair["mask"]), pair)
    assert [r[:10] + r[11:] for r in rows] == [
        r[:10] + r[11:] for r in table.itertuples(index=False, name=None)]
    assert np.allclose([r[10] for r in rows], table["value"].to_numpy(), rtol=0, atol=0,
                       equal_nan=True)


def _ct_stand_in(folder: Path) -> tuple[Path, Path]:
    """A small CT-like image (integer HU, 0.98 x 0.98 x 3 mm) and a spherical mask."""
    rng = np.random.default_rng(11)
    z, y, x = np.mgrid[0:10, 0:32, 0:32]
    ball = ((x - 16) * 0.98) ** 2 + ((y - 16) * 0.98) ** 2 + ((z - 5) * 3.0) ** 2 <= 10.0 ** 2
    hu = np.rint(np.where(ball, 40.0, -800.0) + rng.normal(0.0, 80.0, ball.shape))
    image = sitk.GetImageFromArray(hu.astype(np.int16))
    image.SetSpacing((0.98, 0.98, 3.0))
    mask = sitk.GetImageFromArray(ball.astype(np.uint8))
    mask.CopyInformation(image)
    for sub, img in (("image", image), ("mask", mask)):
        (folder / sub).mkdir(parents=True)
        sitk.WriteImage(img, str(folder / sub / f"{sub}.nii.gz"))
    return folder / "image" / "image.nii.gz", folder / "mask" / "mask.nii.gz"


def test_resampling_in_ibsi_mode_is_the_scripts_configuration_c(tmp_path: Path) -> None:
    image, mask = _ct_stand_in(tmp_path / "ct")
    setting = {"resampledPixelSpacing": [2.0, 2.0, 2.0], "interpolator": "sitkLinear",
               "resegmentRange": [-1000.0, 400.0], "binWidth": 25, "distances": [1],
               "gldm_a": 0, "force2D": False, "voxelArrayShift": 1000}
    params = _params_file(tmp_path, setting)
    table, status = extract_pair(_pair(image, mask), params, choice=_choice(True, "CT"))
    assert status["status"] == "ok", status
    stage = _values(table)
    script = radflow_features(CT_CONFIGURATIONS["C"], *read_phantom(tmp_path / "ct", ct=True))
    compared = 0
    for (cls, feature), value in stage.items():
        key = ("3D" if cls not in ("shape", "firstorder") else "", cls, feature)
        if key in script:
            assert value == script[key] or (math.isnan(value) and math.isnan(script[key])), (
                cls, feature)
            compared += 1
    assert compared >= 100
    off, _ = extract_pair(_pair(image, mask), params, choice=_choice(False, "CT"))
    # PyRadiomics' own resampling (another grid) gives another voxel count
    assert _values(off)[("shape", "VoxelVolume")] != stage[("shape", "VoxelVolume")]


def test_filtered_image_types_bin_from_their_minimum_and_are_a_deviation(tmp_path: Path) -> None:
    image, mask = _ct_stand_in(tmp_path / "ct")
    setting = {"resegmentRange": [-1000.0, 400.0], "binWidth": 25}
    params = _params_file(tmp_path, setting, image_type={"Original": {}, "LoG": {"sigma": [2.0]}})
    table, status = extract_pair(_pair(image, mask), params, choice=_choice(True, "CT"))
    # LoG responses lie below the range's lower bound: they bin from their own minimum
    assert status["status"] == "ok", status
    assert "log-sigma-2-0-mm-3D" in set(table["image_type"])
    assert set(table["qc"]) == {"ibsi-deviation-filters"}
    unit = unit_params(params, _choice(True, "CT"))
    assert unit.qc == ("ibsi-deviation-filters",)
    assert unit.hash != unit_params(params, _choice(False, "CT")).hash
    assert unit_params(params, _choice(False, "CT")).ibsi is None


def test_ibsi_mode_of_params() -> None:
    mode = ibsi_mode({"setting": {"resampledPixelSpacing": [1, 1, 2], "interpolator": "sitkBSpline",
                                  "resegmentRange": [-1000, 400], "binWidth": 25,
                                  "voxelArrayShift": 1000, "weightingNorm": "euclidean"}},
                     round_intensities=True)
    assert "resampledPixelSpacing" not in mode.setting and "weightingNorm" not in mode.setting
    assert mode.setting["voxelArrayShift"] == 0
    assert mode.resample is not None and mode.resample.spacing == (1.0, 1.0, 2.0)
    assert mode.resample.interpolator == "bspline" and mode.resample.round_intensities
    assert mode.bin_origin == -1000.0 and mode.deviations == ()
    assert ibsi_mode({"setting": {"binCount": 32}}).bin_origin is None


def test_the_switch_reaches_the_parameter_set_choice(tmp_path: Path) -> None:
    params = _params_file(tmp_path, {"binWidth": 25})
    for ibsi in (False, True):
        settings = from_mapping(ExtractSettings, {"params": str(params), "ibsi": ibsi},
                                section="extract")
        sets = params_sets(settings, tmp_path)
        choice = sets.choose("CT")
        assert choice.ibsi is ibsi
        assert choice.name == f"all:params.yaml{'+ibsi' if ibsi else ''}"
        mapping = unit_choice(sets, "CT")
        assert ("ibsi" in mapping) is ibsi  # unchanged job params when off
        assert from_mapping(ParamsChoice, mapping) == choice
    with pytest.raises(ConfigError, match=r"extract\.ibsi"):
        from_mapping(ExtractSettings, {"params": str(params), "ibsi": "yes"}, section="extract")


@pytest.mark.parametrize("interpolator", ["linear", "bspline"])
def test_resampling_around_the_roi_keeps_the_whole_grids_points(tmp_path: Path,
                                                               interpolator: Interpolator) -> None:
    image_path, mask_path = _ct_stand_in(tmp_path / "ct")
    image, labels = read_image(image_path), read_image(mask_path)
    big = sitk.ConstantPad(image, (20, 20, 4), (20, 20, 4), -1000)  # room around the ROI
    mask = sitk.ConstantPad(labels, (20, 20, 4), (20, 20, 4), 0)
    spec = ResampleSpec((1.3, 1.3, 2.0), interpolator, round_intensities=False)
    whole, whole_mask = resample_ibsi(big, mask, spec)
    part, part_mask = resample_ibsi(big, mask, spec, pad=3)
    assert all(p < w for p, w in zip(part.GetSize(), whole.GetSize(), strict=True))
    start = whole.TransformPhysicalPointToIndex(part.GetOrigin())
    assert np.allclose(whole.TransformIndexToPhysicalPoint(start), part.GetOrigin(), atol=1e-9)
    region = tuple(slice(a, a + n) for a, n in zip(start, part.GetSize(), strict=True))
    expected = sitk.GetArrayFromImage(whole[region])
    assert np.allclose(sitk.GetArrayFromImage(part), expected, rtol=0, atol=1e-9)
    assert np.array_equal(sitk.GetArrayFromImage(part_mask),
                          sitk.GetArrayFromImage(whole_mask[region]))
    assert sitk.GetArrayFromImage(part_mask).sum() == sitk.GetArrayFromImage(whole_mask).sum()
    # the ROI's box and 3 voxels on each side
    box = np.nonzero(sitk.GetArrayFromImage(part_mask))
    assert all(int(a.min()) >= 3 for a in box)


@pytest.mark.testdata
def test_the_size_familys_axis_lengths_are_corrected_as_in_the_script(testdata: Path,
                                                                       tmp_path: Path) -> None:
    folder = testdata / "ibsi1_digital_phantom"
    pair = _pair(folder / "image" / "phantom.nii.gz", folder / "mask" / "mask.nii.gz")
    params = _params_file(tmp_path, _digital_setting("3D"))
    semantic_only = feature_families({"fractal": {"enabled": False},
                                      "minkowski": {"enabled": False}})
    on, _ = extract_pair(pair, params, choice=_choice(True), families=semantic_only)
    off, _ = extract_pair(pair, params, choice=_choice(False), families=semantic_only)
    script = radflow_features(DIGITAL, *read_phantom(folder, ct=False), families=True)
    size_on, size_off = (t[t["feature_class"] == "size"] for t in (on, off))
    codes = dict(zip(size_on["feature"], size_on["ibsi_code"], strict=True))
    values = dict(zip(size_on["feature"], size_on["value"], strict=True))
    assert codes["MajorAxisLength"] == "TDIC" and codes["LeastAxisLength"] == "7J51"
    for axis in ("MajorAxisLength", "MinorAxisLength", "LeastAxisLength"):
        assert values[axis] == script[("", "size", axis)]
    assert set(size_off.loc[size_off["feature"] == "MajorAxisLength", "ibsi_code"]) == {""}
