"""Reading DICOM files safely and extracting what the crawl and convert stages need.

* :func:`read_header` / :func:`read_dataset` read one file (header only / with pixels) and
  turn every way a file can fail into an :class:`~radflow.errors.InputFileError` with a
  closed-vocabulary reason (``empty-file``, ``not-dicom``, ``truncated``,
  ``unreadable-private-data``, ``missing-sop-class-uid``, ``unreadable``). A file read only in
  part carries the SeriesInstanceUID of its partial header
  (:class:`~radflow.errors.PartialFileError`), so that it fails its own series instead of
  vanishing from it.
* Non-conformant SpecificCharacterSet values are corrected on reading
  (:func:`radflow.dicom.charset.correct_charset`; :func:`charset_qc` tells what was done).
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
could be names) and pydicom warnings are captured and counted at DEBUG level. Messages name no
file at all: the caller knows the file's position in its series and adds it
(:mod:`radflow.dicom.naming`).
"""

from __future__ import annotations

import logging
import math
import os
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pydicom
from pydicom import config as pydicom_config
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_partial
from pydicom.tag import BaseTag
from pydicom.uid import DeflatedExplicitVRLittleEndian

from radflow import text
from radflow.dicom.charset import correct_charset
from radflow.errors import InputFileError, PartialFileError, TruncatedFileError

logger = logging.getLogger(__name__)

_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
_UNDEFINED_LENGTH = 0xFFFFFFFF
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}
_RAW_STARTS = {b"\x02\x00", b"\x00\x02", b"\x08\x00", b"\x00\x08"}


@contextmanager
def quiet_pydicom(path: Path | None = None) -> Iterator[list[warnings.WarningMessage]]:
    """Disable pydicom value validation and capture its warnings (counted at DEBUG level).

    ``path`` is accepted for the callers' convenience and never logged (file names can hold
    patient names). Yields the list the captured warnings are appended to.
    """
    with warnings.catch_warnings(record=True) as caught, \
            pydicom_config.disable_value_validation():
        warnings.simplefilter("always")
        yield caught
    if caught:
        kinds = sorted({w.category.__name__ for w in caught})
        logger.debug("%d pydicom warning(s) (%s) while reading", len(caught), ", ".join(kinds))


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
        Reason ``empty-file``, ``not-dicom``, ``truncated``
        (a :class:`~radflow.errors.TruncatedFileError`), ``missing-sop-class-uid`` or
        ``unreadable`` (any other read error). The message names no file (file names can hold
        patient names): callers add the file's position in its series
        (:func:`radflow.dicom.naming.named`).
    """
    return _read(Path(path), pixels=False)


def read_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read one DICOM file including its pixel data; errors as :func:`read_header`."""
    return _read(Path(path), pixels=True)[0]


def _read(path: Path, *, pixels: bool) -> tuple[Dataset, bool]:
    try:
        size = path.stat().st_size
        if size == 0:
            raise InputFileError("empty file", reason="empty-file")
        fp = path.open("rb")
    except InputFileError:
        raise
    except OSError as exc:
        raise InputFileError(f"cannot be read ({type(exc).__name__})",
                             reason="unreadable") from exc
    with fp:
        try:
            with quiet_pydicom(path) as caught:
                try:
                    ds = pydicom.dcmread(fp, stop_before_pixels=not pixels, force=False)
                except InvalidDicomError:
                    fp.seek(0)
                    if fp.read(2) not in _RAW_STARTS:
                        raise InputFileError("not a DICOM file (no DICM prefix)",
                                             reason="not-dicom") from None
                    fp.seek(0)
                    ds = pydicom.dcmread(fp, stop_before_pixels=not pixels, force=True)
                    if "SOPClassUID" not in ds:
                        raise InputFileError("not a DICOM file (no DICM prefix "
                                             "and no SOPClassUID)", reason="not-dicom") from None
                try:
                    if any("End of file" in str(w.message) for w in caught):
                        raise InputFileError("truncated (end of file inside an "
                                             "element)", reason="truncated")
                    has_pixels = _check_complete(ds, fp, size, path)
                except InputFileError as exc:
                    raise TruncatedFileError(
                        str(exc), series_uid=get_str(ds, "SeriesInstanceUID")) from None
        except InputFileError:
            raise
        except EOFError as exc:
            raise TruncatedFileError(f"truncated ({type(exc).__name__})") from exc
        except Exception as exc:  # pydicom raises many types (often OSError) on malformed input
            tag, uid = _failing_tag(path)
            if tag is not None and tag.is_private:
                raise PartialFileError(f"private element {tag} cannot be parsed "
                                       f"({type(exc).__name__}); the rest of the file is hidden "
                                       "behind it", reason="unreadable-private-data",
                                       series_uid=uid) from exc
            raise InputFileError(f"malformed DICOM ({type(exc).__name__})",
                                 reason="unreadable") from exc
    if "SOPClassUID" not in ds and not _media_sop_class(ds):
        raise InputFileError("no SOPClassUID (0008,0016)",
                             reason="missing-sop-class-uid")
    ds._radflow_charset_qc = correct_charset(ds)
    return ds, has_pixels


def charset_qc(ds: Dataset) -> tuple[str, ...]:
    """QC codes of the SpecificCharacterSet correction done when ``ds`` was read."""
    return tuple(getattr(ds, "_radflow_charset_qc", ()))


def _failing_tag(path: Path) -> tuple[BaseTag | None, str]:
    """The top-level element being parsed when reading ``path`` failed (``None`` if unknown),
    and the SeriesInstanceUID read before it ("" if none)."""
    seen: list[BaseTag] = []

    def note(tag: BaseTag, vr: str | None, length: int) -> bool:
        seen.append(tag)
        return False

    try:
        with path.open("rb") as fp, quiet_pydicom(path):
            read_partial(fp, stop_when=note, force=True)
    except Exception:  # the failure being diagnosed
        if not seen:
            return None, ""
        failing = seen[-1]
        try:
            with path.open("rb") as fp, quiet_pydicom(path):
                head = read_partial(fp, stop_when=lambda tag, vr, length: tag == failing,
                                    force=True)
            return failing, get_str(head, "SeriesInstanceUID")
        except Exception:  # nothing usable before the failing element
            return failing, ""
    return None, ""


def _check_complete(ds: Dataset, fp: Any, size: int, path: Path) -> bool:
    """Raise ``truncated`` when the file ends early; return whether pixel data is present."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        # the data set is one zlib stream: the file position says nothing; read it all
        if any(t in ds for t in _PIXEL_TAGS):
            return True
        fp.seek(0)
        return any(t in pydicom.dcmread(fp, force=True) for t in _PIXEL_TAGS)
    pos = fp.tell()
    truncated = "truncated (file ends inside a data element)"
    if pos < size:  # stopped before a pixel data element: it must fit in the file
        implicit, little = ds.original_encoding
        head = fp.read(12)
        if len(head) < 8:
            raise InputFileError(truncated, reason="truncated")
        endian = "<" if little is not False else ">"
        if implicit or not head[4:6].isalpha() or not head[4:6].isupper():
            # implicit, or an implicit-encoded element in an explicit data set (seen in the wild)
            length, header = struct.unpack(endian + "L", head[4:8])[0], 8
        elif head[4:6] in _LONG_VRS:
            if len(head) < 12:
                raise InputFileError(truncated, reason="truncated")
            length, header = struct.unpack(endian + "L", head[8:12])[0], 12
        else:
            length, header = struct.unpack(endian + "H", head[6:8])[0], 8
        if length != _UNDEFINED_LENGTH and pos + header + length > size:
            raise InputFileError(f"truncated (pixel data needs {length} bytes, "
                                 f"{max(size - pos - header, 0)} present)", reason="truncated")
        return True
    tags = list(ds.keys())
    if not tags:
        raise InputFileError("truncated (no data set after the file meta "
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
    """Printable single-line text (see :func:`radflow.text.clean_text`); multi-values joined."""
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        value = "\\".join(str(v) for v in value)
    return text.clean_text(value, max_len)


def get_value(ds: Dataset, keyword: str) -> Any:
    """The attribute's value as pydicom converts it; ``None`` when absent or unconvertible."""
    try:
        return ds.get(keyword)
    except Exception:  # malformed value that pydicom cannot convert
        return None


def get_str(ds: Dataset, keyword: str) -> str:
    """The attribute as a stripped string ('' when absent or unreadable; multi-values joined)."""
    value = get_value(ds, keyword)
    if value is None:
        return ""
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        return "\\".join(str(v).strip() for v in value)
    return str(value).strip()


def get_strs(ds: Dataset, keyword: str) -> tuple[str, ...]:
    """A multi-valued string attribute as a tuple of stripped strings (empty when absent)."""
    value = get_value(ds, keyword)
    if value is None or value == "":
        return ()
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        return tuple(str(v).strip() for v in value)
    return (str(value).strip(),)


def get_floats(ds: Dataset, keyword: str, n: int | None = None) -> tuple[float, ...] | None:
    """A numeric attribute as finite floats; ``None`` when absent, malformed or of wrong length."""
    value = get_value(ds, keyword)
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


__all__ = [
    "charset_qc",
    "clean_text",
    "get_float",
    "get_floats",
    "get_int",
    "get_str",
    "get_strs",
    "get_value",
    "number_of_frames",
    "quiet_pydicom",
    "read_dataset",
    "read_header",
    "sop_class_uid",
]
