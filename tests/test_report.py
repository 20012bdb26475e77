"""The report stage without a browser: QC picture geometry and windows, the page's content,
its links, paging attributes, privacy of the configuration, determinism (README, "Report")."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import yaml
from PIL import Image
from report_fixtures import make_report_inputs
from workflow_helpers import REPO

from radflow.config_check import check_config
from radflow.errors import ConfigError
from radflow.features.semantic import SemanticSettings, semantic_features
from radflow.io.atomic import write_tsv
from radflow.merge.side_tables import side_tables
from radflow.records.side import ExtractSide, Landmark, PairSide, write_extract_side
from radflow.report.gallery import read_landmarks, read_pair_records
from radflow.report.overlay import AXIS_COLOURS, LpsIndexMap
from radflow.report.page import STATIC
from radflow.report.plots import km_curves
from radflow.report.qc import (
    CONTOUR_COLOUR,
    display_window,
    draw_figure,
    oriented_arrays,
    pair_picture_pngs,
    plane_views,
    recist_view,
    render_pngs,
)
from radflow.report.resources import report_runtime
from radflow.report.settings import ReportSettings, settings_from
from radflow.report.stage import run_report

# --- settings -------------------------------------------------------------------------------


def test_the_config_defaults_are_the_dataclass_defaults() -> None:
    section = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["report"]
    assert section["enabled"] is False
    assert settings_from(section) == ReportSettings()
    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    assert demo["report"]["enabled"] is True


@pytest.mark.parametrize("values, message", [
    ({"thumbnail_per_page": 3}, "unknown setting"),
    ({"planes": ["axial", "axial"]}, "report.planes"),
    ({"planes": ["oblique"]}, "report.planes"),
    ({"ct_window": "bone"}, "report.ct_window"),
    ({"percentile_window": [99, 1]}, "report.percentile_window"),
    ({"thumbnails_per_page": 0}, "report.thumbnails_per_page"),
])
def test_bad_settings_are_config_errors(values, message) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from(values)


@pytest.mark.parametrize("section, message", [
    ({"planes": ["oblique"]}, "report.planes"),
    ({"thumbnails_per_page": 0}, "report.thumbnails_per_page"),
    ({"ct_windw": "lung"}, "ct_window"),
])
def test_the_schema_checks_the_report_section(section, message) -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["report"] = section
    with pytest.raises(ConfigError, match=message):
        check_config(config, REPO / "config" / "schema" / "config.schema.yaml")


def test_the_schema_fills_the_defaults() -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["report"] = {"enabled": True}
    check_config(config, REPO / "config" / "schema" / "config.schema.yaml")
    assert settings_from(config["report"]) == ReportSettings()


def test_the_run_time_request_grows_with_the_pairs() -> None:
    assert report_runtime(10) == 15
    assert report_runtime(5000) > report_runtime(500) > 15


# --- geometry -------------------------------------------------------------------------------

SPACING = (1.0, 0.5, 5.0)  # sx, sy, sz (mm)


def _box_volume() -> tuple[np.ndarray, np.ndarray]:
    """A (z, y, x) volume with a box ROI of 10 x 8 x 4 voxels (10 x 4 x 20 mm)."""
    image = np.zeros((20, 40, 30), np.float32)
    mask = np.zeros(image.shape, bool)
    mask[8:12, 16:24, 10:20] = True
    return image, mask


def test_panels_are_in_mm_and_cropped_to_the_roi() -> None:
    image, mask = _box_volume()
    views = plane_views(image, mask, SPACING, ("axial", "coronal", "sagittal"), margin_mm=0.0)
    sizes = {v.plane: v.size_mm for v in views}
    assert sizes == {"axial": (10.0, 4.0), "coronal": (10.0, 20.0), "sagittal": (4.0, 20.0)}
    assert [v.index for v in views] == [10, 20, 14]  # the ROI's centre slice on each axis
    assert all(v.mask.all() for v in views)  # cropped to the box: every pixel inside
    wide = plane_views(image, mask, SPACING, ("axial",), margin_mm=2.0)[0]
    # 2 mm: 2 voxels in x (1 mm), 4 in y (0.5 mm)
    assert wide.image.shape == (8 + 2 * 4, 10 + 2 * 2)


def test_panels_follow_the_radiological_convention() -> None:
    image, mask = _box_volume()
    image[11, 16:24, 19] = 1.0   # superior-most ROI slice, patient-left-most column
    image[8:12, 23, 10:20] = 2.0  # posterior-most row
    axial, coronal, sagittal = plane_views(image, mask, SPACING,
                                           ("axial", "coronal", "sagittal"), margin_mm=0.0)
    # coronal: superior at the top (row 0), patient left on the right (last column)
    assert coronal.image[0, -1] == 1.0 and coronal.image[-1, -1] != 1.0
    # sagittal: superior at the top, posterior on the right
    assert sagittal.image[-1, -1] == 2.0 and sagittal.image[-1, 0] == 0.0
    # axial: posterior at the bottom
    assert axial.image[-1, 0] == 2.0 and axial.image[0, 0] == 0.0


def test_volumes_are_reoriented_to_lps() -> None:
    array = np.zeros((4, 6, 8), np.int16)
    array[:, :, 0] = 7  # index x = 0
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 0.9, 2.5))
    image.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))  # x towards the patient's right
    mask = sitk.GetImageFromArray((array > 0).astype(np.uint8))
    mask.CopyInformation(image)
    values, roi, spacing = oriented_arrays(image, mask, 1)
    assert spacing == pytest.approx((0.7, 0.9, 2.5))
    # index x = 0 was the patient's left-most column: on LPS axes it is the last one
    assert (values[:, :, -1] == 7).all() and (values[:, :, 0] == 0).all()
    assert roi[:, :, -1].all()


def _red_box(png: bytes) -> tuple[int, int]:
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    target = np.array([int(CONTOUR_COLOUR[i:i + 2], 16) for i in (1, 3, 5)])
    rows, cols = np.nonzero(np.abs(rgb - target).sum(axis=2) < 60)
    return rows.max() - rows.min(), cols.max() - cols.min()


def test_the_rendered_contour_has_the_physical_aspect_ratio() -> None:
    image, mask = _box_volume()  # coronal: 10 mm wide, 20 mm high (4 slices of 5 mm)
    view = plane_views(image, mask, SPACING, ("coronal",), margin_mm=5.0)
    window = display_window("MR", view[0].image, view[0].mask, ReportSettings())
    full, thumb = render_pngs(view, window, "p0")
    height, width = _red_box(full)
    assert height / width == pytest.approx(2.0, rel=0.1)  # voxels: 4 high, 10 wide
    assert Image.open(io.BytesIO(thumb)).size[0] < Image.open(io.BytesIO(full)).size[0]


@pytest.mark.parametrize("outside, setting, expected", [
    (-800.0, "auto", ("lung", -1350.0, 150.0)),
    (30.0, "auto", ("soft-tissue", -160.0, 240.0)),
    (-800.0, "soft-tissue", ("soft-tissue", -160.0, 240.0)),
    (30.0, "lung", ("lung", -1350.0, 150.0)),
])
def test_ct_windows(outside, setting, expected) -> None:
    image = np.full((20, 20), outside, np.float32)
    mask = np.zeros(image.shape, bool)
    mask[5:10, 5:10] = True
    image[mask] = 40.0
    window = display_window("CT", image, mask, ReportSettings(ct_window=setting))
    assert expected[0] in window.name
    assert (window.low, window.high) == (expected[1], expected[2])


@pytest.mark.parametrize("modality", ["MR", "PT", ""])
def test_other_modalities_get_a_percentile_window(modality) -> None:
    image = np.arange(1000, dtype=np.float32).reshape(10, 100)
    window = display_window(modality, image, np.zeros(image.shape, bool),
                            ReportSettings(percentile_window=(2.0, 98.0)))
    assert (window.low, window.high) == pytest.approx((np.percentile(image, 2),
                                                       np.percentile(image, 98)))
    assert "percentiles 2-98" in window.name


# --- the RECIST overlay ----------------------------------------------------------------------


def _rotation(axis: int, degrees: float) -> np.ndarray:
    c, s_ = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    a, b = [i for i in range(3) if i != axis]
    r = np.eye(3)
    r[a, a], r[a, b], r[b, a], r[b, b] = c, -s_, s_, c
    return r


#: Direction matrices (columns: the index axes i, j, k in LPS) and the display plane of the
#: acquisition slices.
SAGITTAL = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float)  # i anterior, j inferior, k left
CORONAL = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], float)  # i left, j inferior, k posterior
DIRECTIONS = {
    "axial": (np.eye(3), "axial"),
    "axial-flipped": (np.diag([-1.0, -1.0, 1.0]), "axial"),
    "axial-oblique": (_rotation(2, 25.0) @ _rotation(0, 10.0) @ np.diag([-1.0, 1.0, 1.0]),
                      "axial"),
    "sagittal": (SAGITTAL, "sagittal"),
    "coronal-oblique": (_rotation(2, 15.0) @ _rotation(1, -8.0) @ CORONAL, "coronal"),
}


def _lesion_image(direction: np.ndarray) -> tuple[sitk.Image, sitk.Image]:
    """A (k, j, i) = (9, 36, 40) image, anisotropic voxels, with a rotated elliptic lesion in
    the acquisition plane on slices 3-5 (the largest on slice 4)."""
    k, j, i = np.mgrid[0:9, 0:36, 0:40].astype(float)
    u = (i - 19.3) * np.cos(0.5) + (j - 17.6) * np.sin(0.5)
    v = -(i - 19.3) * np.sin(0.5) + (j - 17.6) * np.cos(0.5)
    scale = np.where(k == 4, 1.0, np.where((k == 3) | (k == 5), 0.6, 0.0))
    inside = (scale > 0) & ((u / 9.0) ** 2 + (v / 4.0) ** 2 <= scale ** 2)
    image = sitk.GetImageFromArray(np.where(inside, 10.0, 0.0).astype(np.float32))
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    for item in (image, mask):
        item.SetSpacing((0.7, 0.9, 2.5))
        item.SetOrigin((12.0, -30.0, 55.0))
        item.SetDirection(tuple(direction.ravel()))
    return image, mask


def _landmarks(image: sitk.Image, mask: sitk.Image) -> tuple[tuple[Landmark, ...], dict]:
    result = semantic_features(image, mask, SemanticSettings(), modality="CT")
    found = result.landmarks
    return ((Landmark("long_axis", found.slice_index, found.long_axis),
             Landmark("short_axis", found.slice_index, found.short_axis),
             Landmark("diameter_3d", None, found.diameter_3d)), result.features)


@pytest.mark.parametrize("name", DIRECTIONS)
def test_the_lps_index_map_is_the_reorientation(name) -> None:
    direction = DIRECTIONS[name][0]
    array = np.arange(5 * 6 * 7, dtype=np.int32).reshape(5, 6, 7)  # (k, j, i)
    image = sitk.GetImageFromArray(array)
    image.SetDirection(tuple(direction.ravel()))
    oriented = sitk.GetArrayFromImage(sitk.DICOMOrient(image, "LPS"))
    to_lps = LpsIndexMap.of(image)
    for i, j, k in [(0, 0, 0), (6, 5, 4), (3, 1, 2), (0, 5, 1)]:
        x, y, z = (round(c) for c in to_lps((i, j, k)))
        assert oriented[z, y, x] == array[k, j, i]


def _marker_centre(view, value: float) -> np.ndarray:
    rows, cols = np.nonzero(view.image == value)
    assert len(rows) == 1, f"marker {value} not on the panel once"
    return np.array([(cols[0] + 0.5) * view.pixel_mm[0], (rows[0] + 0.5) * view.pixel_mm[1]])


@pytest.mark.parametrize("name", DIRECTIONS)
def test_the_recist_axes_are_drawn_on_their_end_points(name) -> None:
    direction, plane = DIRECTIONS[name]
    image, mask = _lesion_image(direction)
    landmarks, features = _landmarks(image, mask)
    # Independent of the overlay's path: the continuous index q of each end point (numpy, not
    # SimpleITK), and three marked voxels around it on its slice, floor(q) and its neighbours
    # along i and j: they reach the panel through the image's own path (DICOMOrient, slicing,
    # flips), and the panel is affine in (i, j), so the end point must be drawn at
    # p(floor) + (q_i - floor_i) (p(+i) - p(floor)) + (q_j - floor_j) (p(+j) - p(floor)).
    matrix = direction * np.asarray(image.GetSpacing())[None, :]
    values = sitk.GetArrayFromImage(image)
    markers: dict[tuple[int, int, int], float] = {}
    where = {}
    for mark in landmarks[:2]:
        ends = []
        for point in mark.points:
            q = np.linalg.solve(matrix, np.asarray(point) - np.asarray(image.GetOrigin()))
            assert q[2] == pytest.approx(mark.slice_index, abs=1e-9)  # on its slice
            i, j, k = (int(np.floor(q[0])), int(np.floor(q[1])), round(q[2]))
            corners = ((i, j, k), (i + 1, j, k), (i, j + 1, k))
            for corner in corners:
                markers.setdefault(corner, 1000.0 + len(markers))
            ends.append((q[0] - i, q[1] - j, corners))
        where[mark.name] = ends
    for (i, j, k), value in markers.items():
        values[k, j, i] = value
    marked = sitk.GetImageFromArray(values)
    marked.CopyInformation(image)
    oriented, roi, spacing = oriented_arrays(marked, mask, 1)
    view = recist_view(marked, oriented, roi, spacing, landmarks, margin_mm=5.0)
    assert view is not None
    assert view.plane == plane
    assert view.title == f"RECIST slice {int(features['recist_LongestDiameterSlice'])}"
    assert view.mask.any()
    assert [line.name for line in view.lines] == ["long_axis", "short_axis"]
    pixel = np.asarray(view.pixel_mm)
    for line in view.lines:
        for drawn, (di, dj, corners) in zip((line.start, line.end), where[line.name],
                                            strict=True):
            base, step_i, step_j = (_marker_centre(view, markers[c]) for c in corners)
            expected = base + di * (step_i - base) + dj * (step_j - base)
            assert np.all(np.abs(np.asarray(drawn) - expected) <= 0.05 * pixel), line.name
    assert view.lines[0].length_mm == pytest.approx(features["recist_LongestDiameter"])
    assert view.lines[1].length_mm == pytest.approx(features["recist_ShortAxisDiameter"])
    # what is drawn: one line per axis, on those points, with its length as a label
    window = display_window("MR", view.image, view.mask, ReportSettings())
    fig = draw_figure([view], window, "p0")
    ax = fig.axes[0]
    for line in view.lines:
        (drawn,) = [a for a in ax.lines if a.get_gid() == line.name]
        assert np.allclose(drawn.get_xydata(), [line.start, line.end])
        assert drawn.get_color() == AXIS_COLOURS[line.name]
    texts = [t.get_text() for t in ax.texts]
    assert f"long {features['recist_LongestDiameter']:.1f} mm" in texts
    assert f"short {features['recist_ShortAxisDiameter']:.1f} mm" in texts
    assert view.title in texts


def _cyan_pixels(png: bytes) -> int:
    """Pixels of the long axis's cyan (also where it is blended with the grey image)."""
    assert AXIS_COLOURS["long_axis"] == "#00e5ff"
    r, g, b = np.moveaxis(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int), 2,
                          0)
    return int(((g - r > 80) & (b - r > 80)).sum())


def test_a_pair_without_landmarks_has_no_recist_panel(tmp_path) -> None:
    image, mask = _lesion_image(DIRECTIONS["axial-oblique"][0])
    landmarks, _ = _landmarks(image, mask)
    sitk.WriteImage(image, str(tmp_path / "image.nii.gz"))
    sitk.WriteImage(mask, str(tmp_path / "mask.nii.gz"))
    args = (str(tmp_path / "image.nii.gz"), str(tmp_path / "mask.nii.gz"), 1, "MR", "p0",
            ReportSettings())
    with_axes = pair_picture_pngs(*args, landmarks=landmarks)[0]
    without = pair_picture_pngs(*args)[0]
    only_3d = pair_picture_pngs(*args, landmarks=landmarks[2:])[0]  # no RECIST axes
    assert without == only_3d
    width = Image.open(io.BytesIO(without)).size[0]
    assert Image.open(io.BytesIO(with_axes)).size[0] > width
    assert _cyan_pixels(with_axes) > 10
    assert _cyan_pixels(without) == 0
    oriented, roi, spacing = oriented_arrays(image, mask, 1)
    assert recist_view(image, oriented, roi, spacing, (), 5.0) is None


def test_end_points_off_their_slice_are_not_drawn(caplog) -> None:
    image, mask = _lesion_image(DIRECTIONS["sagittal"][0])
    landmarks, _ = _landmarks(image, mask)
    oriented, roi, spacing = oriented_arrays(image, mask, 1)
    long_axis, short_axis = landmarks[:2]
    k = long_axis.slice_index
    # the short axis said to be on another slice: the long axis alone
    moved = (long_axis, replace(short_axis, slice_index=k + 1))
    view = recist_view(image, oriented, roi, spacing, moved, 5.0)
    assert view is not None and [line.name for line in view.lines] == ["long_axis"]
    # a slice index that is not the end points' slice (landmarks of another grid): no panel
    wrong = tuple(replace(m, slice_index=k - 1) for m in landmarks[:2])
    assert recist_view(image, oriented, roi, spacing, wrong, 5.0) is None
    assert "not on RECIST slice" in caplog.text


def test_the_landmarks_table_reaches_the_pictures(tmp_path) -> None:
    cohort = make_report_inputs(tmp_path / "in", n_pairs=4, analysis=False)
    # the first pair's RECIST axes from the semantic family on its files; the others have none
    first = read_pair_records(cohort.inputs.pair_records)[0]
    found = semantic_features(sitk.ReadImage(first.image), sitk.ReadImage(first.mask),
                              SemanticSettings()).landmarks
    # written the way the pipeline writes it: extract side records -> merge's side_tables
    marks_of_first = (Landmark("long_axis", found.slice_index, found.long_axis),
                      Landmark("short_axis", found.slice_index, found.short_axis),
                      Landmark("suv_peak_centre", None, ((1.0, 2.0, 3.0),)))
    sides = []
    for n, rec in enumerate(read_pair_records(cohort.inputs.pair_records)[:-1]):
        sides.append(str(tmp_path / f"unit{n}.side.json"))
        write_extract_side(sides[-1], ExtractSide(unit=f"u{n}", pairs=[PairSide(
            rec.pair_id, rec.case_id or "", rec.image_key or "",
            landmarks=marks_of_first if rec.pair_id == first.pair_id else ())]))
    table = tmp_path / "landmarks.tsv"
    write_tsv(table, side_tables(sides)[0])
    marks = read_landmarks(str(table))
    assert list(marks) == [first.pair_id]
    assert [m.name for m in marks[first.pair_id]] == ["long_axis", "short_axis",
                                                     "suv_peak_centre"]
    assert marks[first.pair_id][0].slice_index == found.slice_index
    page = run_report(replace(cohort.inputs, landmarks=str(table)), str(tmp_path / "report"),
                      ReportSettings(), cohort="t", config={"cohort": "t"},
                      version="0.0.test")
    for pair_id in cohort.pair_ids[:-1]:  # the last pair failed: no picture
        png = (page.parent / "qc" / f"{pair_id}.png").read_bytes()
        assert (_cyan_pixels(png) > 10) == (pair_id == first.pair_id), pair_id
    # the families off: side records without landmarks, a table without rows
    empty = tmp_path / "empty.tsv"
    write_tsv(empty, side_tables(sides[1:])[0])
    assert read_landmarks(str(empty)) == {}


def test_kaplan_meier_by_hand() -> None:
    times, surv = km_curves(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1, 0, 1, 1]))
    # S(1) = 3/4; censored at 2; S(3) = 3/4 * 1/2; S(4) = 0
    assert times.tolist() == [0.0, 1.0, 3.0, 4.0]
    assert surv == pytest.approx([1.0, 0.75, 0.375, 0.0])


# --- the page -------------------------------------------------------------------------------

def _report(tmp_path: Path, name: str = "report", **kwargs) -> tuple[Path, object]:
    cohort = make_report_inputs(tmp_path / "in", n_pairs=14, **kwargs)
    config = {"cohort": "t", "dicom_root": "/data/Kowalski_Anna/dicom", "report": {}}
    page = run_report(cohort.inputs, str(tmp_path / name),
                      ReportSettings(thumbnails_per_page=12), cohort="t", config=config,
                      version="0.0.test")
    return page, cohort


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, object]:
    """One report of the synthetic cohort (with the analysis), shared by the tests that read."""
    return _report(tmp_path_factory.mktemp("report"))


def _links(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', html)


def test_one_picture_per_pair_and_every_link_is_a_local_file(built) -> None:
    page, cohort = built
    html = page.read_text(encoding="utf-8")
    ok = [p for p in cohort.pair_ids if p != cohort.failed_pair]
    for pair_id in ok:
        assert html.count(f'src="assets/thumbs/{pair_id}.png"') == 1
        assert html.count(f'href="qc/{pair_id}.png"') == 1
        assert (page.parent / "qc" / f"{pair_id}.png").is_file()
    assert sorted(p.stem for p in (page.parent / "qc").glob("*.png")) == sorted(ok)
    assert html.count('class="card') == len(cohort.pair_ids)
    assert "no picture: the pair is failed:empty-mask" in html
    assert 'data-per-page="12"' in html
    for link in _links(html):
        assert not re.match(r"^[a-z]+:|^//", link) or link == "data:,", link
        if not link.startswith(("#", "data:")):
            assert (page.parent / link).is_file(), link
    assert "http://" not in html and "https://" not in html
    for name in STATIC:
        text = (page.parent / "assets" / name).read_text()
        assert "http://" not in text and "https://" not in text and "import " not in text


def test_the_page_has_every_section(built) -> None:
    page, _ = built
    html = page.read_text(encoding="utf-8")
    for heading in ("Run summary", "QC pictures", "Features", "Associations", "Provenance"):
        assert f"<h2>{heading}</h2>" in html
    # every status with its reason and count
    assert re.search(r"<td>pair</td><td>failed</td><td>empty-mask</td><td>1</td>", html)
    assert re.search(r"<td>crawl</td><td>excluded</td><td>localizer</td><td>1</td>", html)
    for plot in ("distributions", "correlation", "forest-outcome", "volcano-outcome",
                 "forest-followup", "km-followup"):
        assert f'src="assets/{plot}.png"' in html, plot
    assert "outcome (binary): auc" in html and "followup (time-to-event): logrank" in html
    assert "params_hash" in html and "ab" * 32 in html and "0.0.test" in html


def test_paths_in_the_config_are_file_names_only(built) -> None:
    page, _ = built
    html = page.read_text(encoding="utf-8")
    assert "Kowalski" not in html and "dicom_root: dicom" in html


def test_without_the_analysis_the_page_says_so(tmp_path) -> None:
    page, cohort = _report(tmp_path, analysis=False)
    html = page.read_text(encoding="utf-8")
    assert "The analysis stage did not run" in html
    assert not list((page.parent / "assets").glob("*.png"))
    assert html.count('<img src="assets/thumbs/') == len(cohort.pair_ids) - 1


def test_two_runs_write_the_same_bytes(tmp_path) -> None:
    cohort = make_report_inputs(tmp_path / "in", n_pairs=7)
    outs = []
    for name in ("a", "b"):
        run_report(cohort.inputs, str(tmp_path / name), ReportSettings(), cohort="t",
                   config={"cohort": "t"}, version="0.0.test")
        root = tmp_path / name
        outs.append({p.relative_to(root).as_posix(): p.read_bytes()
                     for p in sorted(root.rglob("*")) if p.is_file()})
    assert outs[0].keys() == outs[1].keys() and len(outs[0]) > 7
    assert outs[0] == outs[1]
