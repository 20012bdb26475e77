"""Siemens mosaic images: demosaiced into volumes (one per file), checked against dcm2niix on
real dcm_qa mosaics (tests/data/mosaic) and against hand-built references and nibabel's
MosaicWrapper on synthetic ones; broken mosaics fail with ``mosaic-unreadable``, never as 2-D
images. Also the plausibility QC and ``slices`` counting positions."""

from __future__ import annotations

import hashlib
import itertools
import json
import lzma
import shutil
import struct
import subprocess
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from nibabel.orientations import io_orientation, ornt_transform

from radflow.convert import convert_source
from radflow.demo.synthetic import Patient, Study, derived_uid, write_series
from radflow.demo.synthetic_mosaic import tile_mosaic, write_mosaic_series
from radflow.dicom.index import find_candidate_files, index_files
from radflow.dicom.mosaic import demosaic
from radflow.dicom.volume import read_series
from radflow.errors import DicomError
from radflow.settings import CrawlSettings, GeometrySettings

DATA = Path(__file__).parent / "data" / "mosaic"
REFERENCE = json.loads((DATA / "reference.json").read_text(encoding="utf-8"))
PATIENT = Patient("PID-MOSAIC-1", "Roe^Mosaic")
STUDY = Study(derived_uid("mosaic-study"), derived_uid("mosaic-for"))
SETTINGS = CrawlSettings()
ONE_SLICE = CrawlSettings(geometry=GeometrySettings(min_slices=1))
GEOMETRY_ATOL_MM = 1e-3


def _volumes(n_time: int = 3, n_slices: int = 5, rows: int = 3, cols: int = 4) -> np.ndarray:
    """Stored values, distinct for every voxel and time point."""
    size = n_time * n_slices * rows * cols
    return (np.arange(size) * 7 % 4001).astype(np.int16).reshape(n_time, n_slices, rows, cols)


def _write(folder: Path, volumes: np.ndarray | None = None, **kwargs) -> list[Path]:
    return write_mosaic_series(folder, _volumes() if volumes is None else volumes,
                               patient=PATIENT, study=STUDY,
                               series_uid=derived_uid("mosaic", folder.name), **kwargs)


def _crawl(folder: Path, settings: CrawlSettings = SETTINGS):
    return [r for r in index_files(find_candidate_files(folder), settings) if r.series_uid]


def _read(record, settings: CrawlSettings = SETTINGS):
    return read_series(record.files, settings.geometry, frames=record.frames)


def _corners(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """World positions of the 8 corner voxel centres, shape (8, 3)."""
    index = np.array(list(itertools.product(*[(0, n - 1) for n in shape[:3]])), dtype=float)
    return index @ affine[:3, :3].T + affine[:3, 3]


def _digest(data: np.ndarray) -> str:
    little = np.ascontiguousarray(data.astype(data.dtype.newbyteorder("<")))
    return hashlib.sha256(little.tobytes()).hexdigest()


# --- synthetic mosaics: hand-built references ---------------------------------------------------

AXIAL = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
SAGITTAL = ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0))
OBLIQUE = ((1.0, 0.0, 0.0), (0.0, 0.99415096409965, -0.1079993545339))


@pytest.mark.parametrize(("orientation", "reverse", "n_slices"), [
    (AXIAL, False, 5),       # 3 x 3 grid, 4 empty tiles
    (AXIAL, True, 4),        # full 2 x 2 grid, tiles against the IOP normal
    (SAGITTAL, True, 7),     # as Siemens sagittal mosaics: CSA normal = -(row x column)
    (OBLIQUE, False, 9),
    (OBLIQUE, False, 1),     # one tile: the whole image
])
def test_mosaic_series_is_one_volume_per_file(tmp_path, orientation, reverse, n_slices):
    """Each file is a time point (``_t01`` ...); the tiles are its slices, placed from the
    first tile's position (the mosaic's ImagePositionPatient moved by half the mosaic minus
    tile size) along the CSA slice normal; crawl and convert give one and the same grid."""
    volumes = _volumes(n_slices=n_slices)
    first = (-40.0, 25.5, 12.25)
    files = _write(tmp_path / "m", volumes, first_position=first, row_direction=orientation[0],
                   column_direction=orientation[1], reverse_normal=reverse,
                   spacing=(2.0, 2.5, 3.0))
    row, col = np.array(orientation[0]), np.array(orientation[1])
    normal = np.cross(row, col)
    step = 3.0 * (-normal if reverse else normal)
    # sorted along +normal, the volume starts at the last tile when the tiles run backwards
    origin = np.array(first) + (n_slices - 1) * step if reverse else np.array(first)
    records = _crawl(tmp_path / "m", ONE_SLICE if n_slices == 1 else SETTINGS)
    assert [r.split for r in records] == ["_t01", "_t02", "_t03"]
    for t, record in enumerate(records):
        assert record.status == "ok", record.message
        assert record.files == (files[t],)
        assert (record.rows, record.cols, record.n_slices, record.qc) == (3, 4, n_slices, ())
        # one slice: its SliceThickness (0.8 x 3.0), as for any single-slice volume
        assert record.spacing == pytest.approx((2.0, 2.5, 3.0 if n_slices > 1 else 2.4))
        assert record.origin == pytest.approx(origin, abs=1e-9)
        volume = _read(record, ONE_SLICE if n_slices == 1 else SETTINGS)
        expected = volumes[t][::-1] if reverse else volumes[t]
        np.testing.assert_array_equal(sitk.GetArrayFromImage(volume.image), expected)
        assert volume.image.GetOrigin() == pytest.approx(record.origin, abs=1e-9)
        assert volume.image.GetSpacing() == pytest.approx(record.spacing)
        direction = np.array(volume.image.GetDirection()).reshape(3, 3)
        np.testing.assert_allclose(direction, np.column_stack([row, col, normal]), atol=1e-9)
        assert volume.info["mosaic"] == {"tiles": n_slices, "tile_rows": 3, "tile_cols": 4}


def test_synthetic_mosaic_agrees_with_nibabel(tmp_path):
    """nibabel's MosaicWrapper (an independent implementation) reads the synthetic file to the
    same voxels at the same positions as radflow."""
    (path, *_) = _write(tmp_path / "m", row_direction=SAGITTAL[0], column_direction=SAGITTAL[1],
                        reverse_normal=True, first_position=(-7.0, 3.0, 60.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "DICOM readers are highly experimental"
        from nibabel.nicom.dicomwrappers import MosaicWrapper, wrapper_from_data
    wrapper = wrapper_from_data(pydicom.dcmread(path))
    assert isinstance(wrapper, MosaicWrapper)
    data, affine = wrapper.get_data(), wrapper.affine  # (rows, cols, slices); LPS
    (record, *_) = _crawl(tmp_path / "m")
    image = _read(record).image
    ours = sitk.GetArrayFromImage(image)                # (slices, rows, cols)
    for z in range(ours.shape[0]):
        point = np.array(image.TransformIndexToPhysicalPoint((0, 0, z)))
        s = int(np.argmin([np.linalg.norm(affine[:3] @ [0, 0, k, 1] - point)
                           for k in range(data.shape[2])]))
        np.testing.assert_allclose(affine[:3] @ [0, 0, s, 1], point, atol=1e-9)
        far = image.TransformIndexToPhysicalPoint((ours.shape[2] - 1, ours.shape[1] - 1, z))
        np.testing.assert_allclose(affine[:3] @ [data.shape[0] - 1, data.shape[1] - 1, s, 1],
                                   far, atol=1e-9)
        np.testing.assert_array_equal(ours[z], data[:, :, s])


def test_b_values_split_before_time_points(tmp_path):
    """A DWI mosaic series with one volume per b-value splits by b-value (``_b0``, ``_b1000``);
    repeated b-values (several directions) split by file (``_t01`` ...)."""
    for name, b_values in (("two", (0, 1000)), ("three", (0, 1000, 1000))):
        files = _write(tmp_path / name, _volumes(n_time=len(b_values)))
        for path, b in zip(files, b_values, strict=True):
            ds = pydicom.dcmread(path)
            ds.private_block(0x0019, "SIEMENS MR HEADER", create=True).add_new(0x0C, "IS", b)
            ds.save_as(path)
    assert [r.split for r in _crawl(tmp_path / "two")] == ["_b0", "_b1000"]
    assert [r.split for r in _crawl(tmp_path / "three")] == ["_t01", "_t02", "_t03"]


def test_spacing_falls_back_to_slice_thickness(tmp_path):
    """Without SpacingBetweenSlices the tiles are SliceThickness apart (nibabel, dcm2niix)."""
    _write(tmp_path / "m", attributes={"SpacingBetweenSlices": None})
    for record in _crawl(tmp_path / "m"):
        assert record.status == "ok"
        assert record.spacing == pytest.approx((2.0, 2.0, 2.4))  # SliceThickness 0.8 x 3.0


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"with_csa": False}, "no Siemens CSA image header"),
    ({"csa_bytes": b"SV10\x04\x03\x02\x01" + struct.pack("<2I", 5000, 77)}, "cannot be parsed"),
    ({"csa": {"NumberOfImagesInMosaic": None}}, "no NumberOfImagesInMosaic"),
    ({"csa": {"NumberOfImagesInMosaic": [10]}}, "do not divide into a 4 x 4 grid"),
    ({"csa": {"SliceNormalVector": None}}, "no SliceNormalVector"),
    ({"csa": {"SliceNormalVector": [0.0, 0.70710678, 0.70710678]}}, "not parallel"),
    ({"csa": {"ProtocolSliceNumber": [4]}}, "protocol slice 4"),
    ({"attributes": {"SpacingBetweenSlices": None, "SliceThickness": None}},
     "no positive SpacingBetweenSlices"),
    ({"attributes": {"ImagePositionPatient": None}}, "no ImagePositionPatient"),
    ({"attributes": {"NumberOfFrames": 2}}, "multi-frame"),
])
def test_unreadable_mosaic_fails_never_2d(tmp_path, kwargs, says):
    """Whatever is missing, the series fails with ``mosaic-unreadable`` (naming what), in the
    crawl and in the convert stage, even with ``min_slices: 1``: never a 2-D image."""
    _write(tmp_path / "m", **kwargs)
    records = _crawl(tmp_path / "m", ONE_SLICE)
    assert [r.status for r in records] == ["failed:mosaic-unreadable"]
    assert says in records[0].message
    with pytest.raises(DicomError, match=says) as caught:
        read_series(records[0].files, ONE_SLICE.geometry)
    assert caught.value.reason == "mosaic-unreadable"


# --- demosaic: small literal arrays -------------------------------------------------------------

MOSAIC_4X4 = np.arange(16).reshape(4, 4)


@pytest.mark.parametrize(("stored", "n_tiles", "tile", "expected"), [
    (MOSAIC_4X4, 3, (2, 2), [[[0, 1], [4, 5]], [[2, 3], [6, 7]], [[8, 9], [12, 13]]]),
    (MOSAIC_4X4, 4, (2, 2), [[[0, 1], [4, 5]], [[2, 3], [6, 7]], [[8, 9], [12, 13]],
                             [[10, 11], [14, 15]]]),
    (MOSAIC_4X4, 2, (2, 2), [[[0, 1], [4, 5]], [[2, 3], [6, 7]]]),   # a 2 x 2 grid all the same
    (np.arange(12).reshape(2, 6), 4, (1, 3), [[[0, 1, 2]], [[3, 4, 5]], [[6, 7, 8]],
                                              [[9, 10, 11]]]),
    (MOSAIC_4X4, 1, (4, 4), [MOSAIC_4X4.tolist()]),
])
def test_demosaic_tiles_row_major(stored, n_tiles, tile, expected):
    np.testing.assert_array_equal(demosaic(stored, n_tiles, *tile), expected)


def test_demosaic_keeps_samples_and_inverts_the_writer():
    rgb = np.arange(4 * 6 * 3).reshape(4, 6, 3)
    tiles = demosaic(rgb, 4, 2, 3)
    assert tiles.shape == (4, 2, 3, 3)
    np.testing.assert_array_equal(tiles[3], rgb[2:, 3:])
    volume = _volumes(n_time=1, n_slices=7)[0]
    np.testing.assert_array_equal(demosaic(tile_mosaic(volume), 7, 3, 4), volume)


def test_demosaic_wrong_size_is_invalid_pixel_data():
    with pytest.raises(DicomError) as caught:
        demosaic(MOSAIC_4X4, 5, 2, 2)  # 5 tiles need a 3 x 3 grid of 2 x 2 tiles
    assert caught.value.reason == "invalid-pixel-data"


# --- real mosaics (dcm_qa): equal to dcm2niix ---------------------------------------------------

FIXTURES = sorted(REFERENCE["fixtures"])


def _unpack(name: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    raw = lzma.decompress((DATA / name).read_bytes())
    assert hashlib.sha256(raw).hexdigest() == REFERENCE["fixtures"][name]["sha256_dicom"]
    path = folder / name.removesuffix(".xz")
    path.write_bytes(raw)
    return path


def _convert_nifti(folder: Path, out: Path) -> nib.Nifti1Image:
    (record,) = _crawl(folder)
    assert (record.status, record.split, record.qc) == ("ok", "", ())
    source = {"series_key": "s0000000000000001", "case_id": "c000000000001", "kind": "dicom",
              "role": "image", "files": [str(f) for f in record.files],
              "frames": [list(f) if f is not None else None for f in record.frames]
              if record.frames else None}
    sidecar = convert_source(source, out, SETTINGS.geometry)
    assert sidecar["status"] == "ok", sidecar.get("error")
    assert sidecar["grid"]["size"][2] == record.n_slices == sidecar["volume"]["input_slices"]
    assert sidecar["volume"]["mosaic"]["tiles"] == record.n_slices
    return nib.load(out)


def _as_axes_of(image: nib.Nifti1Image, affine: np.ndarray) -> nib.Nifti1Image:
    """``image`` with its axes permuted / flipped to those of ``affine`` (no resampling)."""
    return image.as_reoriented(ornt_transform(io_orientation(image.affine),
                                              io_orientation(affine)))


@pytest.mark.parametrize("name", FIXTURES)
def test_dcm_qa_mosaic_equals_dcm2niix(tmp_path, name):
    """dcm2niix's geometry (all voxel centres within 1e-3 mm) and exactly its voxels."""
    ref = REFERENCE["fixtures"][name]
    _unpack(name, tmp_path / "in")
    ours = _as_axes_of(_convert_nifti(tmp_path / "in", tmp_path / "out" / "s.nii.gz"),
                       np.array(ref["affine_ras"]))
    data = np.asarray(ours.dataobj)
    assert (list(data.shape), str(data.dtype)) == (ref["shape"], ref["dtype"])
    gap = np.abs(_corners(ours.affine, data.shape)
                 - _corners(np.array(ref["affine_ras"]), data.shape)).max()
    assert gap <= GEOMETRY_ATOL_MM
    assert _digest(data) == ref["voxels_sha256"]


@pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="dcm2niix not installed")
@pytest.mark.parametrize("name", FIXTURES)
def test_dcm_qa_mosaic_equals_installed_dcm2niix(tmp_path, name):
    """The same comparison against the dcm2niix installed here, voxel by voxel."""
    _unpack(name, tmp_path / "in")
    subprocess.run(["dcm2niix", "-b", "n", "-z", "n", "-f", "ref", "-o", str(tmp_path),
                    str(tmp_path / "in")], check=True, capture_output=True)
    ref = nib.load(tmp_path / "ref.nii")
    ours = _as_axes_of(_convert_nifti(tmp_path / "in", tmp_path / "out" / "s.nii.gz"),
                       ref.affine)
    data, expected = np.asarray(ours.dataobj), np.asarray(ref.dataobj)
    assert data.shape == expected.shape
    assert np.abs(_corners(ours.affine, data.shape)
                  - _corners(ref.affine, data.shape)).max() <= GEOMETRY_ATOL_MM
    np.testing.assert_array_equal(data, expected)


# --- plausibility QC and slice counting ---------------------------------------------------------

def test_unrecognised_mosaic_gets_qc_not_silence(tmp_path):
    """A mosaic without MOSAIC in ImageType is a 2-D image of many tiles: with ``min_slices: 1``
    each is ok but flagged; by default one too-few-slices row that counts 1 slice position."""
    _write(tmp_path / "m", _volumes(n_time=2, n_slices=25, rows=4, cols=4),
           spacing=(40.0, 40.0, 3.0), image_type=("ORIGINAL", "PRIMARY", "M", "ND"))
    flags = ("acquisition-matrix-mismatch", "implausible-extent")  # 20 x 40 mm = 800 mm
    records = _crawl(tmp_path / "m", ONE_SLICE)
    assert [(r.status, r.rows, r.n_slices, r.qc) for r in records] == [("ok", 20, 1, flags)] * 2
    (record,) = _crawl(tmp_path / "m")
    assert (record.status, record.n_slices, record.qc) == ("failed:too-few-slices", 1, flags)


@pytest.mark.parametrize(("modality", "spacing", "qc"), [
    ("MR", 1.0, ()),
    ("MR", 180.0, ("implausible-extent",)),   # 4 x 180 mm = 720 mm > 700 mm
    ("CT", 180.0, ()),                        # CT reconstructions reach 850 mm
    ("CT", 220.0, ("implausible-extent",)),
    ("PT", 220.0, ()),
    ("PT", 260.0, ("implausible-extent",)),
])
def test_in_plane_extent_qc_per_modality(tmp_path, modality, spacing, qc):
    write_series(tmp_path / "s", np.zeros((3, 4, 4), np.int16), patient=PATIENT, study=STUDY,
                 series_uid=derived_uid("extent", modality, spacing), modality=modality,
                 spacing=(spacing, spacing, 2.0))
    settings = CrawlSettings(image_modalities=("CT", "MR", "PT"))
    assert [(r.status, r.qc) for r in _crawl(tmp_path / "s", settings)] == [("ok", qc)]


def test_slices_count_positions_not_files(tmp_path):
    """Three different images at each of two positions, nothing to split them by: the row
    says 2 slices (positions), not 6 (files)."""
    stored = np.arange(6 * 2 * 2, dtype=np.int16).reshape(6, 2, 2)
    write_series(tmp_path / "s", stored, patient=PATIENT, study=STUDY,
                 series_uid=derived_uid("positions"), slice_positions=[0, 0, 0, 3, 3, 3])
    (record,) = _crawl(tmp_path / "s")
    assert (record.status, record.n_instances, record.n_slices) == (
        "failed:conflicting-duplicates", 6, 2)
