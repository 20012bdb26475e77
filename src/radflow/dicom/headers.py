"""Reading DICOM files safely and extracting what the crawl and convert stages need.

* :func:`read_header` / :func:`read_dataset` read one file (header only / with pixels) and
  turn every way a file can fail into an :class:`~radflow.errors.InputFileError` with a
  closed-vocabulary reason (``empty-file``, ``not-dicom``, ``truncated``,
  ``missing-sop-class-uid``, ``unreadable``).
* :func:`frame_headers` gives the per-slice geometry and rescale of a single-frame image or of each
  frame of an enhanced multi-frame image (functional groups); :func:`frames_geometry` runs the
  one geometry check (:func:`radflow.dicom.geometry.check_series_geometry`) on them.
* Small tolerant value getters: a malformed value yields ``None``, never an exception.

Reading policy
--------------
Files are first read with ``force=False``. A file without the 128-byte preamble + ``DICM`` is
retried with ``force=True`` only when its first two bytes look like group 0002 or 0008 (what a
raw, meta-less DICOM data set starts with) and is then accepted only when it has a SOPClassUID;
anything else is ``not-dicom``. pydicom stops silently at the end of a short file, so truncation
is detected here: the last element read must end exactly at the end of the file, and when
reading stopped before the pixel data, the pixel data element must fit in the file.
Value validation is disabled while reading (pydicom's validation warnings quote values, which
could be names) and pydicom warnings are captured and counted at DEBUG level.
"""

from __future__ import annotations

import logging
import math
import os
import struct
import unicodedata
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom import config as pydicom_config
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import DeflatedExplicitVRLittleEndian

from radflow.dicom.geometry import SeriesGeometry, check_series_geometry
from radflow.errors import DicomError, InputFileError
from radflow.settings import GeometrySettings

logger = logging.getLogger(__name__)

_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
_UNDEFINED_LENGTH = 0xFFFFFFFF
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}
_RAW_STARTS = {b"\x02\x00", b"\x00\x02", b"\x08\x00", b"\x00\x08"}


@dataclass(frozen=True)
class FrameHeader:
    """Geometry and rescale of one image slice (a single-frame file or one frame).

    Attributes
    ----------
    file
        The file holding the slice.
    frame
        0-based frame index in a multi-frame file; ``None`` for a single-frame file.
    position
        ImagePositionPatient (LPS, mm); NaN when missing.
    orientation
        ImageOrientationPatient (6 cosines); NaN when missing.
    pixel_spacing
        PixelSpacing ``(row spacing, column spacing)`` in mm; NaN when missing.
    rows, cols
        Rows and Columns (0 when missing).
    slope, intercept
        RescaleSlope / RescaleIntercept (1 / 0 when absent).
    """

    file: Path
    frame: int | None
    position: tuple[float, float, float]
    orientation: tuple[float, ...]
    pixel_spacing: tuple[float, float]
    rows: int
    cols: int
    slope: float
    intercept: float

    @property
    def label(self) -> str:
        """File name, with the frame number for multi-frame files (for messages)."""
        name = self.file.name
        return name if self.frame is None else f"{name}[frame {self.frame + 1}]"


@contextmanager
def quiet_pydicom(path: Path | None = None) -> Iterator[list[warnings.WarningMessage]]:
    """Disable pydicom value validation and capture its warnings (counted at DEBUG level).

    Yields the list the captured warnings are appended to.
    """
    with warnings.catch_warnings(record=True) as caught, \
            pydicom_config.disable_value_validation():
        warnings.simplefilter("always")
        yield caught
    if caught:
        kinds = sorted({w.category.__name__ for w in caught})
        logger.debug("%d pydicom warning(s) (%s) reading %s", len(caught), ", ".join(kinds),
                     path.name if path is not None else "dataset")


def read_header(path: str | os.PathLike[str]) -> tuple[Dataset, bool]:
    """Read one DICOM file up to (not including) its pixel data.

    Returns
    -------
    dataset : pydicom.dataset.Dataset
        The header.
    has_pixel_data : bool
        Whether a pixel data element (Pixel Data, Float or Double Float Pixel Data) follows.

    Raises
    ------
    InputFileError
        Reason ``empty-file``, ``not-dicom``, ``truncated``, ``missing-sop-class-uid`` or
        ``unreadable`` (any other read error); the message names the file only.
    """
    return _read(Path(path), pixels=False)


def read_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read one DICOM file including its pixel data; errors as :func:`read_header`."""
    return _read(Path(path), pixels=True)[0]


def _read(path: Path, *, pixels: bool) -> tuple[Dataset, bool]:
    try:
        size = path.stat().st_size
        if size == 0:
            raise InputFileError(f"{path.name}: empty file", reason="empty-file")
        with path.open("rb") as fp, quiet_pydicom(path) as caught:
            try:
                ds = pydicom.dcmread(fp, stop_before_pixels=not pixels, force=False)
            except InvalidDicomError:
                fp.seek(0)
                if fp.read(2) not in _RAW_STARTS:
                    raise InputFileError(f"{path.name}: not a DICOM file (no DICM prefix)",
                                         reason="not-dicom") from None
                fp.seek(0)
                ds = pydicom.dcmread(fp, stop_before_pixels=not pixels, force=True)
                if "SOPClassUID" not in ds:
                    raise InputFileError(f"{path.name}: not a DICOM file (no DICM prefix and no "
                                         "SOPClassUID)", reason="not-dicom") from None
            if any("End of file" in str(w.message) for w in caught):
                raise InputFileError(f"{path.name}: truncated (end of file inside an element)",
                                     reason="truncated")
            has_pixels = _check_complete(ds, fp, size, path)
    except InputFileError:
        raise
    except (OSError, EOFError) as exc:
        raise InputFileError(f"{path.name}: cannot be read ({type(exc).__name__})",
                             reason="truncated" if isinstance(exc, EOFError)
                             else "unreadable") from exc
    except Exception as exc:  # pydicom raises many types on malformed input
        raise InputFileError(f"{path.name}: malformed DICOM ({type(exc).__name__})",
                             reason="unreadable") from exc
    if "SOPClassUID" not in ds and not _media_sop_class(ds):
        raise InputFileError(f"{path.name}: no SOPClassUID (0008,0016)",
                             reason="missing-sop-class-uid")
    return ds, has_pixels


def _check_complete(ds: Dataset, fp: Any, size: int, path: Path) -> bool:
    """Raise ``truncated`` when the file ends early; return whether pixel data is present."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        return any(t in ds for t in _PIXEL_TAGS) or fp.tell() < size
    pos = fp.tell()
    truncated = f"{path.name}: truncated (file ends inside a data element)"
    if pos < size:  # stopped before a pixel data element: it must fit in the file
        implicit, little = ds.original_encoding
        head = fp.read(12)
        if len(head) < 8:
            raise InputFileError(truncated, reason="truncated")
        endian = "<" if little is not False else ">"
        if implicit:
            length, header = struct.unpack(endian + "L", head[4:8])[0], 8
        elif head[4:6] in _LONG_VRS:
            if len(head) < 12:
                raise InputFileError(truncated, reason="truncated")
            length, header = struct.unpack(endian + "L", head[8:12])[0], 12
        else:
            length, header = struct.unpack(endian + "H", head[6:8])[0], 8
        if length != _UNDEFINED_LENGTH and pos + header + length > size:
            raise InputFileError(f"{path.name}: truncated (pixel data needs {length} bytes, "
                                 f"{max(size - pos - header, 0)} present)", reason="truncated")
        return True
    tags = list(ds.keys())
    if not tags:
        raise InputFileError(f"{path.name}: truncated (no data set after the file meta "
                             "information)", reason="truncated")
    last = ds.get_item(max(tags))
    if isinstance(last, RawDataElement) and last.length != _UNDEFINED_LENGTH \
            and last.value_tell is not None and last.value_tell + last.length != size:
        raise InputFileError(truncated, reason="truncated")
    return any(t in ds for t in _PIXEL_TAGS)


def _media_sop_class(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(meta.get("MediaStorageSOPClassUID", "")) if meta is not None else ""


def sop_class_uid(ds: Dataset) -> str:
    """SOPClassUID, or the file meta MediaStorageSOPClassUID (DICOMDIR has only the latter)."""
    return get_str(ds, "SOPClassUID") or _media_sop_class(ds)


def clean_text(value: Any, max_len: int = 64) -> str:
    """Printable single-line text: control/format characters removed, spaces collapsed, cut."""
    if value is None:
        return ""
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        value = "\\".join(str(v) for v in value)
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c
                   for c in str(value))
    return " ".join(text.split())[:max_len]


def _get(ds: Dataset, keyword: str) -> Any:
    try:
        return ds.get(keyword)
    except Exception:  # malformed value that pydicom cannot convert
        return None


def get_str(ds: Dataset, keyword: str) -> str:
    """The attribute as a stripped string ('' when absent or unreadable; multi-values joined)."""
    value = _get(ds, keyword)
    if value is None:
        return ""
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        return "\\".join(str(v).strip() for v in value)
    return str(value).strip()


def get_strs(ds: Dataset, keyword: str) -> tuple[str, ...]:
    """A multi-valued string attribute as a tuple of stripped strings (empty when absent)."""
    value = _get(ds, keyword)
    if value is None or value == "":
        return ()
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        return tuple(str(v).strip() for v in value)
    return (str(value).strip(),)


def get_floats(ds: Dataset, keyword: str, n: int | None = None) -> tuple[float, ...] | None:
    """A numeric attribute as finite floats; ``None`` when absent, malformed or of wrong length."""
    value = _get(ds, keyword)
    if value is None or value == "":
        return None
    values = value if isinstance(value, list | tuple | pydicom.multival.MultiValue) else [value]
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        return None
    if (n is not None and len(out) != n) or not all(math.isfinite(v) for v in out):
        return None
    return out


def get_float(ds: Dataset, keyword: str) -> float | None:
    """A single numeric value as float (``None`` when absent or malformed)."""
    values = get_floats(ds, keyword)
    return values[0] if values else None


def get_int(ds: Dataset, keyword: str) -> int | None:
    """A single integer value (``None`` when absent or malformed)."""
    value = get_float(ds, keyword)
    return int(value) if value is not None and value == int(value) else None


def number_of_frames(ds: Dataset) -> int:
    """NumberOfFrames (1 when absent or malformed)."""
    n = get_int(ds, "NumberOfFrames")
    return n if n is not None and n > 0 else 1


def _fg_item(group: Any, sequence: str) -> Dataset | None:
    """First item of ``sequence`` inside a functional group item, or ``None``."""
    if group is None:
        return None
    seq = _get(group, sequence)
    return seq[0] if seq else None


def _from_groups(groups: Sequence[Dataset | None], sequence: str, keyword: str,
                 getter: Callable[[Dataset, str], Any]) -> Any:
    for group in groups:
        item = _fg_item(group, sequence)
        if item is not None:
            value = getter(item, keyword)
            if value is not None:
                return value
    return None


def frame_headers(ds: Dataset, path: str | os.PathLike[str]) -> list[FrameHeader]:
    """Per-slice geometry and rescale of an image object.

    Single-frame objects give one :class:`FrameHeader` from the top-level attributes. Multi-frame
    objects give one per frame from the per-frame and shared functional groups (Plane Position,
    Plane Orientation, Pixel Measures, Pixel Value Transformation; per-frame wins over shared,
    shared over top level).

    Raises
    ------
    DicomError
        ``unsupported-multiframe`` for a multi-frame object without per-frame plane positions
        (classic NM/US/XA/SC multi-frame).
    """
    path = Path(path)
    rows, cols = get_int(ds, "Rows") or 0, get_int(ds, "Columns") or 0
    n_frames = number_of_frames(ds)
    per_frame = _get(ds, "PerFrameFunctionalGroupsSequence")
    shared_seq = _get(ds, "SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    if n_frames == 1 and not per_frame:
        return [_frame(path, None, ds, [shared], rows, cols)]
    if not per_frame or len(per_frame) != n_frames:
        raise DicomError(
            f"{path.name}: multi-frame object with {n_frames} frames and "
            f"{len(per_frame) if per_frame else 0} per-frame functional group items; only "
            "enhanced objects with per-frame plane positions are supported",
            reason="unsupported-multiframe")
    return [_frame(path, k, ds, [per_frame[k], shared], rows, cols) for k in range(n_frames)]


def _frame(path: Path, frame: int | None, ds: Dataset, groups: list[Dataset | None], rows: int,
           cols: int) -> FrameHeader:
    def pick(sequence: str, keyword: str, n: int) -> tuple[float, ...]:
        value = _from_groups(groups, sequence, keyword, lambda d, k: get_floats(d, k, n))
        if value is None:
            value = get_floats(ds, keyword, n)
        return value if value is not None else (math.nan,) * n

    slope = _from_groups(groups, "PixelValueTransformationSequence", "RescaleSlope", get_float)
    intercept = _from_groups(groups, "PixelValueTransformationSequence", "RescaleIntercept",
                             get_float)
    if slope is None:
        slope = get_float(ds, "RescaleSlope")
    if intercept is None:
        intercept = get_float(ds, "RescaleIntercept")
    return FrameHeader(
        file=path,
        frame=frame,
        position=pick("PlanePositionSequence", "ImagePositionPatient", 3),  # type: ignore[arg-type]
        orientation=pick("PlaneOrientationSequence", "ImageOrientationPatient", 6),
        pixel_spacing=pick("PixelMeasuresSequence", "PixelSpacing", 2),  # type: ignore[arg-type]
        rows=rows,
        cols=cols,
        slope=1.0 if slope is None else slope,
        intercept=0.0 if intercept is None else intercept,
    )


def frames_geometry(frames: Sequence[FrameHeader], settings: GeometrySettings,
                    single_slice_spacing: float | None = None) -> SeriesGeometry:
    """Run the one geometry check on slices; ``order`` indexes ``frames``.

    Raises
    ------
    SeriesGeometryError
        See :func:`radflow.dicom.geometry.check_series_geometry`.
    """
    return check_series_geometry(
        np.array([f.position for f in frames], dtype=float).reshape(-1, 3),
        np.array([f.orientation for f in frames], dtype=float).reshape(-1, 6),
        np.array([f.pixel_spacing for f in frames], dtype=float).reshape(-1, 2),
        np.array([(f.rows, f.cols) for f in frames], dtype=np.int64).reshape(-1, 2),
        settings,
        labels=[f.label for f in frames],
        single_slice_spacing=single_slice_spacing,
    )


__all__ = [
    "FrameHeader",
    "clean_text",
    "frame_headers",
    "frames_geometry",
    "get_float",
    "get_floats",
    "get_int",
    "get_str",
    "get_strs",
    "number_of_frames",
    "quiet_pydicom",
    "read_dataset",
    "read_header",
    "sop_class_uid",
]
