"""Memory and run-time requests of the per-item rules (radflow.plan.resources)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from radflow.plan import resources as rsc

CROPPING_PARAMS = ("setting: {resampledPixelSpacing: [1, 1, 1], padDistance: 10}\n"
                   "imageType: {Original: {}, LoG: {sigma: [1.0]}, Wavelet: {}}\n")
WHOLE_IMAGE_PARAMS = "setting: {binWidth: 25}\nimageType: {Original: {}, Wavelet: {}}\n"
ORIGINAL_ONLY_PARAMS = "setting: {binWidth: 25}\nimageType: {Original: {}}\n"


def _header_only_nifti(path: Path, shape: tuple[int, int, int],
                       zooms: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Path:
    """A NIfTI file with a header and no voxel data: sizes are read from headers only."""
    header = nib.Nifti1Header()
    header.set_data_dtype(np.float32)
    header.set_data_shape(shape)
    header.set_zooms(zooms)
    header["vox_offset"] = 352
    path.write_bytes(header.binaryblock + b"\0" * 4)
    return path


def _pair(tmp_path: Path, shape: tuple[int, int, int], n_voxels: int = 5000,
          zooms: tuple[float, float, float] = (0.75, 0.75, 1.0)) -> Path:
    image = _header_only_nifti(tmp_path / f"img{shape[0]}.nii", shape, zooms)
    record = tmp_path / f"pair{shape[0]}.json"
    record.write_text(json.dumps({"pair_id": "p" + "0" * 16, "image": str(image),
                                  "n_voxels": n_voxels}))
    return record


def _params(tmp_path: Path, text: str, name: str = "params.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("model_mb", "floor", "expected"), [
    (100, 1000, 1000),      # below the floor
    (1000, 500, 1500),      # x1.5
    (1001, 500, 1750),      # rounded up to 250 MB
    (0, 0, 0),
])
def test_mem_request(model_mb, floor, expected) -> None:
    assert rsc.mem_request(model_mb, floor) == expected


@pytest.mark.parametrize(("model_s", "floor", "expected"), [
    (5, 10, 10), (600, 10, 30), (61, 1, 4), (20, 1, 1)])
def test_runtime_request(model_s, floor, expected) -> None:
    assert rsc.runtime_request(model_s, floor) == expected


# (model, voxels, measured peak MB, measured wall s): the measurements the models are fitted to
# (see radflow.plan.resources). A request must cover the measurement and not waste more than 3x.
MEASURED = [
    (rsc.CONVERT, 512 * 512 * 300, 1560, 42),
    (rsc.EXTRACT_CROPPED, 64 * 64 * 36, 300, 2),
    (rsc.EXTRACT_CROPPED, 256 * 256 * 150, 430, 3),
    (rsc.EXTRACT_CROPPED, 512 * 512 * 300, 1570, 26),
    (rsc.EXTRACT_FULL_IMAGE, 256 * 256 * 150, 1090, 16),
    (rsc.EXTRACT_FULL_IMAGE, 512 * 512 * 300, 6790, 112),
]


@pytest.mark.parametrize(("model", "voxels", "peak_mb", "wall_s"), MEASURED)
def test_requests_cover_the_measurements(model, voxels, peak_mb, wall_s) -> None:
    mem = rsc.mem_request(model.mem_mb(voxels), 0)
    assert peak_mb <= mem <= 3 * peak_mb + rsc.MEM_STEP_MB
    assert rsc.runtime_request(model.seconds(voxels), 0) * 60 >= wall_s


def test_extract_asks_more_for_a_full_ct_than_for_a_crop(tmp_path) -> None:
    params = _params(tmp_path, CROPPING_PARAMS)
    crop = _pair(tmp_path, (64, 64, 36))
    full_ct = _pair(tmp_path, (512, 512, 300))
    small = rsc.extract_mem_mb(str(crop), str(params), floor_mb=250)
    large = rsc.extract_mem_mb(str(full_ct), str(params), floor_mb=250)
    assert small == 500 and large == 2500
    assert rsc.extract_runtime(str(crop), str(params), floor_min=1) == 1
    assert rsc.extract_runtime(str(full_ct), str(params), floor_min=1) >= 2


def test_extract_whole_image_filters_cost_more_than_cropped(tmp_path) -> None:
    full_ct = _pair(tmp_path, (512, 512, 300))
    cropped = rsc.extract_mem_mb(str(full_ct), str(_params(tmp_path, CROPPING_PARAMS, "a.yaml")))
    whole = rsc.extract_mem_mb(str(full_ct), str(_params(tmp_path, WHOLE_IMAGE_PARAMS, "b.yaml")))
    original = rsc.extract_mem_mb(str(full_ct),
                                  str(_params(tmp_path, ORIGINAL_ONLY_PARAMS, "c.yaml")))
    assert whole >= 10000 > cropped and original == cropped
    # Laws image types are filters on the whole image too, even with an Original-only file.
    laws = rsc.extract_mem_mb(str(full_ct), str(tmp_path / "c.yaml"), custom_filters=True)
    assert laws == whole


def test_extract_large_roi_adds_its_filtered_box(tmp_path) -> None:
    params = _params(tmp_path, CROPPING_PARAMS)
    small_roi = _pair(tmp_path, (256, 256, 150), n_voxels=1000)
    record = json.loads(small_roi.read_text())
    record["n_voxels"] = 20_000_000  # an organ-sized ROI: a 50-million-voxel box at 1 mm
    big_roi = tmp_path / "big_roi.json"
    big_roi.write_text(json.dumps(record))
    assert (rsc.extract_mem_mb(str(big_roi), str(params))
            > rsc.extract_mem_mb(str(small_roi), str(params)))


def test_extract_families_add_their_cost_per_image_voxel(tmp_path) -> None:
    """Issue 15: radflow's own families run on the image as converted (a binary mask of the
    whole image per pair): a full CT asks for their measured cost (+236 MB model, 1.5 x)."""
    params = _params(tmp_path, CROPPING_PARAMS)
    full_ct = _pair(tmp_path, (512, 512, 300))
    plain = rsc.extract_mem_mb(str(full_ct), str(params), floor_mb=0)
    with_families = rsc.extract_mem_mb(str(full_ct), str(params), families=True, floor_mb=0)
    assert with_families - plain == 250  # 3 MB x 78.6 Mvoxel x 1.5, in steps of 250 MB
    assert (rsc.extract_runtime(str(full_ct), str(params), families=True, floor_min=0)
            >= rsc.extract_runtime(str(full_ct), str(params), floor_min=0))
    assert (rsc.extract_priority(str(full_ct), str(params), families=True)
            > rsc.extract_priority(str(full_ct), str(params)))


def test_config_floor_wins_for_small_images(tmp_path) -> None:
    pair = _pair(tmp_path, (64, 64, 36))
    params = _params(tmp_path, CROPPING_PARAMS)
    assert rsc.extract_mem_mb(str(pair), str(params), floor_mb=4000) == 4000
    assert rsc.extract_runtime(str(pair), str(params), floor_min=60) == 60


def test_missing_input_means_evaluate_later(tmp_path) -> None:
    """Snakemake turns a FileNotFoundError naming an input into <TBD> and asks again later."""
    missing = str(tmp_path / "pair.json")
    with pytest.raises(FileNotFoundError) as err:
        rsc.extract_mem_mb(missing, str(_params(tmp_path, CROPPING_PARAMS)))
    assert err.value.filename == missing
    with pytest.raises(FileNotFoundError):
        rsc.pair_mem_mb(str(tmp_path / "sidecar.json"))


def test_unreadable_sizes_give_the_floor(tmp_path) -> None:
    record = tmp_path / "pair.json"
    record.write_text(json.dumps({"image": str(tmp_path / "gone.nii.gz"), "n_voxels": 10}))
    params = _params(tmp_path, CROPPING_PARAMS)
    assert rsc.extract_mem_mb(str(record), str(params), floor_mb=1234) == 1234
    assert rsc.extract_runtime(str(record), str(params), floor_min=7) == 7
    (tmp_path / "broken.nii").write_bytes(b"not a nifti")
    assert rsc.image_voxels(tmp_path / "broken.nii") is None


def test_unreadable_params_assume_the_expensive_plan(tmp_path) -> None:
    plan = rsc.extract_plan(tmp_path / "none.yaml")
    assert plan == rsc.ExtractPlan(crops=False, filters=True, resampled_mm3=None)
    assert rsc.extract_plan(_params(tmp_path, CROPPING_PARAMS)) == rsc.ExtractPlan(
        crops=True, filters=True, resampled_mm3=1.0)
    assert not rsc.extract_plan(_params(tmp_path, ORIGINAL_ONLY_PARAMS, "o.yaml")).filters


def _series_tsv(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    lines = ["case_id\tseries_key\trows\tcols\tslices"]
    lines += [f"c000000000001\t{key}\t{r}\t{c}\t{s}" for key, r, c, s in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_convert_reads_the_series_size_from_the_crawl_table(tmp_path) -> None:
    table = _series_tsv(tmp_path / "series.tsv", [("sbig", "512", "512", "300"),
                                                  ("ssmall", "64", "64", "36"),
                                                  ("sfile", "", "", "")])
    assert rsc.series_voxels(table, "sbig") == 512 * 512 * 300
    assert rsc.convert_mem_mb(str(table), "sbig", floor_mb=500) == 2500
    assert rsc.convert_mem_mb(str(table), "ssmall", floor_mb=500) == 500
    assert rsc.convert_runtime(str(table), "sbig", floor_min=1) == 3
    # Not in the table: the floor; a sheet file: its NIfTI header.
    assert rsc.convert_mem_mb(str(table), "snone", floor_mb=777) == 777
    nifti = _header_only_nifti(tmp_path / "img.nii", (512, 512, 300))
    source = tmp_path / "sfile.json"
    source.write_text(json.dumps({"series_key": "sfile", "files": [str(nifti)]}))
    assert rsc.convert_mem_mb(str(table), "sfile", str(source), floor_mb=500) == 2500
    assert rsc.convert_mem_mb(str(tmp_path / "no.tsv"), "sbig", floor_mb=321) == 321


def test_series_table_is_read_again_when_it_changes(tmp_path) -> None:
    table = _series_tsv(tmp_path / "series.tsv", [("s1", "10", "10", "10")])
    assert rsc.series_voxels(table, "s1") == 1000
    _series_tsv(table, [("s1", "20", "10", "10"), ("s2", "1", "1", "1")])
    assert rsc.series_voxels(table, "s1") == 2000


def test_pair_reads_the_image_grid_from_the_sidecar(tmp_path) -> None:
    sidecar = tmp_path / "image.json"
    sidecar.write_text(json.dumps({"grid": {"size": [512, 512, 300]}}))
    assert rsc.pair_mem_mb(str(sidecar), floor_mb=500) == 1500
    assert rsc.pair_runtime(str(sidecar), floor_min=1) == 1
    sidecar.write_text(json.dumps({"status": "failed:unreadable-image"}))
    assert rsc.pair_mem_mb(str(sidecar), floor_mb=500) == 500
    assert rsc.pair_mem_mb(None, floor_mb=600) == 600


def test_merge_scales_with_its_inputs() -> None:
    assert rsc.merge_mem_mb(0.2) == 2000                 # the demo: the floor
    assert rsc.merge_mem_mb(50) == 6500                  # ~2000 pairs of features
    assert rsc.merge_runtime(50) == 15 and rsc.merge_runtime(1000) == 52


def test_extract_unit_holds_the_image_once_and_adds_the_rois_times(tmp_path) -> None:
    """A unit (all ROIs of one image in one job): memory of its largest pair, time of all."""
    params = _params(tmp_path, CROPPING_PARAMS)
    one = _pair(tmp_path, (512, 512, 300), n_voxels=1000)
    record = json.loads(one.read_text())
    records = []
    for i, n_voxels in enumerate((1000, 2_000_000, 1000)):
        path = tmp_path / f"roi{i}.json"
        path.write_text(json.dumps({**record, "n_voxels": n_voxels}))
        records.append(str(path))
    alone = [rsc.extract_mem_mb(r, str(params), floor_mb=0) for r in records]
    assert rsc.extract_mem_mb(records, str(params), floor_mb=0) == max(alone)
    times = [rsc.extract_runtime(r, str(params), floor_min=0) for r in records]
    unit_time = rsc.extract_runtime(records, str(params), floor_min=0)
    assert max(times) < unit_time <= sum(times)
    assert rsc.extract_mem_mb([str(one)], str(params)) == rsc.extract_mem_mb(str(one), str(params))


def test_inputs_mb_sums_the_files_that_exist(tmp_path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 2**20)
    (tmp_path / "b").write_bytes(b"x" * 2**19)
    paths = [tmp_path / "a", str(tmp_path / "b"), tmp_path / "missing"]
    assert rsc.inputs_mb(paths) == 1.5
    assert rsc.inputs_mb([]) == 0.0
