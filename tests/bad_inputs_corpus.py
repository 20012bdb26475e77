"""The bad-input corpus: every difficult DICOM case, written by pydicom from one small clean series.

Each :class:`Case` writes its files into a folder of its own (one patient per case, so that a whole
corpus can be crawled at once) and states the exact outcome: the crawl status of every record, and
the convert status of every record the crawl accepts. Records are named ``#<series number><split>``
(series) or ``file:<name>`` (a file that belongs to no series).

The clean series and :class:`Case` are in ``bad_inputs_base.py``, the pixel-data cases (transfer
syntaxes, multi-frame, 4-D, stored values) in ``bad_inputs_pixels.py``, classic multi-frame
objects and colour images in ``bad_inputs_classic.py``; this module holds the
series, geometry, file and text cases and collects them all in :data:`CASES`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from bad_inputs_base import (
    CLEAN,
    COLS,
    ORIGIN,
    ROWS,
    SPACING,
    STORED,
    Case,
    N,
    _x,
    _y,
    clean,
    study_of,
    uid,
)
from bad_inputs_classic import CLASSIC_CASES
from bad_inputs_pixels import (
    FOUR_D_CASES,
    MULTIFRAME_CASES,
    TRANSFER_SYNTAX_CASES,
    VALUE_CASES,
    _compress,
)
from pydicom.dataset import Dataset
from pydicom.uid import (
    RLELossless,
)

from radflow.demo.synthetic import Patient, derived_uid, write_series, write_text_report

# --- several series, folders, duplicates -----------------------------------------------------

def _two_series(folder: Path, patient: Patient) -> None:
    clean(folder, patient, name="a", series_number=1, file_names=[f"A{k}" for k in range(N)])
    clean(folder, patient, name="b", series_number=2, file_names=[f"B{k}" for k in range(N)],
          spacing=(0.5, 0.5, 1.0))


def _two_orientations(folder: Path, patient: Patient) -> None:
    clean(folder, patient, name="ax", series_number=1, file_names=[f"A{k}" for k in range(N)])
    clean(folder, patient, name="cor", series_number=2, file_names=[f"C{k}" for k in range(N)],
          row_direction=(1.0, 0.0, 0.0), column_direction=(0.0, 0.0, -1.0))


def _split_across_folders(folder: Path, patient: Patient) -> None:
    files = clean(folder / "all", patient)
    for k, f in enumerate(files):
        target = folder / ("first" if k < 3 else "second")
        target.mkdir(exist_ok=True)
        f.rename(target / f.name)
    (folder / "all").rmdir()


def _identical_copies(folder: Path, patient: Patient) -> None:
    files = clean(folder / "a", patient)
    shutil.copytree(folder / "a", folder / "b")
    assert len(files) == N


def _reencoded_copy(folder: Path, patient: Patient) -> None:
    clean(folder / "a", patient)
    # same SOPInstanceUIDs (pydicom would make new ones by default), same pixels, other encoding
    clean(folder / "b", patient, per_slice=_compress(RLELossless, generate_instance_uid=False))


def _conflicting_instance(folder: Path, patient: Patient) -> None:
    files = clean(folder / "a", patient)
    ds = pydicom.dcmread(files[2])
    ds.PixelData = np.zeros((ROWS, COLS), np.int16).tobytes()
    (folder / "b").mkdir()
    ds.save_as(folder / "b" / files[2].name)


def _same_position(identical: bool) -> Callable[[Path, Patient], None]:
    def build(folder: Path, patient: Patient) -> None:
        files = clean(folder, patient)
        ds = pydicom.dcmread(files[2])
        new_uid = derived_uid(ds.SOPInstanceUID, 2)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = new_uid
        if not identical:
            ds.PixelData = np.zeros((ROWS, COLS), np.int16).tobytes()
        ds.save_as(folder / "RESENT.dcm")
    return build


SERIES_CASES = [
    Case("two-series-one-folder", _two_series, {"#1": "ok", "#2": "ok"}, expect={"#1": CLEAN}),
    Case("two-orientations-one-folder", _two_orientations, {"#1": "ok", "#2": "ok"},
         expect={"#1": CLEAN}),
    Case("uid-split-across-folders", _split_across_folders, {"#1": "ok"}, expect={"#1": CLEAN}),
    Case("identical-duplicate-files", _identical_copies, {"#1": "ok"}, expect={"#1": CLEAN},
         qc={"#1": ("duplicate-files-ignored",)}),
    Case("reencoded-duplicate-files", _reencoded_copy, {"#1": "ok"}, expect={"#1": CLEAN},
         qc={"#1": ("duplicate-files-ignored",)}),
    Case("conflicting-duplicate-instance", _conflicting_instance,
         {"#1": "failed:conflicting-duplicates"}),
    Case("conflicting-same-position", _same_position(identical=False),
         {"#1": "failed:conflicting-duplicates"}),
    Case("identical-same-position", _same_position(identical=True), {"#1": "ok"},
         expect={"#1": CLEAN}, qc={"#1": ("duplicate-slices-ignored",)}),
]


# --- geometry ------------------------------------------------------------------------------------

def _linear_field(positions: np.ndarray) -> np.ndarray:
    """An affine function of the physical position: linear interpolation reproduces it."""
    return 3.0 * positions[..., 0] - 2.0 * positions[..., 1] + 5.0 * positions[..., 2] + 100.0


def _field_slices(folder: Path, patient: Patient, offsets: list[tuple[float, float, float]]) \
        -> None:
    """Slices whose voxels hold :func:`_linear_field` at their own physical position."""
    stored = []
    for off in offsets:
        origin = np.asarray(ORIGIN) + np.asarray(off)
        pos = origin + np.stack([_x[0] * SPACING[0], _y[0] * SPACING[1],
                                 np.zeros_like(_x[0], dtype=float)], axis=-1)
        stored.append(np.round(_linear_field(pos)).astype(np.int16))
    files = []
    for k, off in enumerate(offsets):
        def place(i: int, ds: Dataset, off: tuple[float, float, float] = off) -> None:
            ds.ImagePositionPatient = [float(v) for v in np.asarray(ORIGIN) + np.asarray(off)]
        files += write_series(folder, np.asarray(stored[k:k + 1]), patient=patient,
                              study=study_of(patient), series_uid=uid(patient),
                              spacing=SPACING, file_names=[f"S{k}.dcm"], uid_seed=f"k{k}",
                              per_slice=place, intercept=0.0, modality="MR")
    assert len(files) == len(offsets)


def field_check(image: Any, info: dict[str, Any]) -> None:
    """Every voxel not touched by the fill value equals the field at its physical position
    (within the rounding of the stored integers, 0.5, and float32)."""
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(image).astype(np.float64)
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in image.GetSize()], indexing="ij"), -1)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    pos = (np.asarray(image.GetOrigin()) + (idx * np.asarray(image.GetSpacing())) @ direction.T)
    truth = np.transpose(_linear_field(pos), (2, 1, 0))
    fill = info["resampling"]["fill_value"]
    inside = np.ones(arr.shape, bool)
    added = info["resampling"]["grid_added_voxels"]
    if added["rows"] or added["columns"]:   # the grown border mixes in the fill value
        inside[:, :added["rows"] + 1, :] = False
        inside[:, -(added["rows"] + 1):, :] = False
    assert inside.sum() > arr.size // 2
    np.testing.assert_allclose(arr[inside], truth[inside], rtol=0, atol=0.5 + 1e-3)
    assert np.all(arr[~inside] >= fill - 1e-3)


_TILT = np.tan(np.radians(12.0)) * SPACING[2]   # in-plane shift per slice (mm), along y
TILTED = [(0.0, k * _TILT, k * SPACING[2]) for k in range(N)]
UNEVEN = [(0.0, 0.0, z) for z in (0.0, 2.5, 5.0, 8.0, 10.0, 12.5)]
MISSING = [(0.0, 0.0, z) for z in (0.0, 2.5, 5.0, 10.0, 12.5)]
_RESAMPLE = {"geometry": {"gantry_tilt": "resample", "uneven_spacing": "resample"}}


def _change(k0: int, **values: Any) -> Callable[[int, Dataset], None]:
    def change(k: int, ds: Dataset) -> None:
        if k == k0:
            for keyword, value in values.items():
                setattr(ds, keyword, value)
    return change


def _columns(k: int, ds: Dataset) -> None:
    if k == 1:
        ds.Columns = COLS - 1
        ds.PixelData = np.zeros((ROWS, COLS - 1), np.int16).tobytes()


GEOMETRY_CASES = [
    Case("gantry-tilt", lambda f, p: _field_slices(f, p, TILTED), {"#1": "failed:gantry-tilt"}),
    Case("gantry-tilt-resampled", lambda f, p: _field_slices(f, p, TILTED), {"#1": "ok"},
         settings=_RESAMPLE, expect={"#1": field_check}),
    Case("uneven-spacing", lambda f, p: _field_slices(f, p, UNEVEN),
         {"#1": "failed:uneven-spacing"}),
    Case("uneven-spacing-resampled", lambda f, p: _field_slices(f, p, UNEVEN), {"#1": "ok"},
         settings=_RESAMPLE, expect={"#1": field_check}),
    Case("missing-slice", lambda f, p: _field_slices(f, p, MISSING),
         {"#1": "failed:missing-slice"}),
    Case("missing-slice-never-resampled", lambda f, p: _field_slices(f, p, MISSING),
         {"#1": "failed:missing-slice"}, settings=_RESAMPLE),
    Case("mixed-orientation",
         lambda f, p: clean(f, p, per_slice=_change(2, ImageOrientationPatient=[1, 0, 0,
                                                                                0, 0, -1])),
         {"#1": "failed:mixed-orientation"}),
    Case("inconsistent-rows-columns", lambda f, p: clean(f, p, per_slice=_columns),
         {"#1": "failed:inconsistent-dimensions"}),
    Case("too-few-slices", lambda f, p: clean(f, p, stored=STORED[:2]),
         {"#1": "failed:too-few-slices"}),
]


# --- what a series is, and broken files ------------------------------------------------------

def _secondary_capture(k: int, ds: Dataset) -> None:
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"


def _drop_pixels(k: int, ds: Dataset) -> None:
    if k == 1:
        del ds.PixelData


def _truncate(folder: Path, patient: Patient) -> None:
    files = clean(folder, patient)
    files[4].write_bytes(files[4].read_bytes()[:-100])


def _private_payload(folder: Path, patient: Patient) -> None:
    """A private element of undefined length whose content never ends (after the series UID,
    like a Siemens CSA header in group 0029)."""
    files = clean(folder, patient)
    raw = files[3].read_bytes()
    at = raw.rindex(b"\xe0\x7f\x10\x00")          # just before (7FE0,0010) Pixel Data
    blob = (b"\x29\x00\x10\x00LO\x0c\x00SIEMENS CSA " + b"\x29\x00\x10\x10UN\x00\x00"
            + b"\xff\xff\xff\xff" + b"\x01\x02\x03\x04garbage!" * 8)
    files[3].write_bytes(raw[:at] + blob + raw[at:])


def _files(**named: bytes) -> Callable[[Path, Patient], None]:
    def build(folder: Path, patient: Patient) -> None:
        clean(folder, patient)
        for name, data in named.items():
            (folder / name).write_bytes(data)
    return build


KIND_CASES = [
    Case("localizer", lambda f, p: clean(f, p, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER")),
         {"#1": "excluded:localizer"}),
    Case("topogram", lambda f, p: clean(f, p, image_type=("ORIGINAL", "PRIMARY", "TOPOGRAM")),
         {"#1": "excluded:localizer"}),
    Case("derived", lambda f, p: clean(f, p, image_type=("DERIVED", "SECONDARY", "MPR")),
         {"#1": "excluded:derived"}),
    Case("derived-included", lambda f, p: clean(f, p, image_type=("DERIVED", "SECONDARY")),
         {"#1": "ok"}, settings={"include_derived": True}, expect={"#1": CLEAN}),
    Case("secondary-capture", lambda f, p: clean(f, p, per_slice=_secondary_capture),
         {"#1": "excluded:secondary-capture"}),
    Case("non-image-report",
         lambda f, p: write_text_report(f, patient=p, study=study_of(p), series_uid=uid(p)),
         {"#99": "excluded:non-image-sr"}),
    Case("missing-pixel-data", lambda f, p: clean(f, p, per_slice=_drop_pixels),
         {"#1": "failed:missing-pixel-data"}),
    Case("truncated-file", _truncate, {"#1": "failed:truncated"}),
    Case("unreadable-private-payload", _private_payload, {"#1": "failed:unreadable-private-data"}),
    Case("not-dicom", _files(**{"notes.dcm": b"\x89PNG\r\n\x1a\n" + bytes(300)}),
         {"#1": "ok", "file:notes.dcm": "failed:not-dicom"},
         qc={"#1": ("unreadable-file-in-folder",)}),
    Case("zero-byte-file", _files(**{"IM9999.dcm": b""}),
         {"#1": "ok", "file:IM9999.dcm": "failed:empty-file"},
         qc={"#1": ("unreadable-file-in-folder",)}),
]


# --- character sets and hostile values ---------------------------------------------------------

KOREAN_ID = "홍길동-1"
KOREAN_NAME = "Hong^Gildong=洪^吉洞=홍^길동"


def _korean(charset: str | list[str] | None, raw: bool = False) -> Callable[[Path, Patient], None]:
    def build(folder: Path, patient: Patient) -> None:
        korean = Patient(patient.patient_id, KOREAN_NAME, charset=charset)
        if not raw:
            clean(folder, korean)
            return

        def plant(k: int, ds: Dataset) -> None:  # bytes as Korean systems write them
            ds.SpecificCharacterSet = "ISO_IR 149"
            ds.add_new(0x00100010, "PN", KOREAN_NAME.encode("euc_kr"))
        clean(folder, Patient(patient.patient_id, "X", charset=None), per_slice=plant)
    return build


def _bad_bytes(k: int, ds: Dataset) -> None:
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.add_new(0x0008103E, "LO", b"T1 \xff\xfe AXIAL")       # not UTF-8


HOSTILE = {
    "PatientID": "../../../etc/passwd\x00/" + "\x1b[31m" + "x" * 64,
    "SeriesDescription": "../..\x00\t\n\r;rm -rf /\"'," + "\U0001F600" * 3 + "y" * 10_000,
}


def _hostile(folder: Path, patient: Patient) -> None:
    def plant(k: int, ds: Dataset) -> None:
        ds.SeriesDescription = HOSTILE["SeriesDescription"]
    clean(folder, patient, per_slice=plant)


TEXT_CASES = [
    Case("charset-korean-iso2022", _korean(["", "ISO 2022 IR 149"]), {"#1": "ok"}),
    Case("charset-utf8", _korean("ISO_IR 192"), {"#1": "ok"}),
    Case("charset-iso-ir-149-nonconformant", _korean(None, raw=True), {"#1": "ok"},
         qc={"#1": ("charset-corrected",)}),
    Case("charset-unknown",
         lambda f, p: clean(f, Patient(p.patient_id, "Doe^J", charset="ISO_IR 999")),
         {"#1": "ok"}, qc={"#1": ("charset-unknown",)}),
    Case("charset-invalid-bytes", lambda f, p: clean(f, p, per_slice=_bad_bytes), {"#1": "ok"},
         qc={"#1": ("charset-decode-error",)}),
    Case("hostile-values", _hostile, {"#1": "ok"}, expect={"#1": CLEAN}),
]

CASES: list[Case] = (TRANSFER_SYNTAX_CASES + MULTIFRAME_CASES + CLASSIC_CASES + FOUR_D_CASES
                     + SERIES_CASES + VALUE_CASES + GEOMETRY_CASES + KIND_CASES + TEXT_CASES)


def patient_for(case: Case) -> Patient:
    """The case's own patient (the hostile case plants a hostile PatientID)."""
    if case.id == "hostile-values":
        return Patient(HOSTILE["PatientID"], "Doe^Jane")
    return Patient(f"BAD-{case.id}", "Doe^Jane")


def record_name(record: Any) -> str:
    """``#<series number><split>`` or ``file:<name>``."""
    if not record.series_uid:
        return f"file:{record.files[0].name}"
    return f"#{record.series_number}{record.split}"
