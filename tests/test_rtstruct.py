"""RTSTRUCT: parsing, the documented rasterisation rule, and the STS_002 reference patient."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from mask_fixtures import (
    PATIENT,
    STUDY,
    convert_and_pair,
    dice_on_same_grid,
    index_points,
    square,
    write_ct,
)

from radflow.convert import convert_source
from radflow.crawl import crawl
from radflow.demo.synthetic_masks import ContourSpec, RoiSpec, contours_from_mask, write_rtstruct
from radflow.dicom.grid import Grid
from radflow.dicom.rtstruct import Contour, RoiContours, rasterise_roi, read_structure_set
from radflow.errors import DicomError, PairingError
from radflow.io.atomic import write_json
from radflow.io.nifti import read_image
from radflow.settings import CrawlSettings, GeometrySettings

KEY = b"0123456789abcdef0123456789abcdef"
GRID = Grid((8, 7, 4), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))


def _roi(*contours: tuple[list[tuple[float, float]], float] | Contour) -> RoiContours:
    items = [c if isinstance(c, Contour) else
             Contour("CLOSED_PLANAR", index_points(GRID, c[0], c[1])) for c in contours]
    return RoiContours(1, "GTV", tuple(items))


def _expected(cells: dict[int, list[tuple[slice, slice]]]) -> np.ndarray:
    out = np.zeros(GRID.shape, bool)
    for z, boxes in cells.items():
        for rows, cols in boxes:
            out[z, rows, cols] = True
    return out


@pytest.mark.parametrize("contours, cells", [
    # edges between voxel centres: the enclosed centres
    ([(square(0.5, 0.5, 3.5, 2.5), 1.0)], {1: [(slice(1, 3), slice(1, 4))]}),
    # centres exactly on the edges and vertices count as inside
    ([(square(1, 1, 3, 3), 2.0)], {2: [(slice(1, 4), slice(1, 4))]}),
    # a hole: the inner contour is removed (even-odd)
    ([(square(0.5, 0.5, 5.5, 5.5), 0.0), (square(1.5, 1.5, 4.5, 4.5), 0.0)],
     {0: [(slice(1, 2), slice(1, 6)), (slice(5, 6), slice(1, 6)),
          (slice(2, 5), slice(1, 2)), (slice(2, 5), slice(5, 6))]}),
    # an island inside the hole is inside again
    ([(square(0.5, 0.5, 5.5, 5.5), 0.0), (square(1.5, 1.5, 4.5, 4.5), 0.0),
      (square(2.5, 2.5, 3.5, 3.5), 0.0)],
     {0: [(slice(1, 2), slice(1, 6)), (slice(5, 6), slice(1, 6)),
          (slice(2, 5), slice(1, 2)), (slice(2, 5), slice(5, 6)), (slice(3, 4), slice(3, 4))]}),
    # nearest slice: z 1.4 -> slice 1, z 2.6 -> slice 3
    ([(square(0.5, 0.5, 1.5, 1.5), 1.4), (square(4.5, 4.5, 5.5, 5.5), 2.6)],
     {1: [(slice(1, 2), slice(1, 2))], 3: [(slice(5, 6), slice(5, 6))]}),
])
def test_rasterisation_rule(contours, cells) -> None:
    raster = rasterise_roi(_roi(*contours), GRID)
    np.testing.assert_array_equal(raster.mask, _expected(cells))
    assert not raster.qc


def test_even_odd_rule_within_one_self_intersecting_contour() -> None:
    # a pentagram: the central pentagon is crossed twice, so it is outside (even-odd)
    angles = np.radians(90 + 144 * np.arange(5))
    star = [(40 + 38 * np.cos(a), 40 + 38 * np.sin(a)) for a in angles]
    grid = Grid((81, 81, 1), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    roi = RoiContours(1, "star", (Contour("CLOSED_PLANAR", index_points(grid, star, 0.0)),))
    mask = rasterise_roi(roi, grid).mask[0]
    assert not mask[40, 40], "centre of a pentagram is outside by the even-odd rule"
    assert mask[70, 40]  # inside the tip at (x 40, y 78)


def test_open_point_and_degenerate_contours_are_skipped_and_counted() -> None:
    line = Contour("OPEN_PLANAR", index_points(GRID, [(0, 0), (3, 3)], 1.0))
    point = Contour("POINT", index_points(GRID, [(2, 2)], 1.0))
    short = Contour("CLOSED_PLANAR", index_points(GRID, [(0, 0), (3, 3)], 1.0))
    raster = rasterise_roi(_roi((square(0.5, 0.5, 1.5, 1.5), 1.0), line, point, short), GRID)
    assert raster.mask.sum() == 1
    assert raster.qc == {"open-contours-skipped": 1, "point-contours-skipped": 1,
                         "degenerate-contours": 1}
    assert RoiContours(2, "p", (point,)).exclusion == "point-roi"
    assert RoiContours(3, "o", (line, point)).exclusion == "open-contours"
    assert RoiContours(4, "e").exclusion == "empty-roi"


@pytest.mark.parametrize("where", ["off-slice", "in-plane"])
def test_contours_outside_the_image_fail_or_are_skipped(where) -> None:
    inside = (square(0.5, 0.5, 1.5, 1.5), 1.0)
    outside = ((square(0.5, 0.5, 1.5, 1.5), 3.6) if where == "off-slice"
               else (square(6.5, 0.5, 8.5, 1.5), 1.0))  # x beyond 7.5
    with pytest.raises(PairingError) as info:
        rasterise_roi(_roi(inside, outside), GRID, name="RTSTRUCT s1, ROI 1")
    assert info.value.reason == "roi-outside-image" and "RTSTRUCT s1, ROI 1" in str(info.value)
    raster = rasterise_roi(_roi(inside, outside), GRID, outside="skip")
    if where == "off-slice":
        assert raster.mask.sum() == 1
        assert raster.qc == {"contours-outside-image-skipped": 1}
    else:
        assert raster.mask.sum() == 2 and raster.mask[1, 1, 7]  # clipped to the grid
        assert raster.qc == {"contours-clipped": 1}
    # exactly half a slice beyond the last slice still belongs to it
    edge = rasterise_roi(_roi((square(0.5, 0.5, 1.5, 1.5), 3.49)), GRID)
    assert edge.mask[3].sum() == 1


def test_contour_across_slices_is_refused() -> None:
    tilted = index_points(GRID, square(0.5, 0.5, 2.5, 2.5), 1.0)
    tilted[2, 2] += 1.0  # one point half a slice higher
    with pytest.raises(PairingError) as info:
        rasterise_roi(_roi(Contour("CLOSED_PLANAR", tilted)), GRID)
    assert info.value.reason == "contour-not-in-slice-plane"


def test_traced_masks_round_trip_exactly_on_an_oblique_grid() -> None:
    """contours_from_mask + the rule give any mask back (holes, diagonal touches), any grid."""
    rng = np.random.default_rng(3)
    direction = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    direction *= np.sign(np.linalg.det(direction))
    grid = Grid((23, 19, 6), (0.7, 0.9, 2.5), (12.0, -40.0, 7.0),
                tuple(float(v) for v in direction.ravel()))
    mask = rng.random(grid.shape) < 0.45
    mask[:, 0, :] = False
    contours = contours_from_mask(mask, grid)
    roi = RoiContours(1, "random", tuple(Contour(c.geometric_type, c.points) for c in contours))
    np.testing.assert_array_equal(rasterise_roi(roi, grid).mask, mask)


@pytest.mark.parametrize("mutate, message", [
    (lambda ds: delattr(ds, "StructureSetROISequence"), "no StructureSetROISequence"),
    (lambda ds: ds.StructureSetROISequence.append(ds.StructureSetROISequence[0]), "repeated"),
    (lambda ds: setattr(ds.ROIContourSequence[0].ContourSequence[0], "ContourData",
                        [1.0, 2.0, 3.0, 4.0]), "triplets"),
])
def test_malformed_structure_sets_are_refused(tmp_path, mutate, message) -> None:
    series = write_ct(tmp_path / "ct", "malformed")
    path = write_rtstruct(tmp_path / "rs.dcm", patient=PATIENT, study=STUDY, series_uid="1.2.3.4",
                          rois=[RoiSpec(1, "GTV", (ContourSpec(
                              index_points(series.grid, square(1, 1, 3, 3), 1.0)),))],
                          image_series_uid=series.uid, image_uids=series.sop_uids)
    ds = pydicom.dcmread(path)
    mutate(ds)
    with pytest.raises(DicomError, match=message) as info:
        read_structure_set(ds, "s-test")
    assert info.value.reason == "invalid-rtstruct"
    assert "Planted" not in str(info.value)


# --- STS_002: one real patient, CT, MR and PET with an RTSTRUCT each, all in one tree ----------

MODALITIES = {"CT": "CT", "MR_T1": "MR", "PET": "PT"}


@pytest.fixture(scope="module")
def sts(testdata, tmp_path_factory):
    """Crawl the whole STS_002 folder at once; convert the images and masks; pair them."""
    root = testdata / "sts_002_ct_mr_pet_rtstruct"
    out = tmp_path_factory.mktemp("sts")
    result = crawl(root, None, KEY, CrawlSettings(include_derived=True))
    records = convert_and_pair(result, out)
    return root, result, records


@pytest.mark.testdata
def test_sts_every_rtstruct_pairs_with_its_own_modality(sts) -> None:
    _, result, records = sts
    series = result.series.set_index("series_key")
    assert len(result.pairs) == 3
    for plan in result.pairs.to_dict("records"):
        modality = plan["roi"].removeprefix("GTV_Mass_")
        assert series.loc[plan["image_key"], "modality"] == MODALITIES[modality]
        # the UID references match nothing: the fallback decided, and says which
        assert plan["pairing_reason"] == "common-folder"
        assert plan["status"] == "ok" and records[plan["roi"]]["status"] == "ok"


@pytest.mark.testdata
@pytest.mark.parametrize("modality", sorted(MODALITIES))
def test_sts_masks_equal_the_reference_niftis(sts, modality) -> None:
    root, _, records = sts
    record = records[f"GTV_Mass_{modality}"]
    mask = read_image(record["mask"])
    reference = read_image(root / modality / "nifti" / "mask" / "mask.nii.gz")
    assert dice_on_same_grid(mask, reference) == 1.0
    expected = {"CT": 17090, "MR_T1": 17090, "PET": 555}[modality]
    assert record["n_voxels"] == int((sitk.GetArrayViewFromImage(reference) > 0).sum()) == expected


@pytest.mark.testdata
def test_sts_never_pairs_a_derived_series_mask_with_the_ct(testdata) -> None:
    """By default MR and PET (DERIVED) are excluded: their RTSTRUCTs report it, not the CT."""
    result = crawl(testdata / "sts_002_ct_mr_pet_rtstruct", None, KEY, CrawlSettings())
    series = result.series.set_index("series_key")
    for plan in result.pairs.to_dict("records"):
        modality = MODALITIES[plan["roi"].removeprefix("GTV_Mass_")]
        assert series.loc[plan["image_key"], "modality"] == modality
        assert plan["status"] == ("ok" if modality == "CT" else "failed:image-derived")


# --- fixture-written RTSTRUCTs -------------------------------------------------------------


@pytest.mark.parametrize("oblique", [False, True])
def test_written_rtstruct_with_a_hole_on_a_series(tmp_path, oblique) -> None:
    """Crawl + convert of an RTSTRUCT (outer contour, hole, island) on an axial/oblique series."""
    series = write_ct(tmp_path / "dicom" / "ct", "hole", oblique=oblique)
    ring = [ContourSpec(index_points(series.grid, square(0.5, 0.5, 8.5, 9.5), 2.0),
                        image_uid=series.sop_uids[2]),
            ContourSpec(index_points(series.grid, square(2.5, 2.5, 6.5, 7.5), 2.0),
                        image_uid=series.sop_uids[2]),
            ContourSpec(index_points(series.grid, square(3.5, 3.5, 5.5, 5.5), 2.0),
                        image_uid=series.sop_uids[2])]
    write_rtstruct(tmp_path / "dicom" / "rs" / "rs.dcm", patient=PATIENT, study=STUDY,
                   series_uid="1.2.826.0.1.3680043.8.498.77", rois=[RoiSpec(4, "GTV ring",
                                                                            tuple(ring))],
                   image_series_uid=series.uid, image_uids=series.sop_uids)
    result = crawl(tmp_path / "dicom", None, KEY, CrawlSettings())
    plan = result.pairs.to_dict("records")[0]
    assert (plan["status"], plan["pairing_reason"], plan["label"]) == (
        "ok", "referenced-series", 4)
    image_src = result.sources[plan["image_key"]]
    image_side = convert_source({"series_key": image_src.series_key, "case_id": "c1",
                                 "kind": "dicom", "role": "image", "files": image_src.files},
                                tmp_path / "img.nii.gz", GeometrySettings())
    write_json(tmp_path / "img.json", image_side)
    mask_src = result.sources[plan["mask_key"]]
    side = convert_source({"series_key": mask_src.series_key, "case_id": "c1",
                           "kind": mask_src.kind, "role": "mask", "files": mask_src.files,
                           "mask": mask_src.mask}, tmp_path / "m.nii.gz", GeometrySettings(),
                          str(tmp_path / "img.json"))
    assert side["status"] == "ok" and side["rois"]["4"]["status"] == "ok"
    arr = sitk.GetArrayFromImage(read_image(tmp_path / side["rois"]["4"]["nifti"]))
    expected = np.zeros(series.grid.shape, np.uint8)
    expected[2, 1:10, 1:9] = 4
    expected[2, 3:8, 3:7] = 0
    expected[2, 4:6, 4:6] = 4
    np.testing.assert_array_equal(arr, expected)
    assert json.dumps(side).find("Planted") < 0


# --- rt-utils test files: a valid structure set and broken references ----------------------

RT = "rt_utils_rtstruct"


def _rt_case(testdata, tmp_path, *names):
    import shutil

    for name in ("mock_data/ct_1.dcm", "mock_data/ct_2.dcm", *names):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(testdata / RT / name, tmp_path / name)
    return crawl(tmp_path, None, KEY, CrawlSettings(geometry=GeometrySettings(min_slices=2)))


@pytest.mark.testdata
def test_rt_utils_valid_structure_set(testdata, tmp_path) -> None:
    result = _rt_case(testdata, tmp_path, "mock_data/rt.dcm")
    plan = result.pairs.to_dict("records")[0]
    assert (len(result.pairs), plan["status"], plan["pairing_reason"], plan["roi"]) == (
        1, "ok", "referenced-series", "ROI-1")
    image = result.sources[plan["image_key"]]
    image_side = convert_source({"series_key": plan["image_key"], "case_id": "c", "kind": "dicom",
                                 "role": "image", "files": image.files},
                                tmp_path / "i.nii.gz", GeometrySettings(min_slices=2))
    write_json(tmp_path / "i.json", image_side)
    mask = result.sources[plan["mask_key"]]
    side = convert_source({"series_key": plan["mask_key"], "case_id": "c", "kind": "rtstruct",
                           "role": "mask", "files": mask.files, "mask": mask.mask},
                          tmp_path / "m.nii.gz", GeometrySettings(), str(tmp_path / "i.json"))
    arr = sitk.GetArrayFromImage(read_image(tmp_path / side["rois"]["1"]["nifti"]))
    assert arr.shape == (2, 512, 512)
    assert arr[0].sum() > 0 and arr[1].sum() == 0  # both contours are on the z = 60 slice


@pytest.mark.testdata
@pytest.mark.parametrize("name, reason", [
    ("mock_data/invalid_reference_rt.dcm", "referenced-series"),
    ("mock_data/non_existent_reference_rt.dcm", "referenced-instances"),
])
def test_rt_utils_broken_references_fail_clearly(testdata, tmp_path, name, reason) -> None:
    """Their contours at z = 70 are drawn on an image that is not in the series."""
    result = _rt_case(testdata, tmp_path, name)
    assert len(result.pairs) == 4
    assert set(result.pairs["status"]) == {"failed:missing-referenced-images"}
    assert set(result.pairs["pairing_reason"]) == {reason}


@pytest.mark.testdata
def test_rt_utils_whole_folder_and_image_less_folder(testdata) -> None:
    whole = crawl(testdata / RT, None, KEY, CrawlSettings())
    masks = whole.series[whole.series["role"] == "mask"].set_index("n_instances")
    # three files share one SOPInstanceUID with different content; rt.dcm stands alone
    assert masks.loc[3, "status"] == "failed:conflicting-duplicates"
    assert masks.loc[1, "status"] == "ok"
    assert list(whole.pairs["status"]) == ["failed:image-too-few-slices"]  # 2 slices < 3
    alone = crawl(testdata / RT / "empty", None, KEY, CrawlSettings())
    assert set(alone.pairs["status"]) == {"failed:reference-not-found"}
    assert len(alone.pairs) == 4
