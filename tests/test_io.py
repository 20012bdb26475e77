"""Atomic writes, deterministic NIfTI files with clean headers, TSV quoting, clinical tables."""

from __future__ import annotations

import gzip
import os

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radflow.errors import ConfigError, InputFileError
from radflow.io import nifti as nifti_module
from radflow.io.atomic import atomic_path, write_bytes_if_changed, write_tsv
from radflow.io.nifti import nifti_bytes, nifti_image, read_image, voxel_hash, write_nifti
from radflow.io.tables import read_clinical


def _image() -> sitk.Image:
    arr = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)  # (z, y, x)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.5, 0.75, 2.0))
    img.SetOrigin((-10.0, 20.0, 30.0))
    c, s = np.cos(0.3), np.sin(0.3)
    img.SetDirection((c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    return img


def test_failed_block_leaves_nothing(tmp_path) -> None:
    dest = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("killed")
    assert os.listdir(tmp_path) == []


def test_write_if_changed_keeps_mtime(tmp_path) -> None:
    dest = tmp_path / "a.json"
    assert write_bytes_if_changed(dest, b"x")
    os.utime(dest, ns=(1, 1))
    assert not write_bytes_if_changed(dest, b"x")
    assert dest.stat().st_mtime_ns == 1
    assert write_bytes_if_changed(dest, b"y")


def test_nifti_roundtrip_geometry_and_clean_header(tmp_path) -> None:
    img = _image()
    dest = tmp_path / "v.nii.gz"
    digest = write_nifti(dest, img)
    back = read_image(dest)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img))
    np.testing.assert_allclose(back.GetSpacing(), img.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(back.GetOrigin(), img.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(back.GetDirection(), img.GetDirection(), atol=1e-6)
    assert voxel_hash(back) == digest
    hdr = nib.load(dest).header
    assert hdr["descrip"].item() == b"" and hdr["aux_file"].item() == b""
    assert hdr["intent_name"].item() == b""
    raw = dest.read_bytes()
    assert raw[3] & 0x08 == 0, "gzip header must not carry a file name"
    assert raw[4:8] == b"\0\0\0\0", "gzip mtime must be 0"
    assert gzip.decompress(raw)  # valid gzip
    assert nifti_bytes(img) == raw, "same image -> same bytes"


def test_read_image_errors_name_the_given_name(tmp_path) -> None:
    bad = tmp_path / "Doe_John.nii.gz"
    bad.write_bytes(b"not an image")
    with pytest.raises(InputFileError) as info:
        read_image(bad, name="source s123")
    assert "Doe" not in str(info.value) and "s123" in str(info.value)


def test_tsv_quotes_hostile_text(tmp_path) -> None:
    table = pd.DataFrame({"a": ["tab\there", 'quote"d', "new\nline"], "b": [1, 2, 3]})
    write_tsv(tmp_path / "t.tsv", table)
    back = pd.read_csv(tmp_path / "t.tsv", sep="\t")
    pd.testing.assert_frame_equal(back, table)


def test_read_clinical_csv_and_xlsx(tmp_path) -> None:
    table = pd.DataFrame({"pid": ["001", "A-2"], "age": [50, 61]})
    table.to_csv(tmp_path / "c.csv", index=False)
    assert list(read_clinical(tmp_path / "c.csv", "pid")["pid"]) == ["001", "A-2"]
    pd.DataFrame({"pid": [1001, 1002], "age": [1, 2]}).to_excel(
        tmp_path / "c.xlsx", sheet_name="clin", index=False)
    assert list(read_clinical(tmp_path / "c.xlsx", "pid", "clin")["pid"]) == ["1001", "1002"]
    with pytest.raises(ConfigError, match="no sheet"):
        read_clinical(tmp_path / "c.xlsx", "pid", "nope")
    with pytest.raises(ConfigError, match="no ID column 'id'"):
        read_clinical(tmp_path / "c.csv", "id")


def test_hash_of_written_file_matches_what_readers_see(tmp_path) -> None:
    """Geometry that float32 cannot hold exactly (real scanner origins) must not break hashes."""
    img = _image()
    img.SetOrigin((-123.456789, 87.654321, -1017.123456))
    img.SetSpacing((0.9765625, 0.9765625, 3.27))
    digest = write_nifti(tmp_path / "v.nii.gz", img)
    assert digest == voxel_hash(read_image(tmp_path / "v.nii.gz"))


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


GEOMETRIES = {
    "axial-negative-origin": ((0.9765625, 0.9765625, 1.25), (-249.51171875, -388.2, -1017.125),
                              np.eye(3)),
    "oblique": ((0.7, 0.83, 2.4), (-123.456789, 87.654321, -1017.123456),
                _rotation(np.array([0.3, -0.5, 0.8]), 0.61)),
    "flipped-sagittal": ((1.1, 0.6, 3.27), (-0.000123, -99999.5, 12.3456789),
                         np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])),
    "tiny-tilt": ((0.5, 0.5, 0.5), (1e-7, -3.3333333, 7.77777777),
                  _rotation(np.array([1.0, 0.0, 0.0]), 1e-4)),
}
PIXELS = {
    "int16": lambda rng, shape: rng.integers(-1024, 3072, shape).astype(np.int16),
    "float32": lambda rng, shape: rng.normal(0, 100, shape).astype(np.float32),
    "uint8": lambda rng, shape: rng.integers(0, 3, shape).astype(np.uint8),
    "int32": lambda rng, shape: rng.integers(0, 70000, shape).astype(np.int32),
    "rgb": lambda rng, shape: rng.integers(0, 256, (*shape, 3)).astype(np.uint8),
}


@pytest.mark.parametrize("pixels", PIXELS)
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_write_hash_equals_hash_of_file_read_back(tmp_path, monkeypatch, geometry, pixels):
    """write_nifti hashes the voxels in memory with the geometry SimpleITK reads back from the
    header (float32 in NIfTI), without reading the voxels: equal to hashing the file as read."""
    spacing, origin, direction = GEOMETRIES[geometry]
    arr = PIXELS[pixels](np.random.default_rng(7), (5, 6, 7))
    img = sitk.GetImageFromArray(arr, isVector=pixels == "rgb")
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection(direction.ravel().tolist())
    dest = tmp_path / "v.nii.gz"

    def no_voxel_read(*args, **kwargs):
        raise AssertionError("write_nifti read the voxels back")

    monkeypatch.setattr(nifti_module, "read_image", no_voxel_read)
    digest = write_nifti(dest, img)
    monkeypatch.undo()
    back = read_image(dest)
    assert back.GetPixelID() == img.GetPixelID()
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), arr)
    assert digest == voxel_hash(back)
    if geometry == "oblique":  # float32 storage changes this geometry beyond 1e-6 mm
        assert digest != voxel_hash(img)


def test_writer_streams_a_view_without_a_transposed_copy() -> None:
    """nibabel gets the SimpleITK buffer itself, as the (x, y, z) Fortran-order array."""
    img = _image()
    data = np.asarray(nifti_image(img).dataobj)
    assert data.shape == img.GetSize() and data.flags.f_contiguous
    assert np.shares_memory(data, sitk.GetArrayViewFromImage(img))
