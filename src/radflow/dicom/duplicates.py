"""Duplicate files and duplicate slices: read identical copies once, fail on conflicting ones.

Archives often hold the same series twice (copied into two folders, exported twice), or the same
slice re-sent with a new SOPInstanceUID. radflow compares content instead of guessing:

* files with one SOPInstanceUID: byte-identical files, or files whose slice geometry, rescale and
  decoded pixel values are identical, are the same image: the first (by path) is read, the others
  are ignored (QC ``duplicate-files-ignored``). Otherwise ``failed:conflicting-duplicates``.
* single-frame slices with different SOPInstanceUIDs at one position (when no echo, b-value, time
  point or acquisition tells them apart): identical content is read once (QC
  ``duplicate-slices-ignored``), anything else is ``failed:conflicting-duplicates``. Frames of
  multi-frame objects at one position are not compared (``failed:conflicting-duplicates``).

Only duplicates are read with their pixel data, so the crawl stays a header-only pass otherwise.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np

from radflow.dicom.frames import FrameHeader, frame_labels
from radflow.dicom.headers import read_dataset
from radflow.dicom.pixels import decode_pixels, transfer_syntax
from radflow.dicom.records import FileInfo
from radflow.errors import DicomError, RadflowError

logger = logging.getLogger(__name__)


def _header_key(frame: FrameHeader) -> tuple[object, ...]:
    fields = dataclasses.asdict(frame)
    for name in ("file", "frame", "sop_instance"):
        fields.pop(name)
    return tuple(sorted((k, repr(v)) for k, v in fields.items()))


def same_file(a: FileInfo, b: FileInfo) -> bool:
    """Whether two files hold the same images: same bytes, or same slice headers and same
    decoded pixel values (e.g. one file compressed, the other not). Undecodable files differ."""
    if a.path.read_bytes() == b.path.read_bytes():
        return True
    if [_header_key(f) for f in a.frames] != [_header_key(f) for f in b.frames]:
        return False
    try:
        pa = decode_pixels(read_dataset(a.path), a.path)
        pb = decode_pixels(read_dataset(b.path), b.path)
    except RadflowError:
        return False
    return pa.shape == pb.shape and bool(np.array_equal(pa, pb))


def same_image(a: FrameHeader, b: FrameHeader) -> bool:
    """Whether two slices hold the same image: same geometry, rescale and stored pixel values.

    Files that cannot be read or decoded count as different.
    """
    if _header_key(a) != _header_key(b):
        return False
    if a.file.read_bytes() == b.file.read_bytes() and a.frame == b.frame:
        return True
    try:
        da, db = read_dataset(a.file), read_dataset(b.file)
        if (transfer_syntax(da) == transfer_syntax(db) and a.frame is None and b.frame is None
                and "PixelData" in da and da.PixelData == db.get("PixelData")):
            return True
        pa, pb = decode_pixels(da, a.file), decode_pixels(db, b.file)
    except RadflowError:
        return False
    pa = pa[a.frame] if a.frame is not None and pa.ndim == 3 else pa
    pb = pb[b.frame] if b.frame is not None and pb.ndim == 3 else pb
    return pa.shape == pb.shape and bool(np.array_equal(pa, pb))


def resolve_duplicate_instances(infos: Sequence[FileInfo], where: dict[Path, str]) \
        -> tuple[list[FileInfo], int]:
    """Drop identical copies of files that share a SOPInstanceUID.

    Parameters
    ----------
    infos
        The files of one series, sorted by path.
    where
        A name for each file in messages (its position in the series, never its file name).

    Returns
    -------
    kept : list of FileInfo
        ``infos`` without the copies (the first file of each SOPInstanceUID is kept).
    n_ignored : int
        How many copies were dropped.

    Raises
    ------
    DicomError
        ``conflicting-duplicates`` naming two files with one SOPInstanceUID and different
        content.
    """
    by_uid: dict[str, list[FileInfo]] = defaultdict(list)
    for info in infos:
        by_uid[info.sop_instance].append(info)
    dropped: set[Path] = set()
    for uid, group in by_uid.items():
        if not uid or len(group) == 1:
            continue
        keep = group[0]
        for other in group[1:]:
            if not same_file(keep, other):
                raise DicomError(f"{where[other.path]} and {where[keep.path]} hold the same "
                                 "SOPInstanceUID but different content",
                                 reason="conflicting-duplicates")
            dropped.add(other.path)
    if dropped:
        logger.warning("%d identical duplicate file(s) ignored (same SOPInstanceUID, same "
                       "content)", len(dropped))
    return [i for i in infos if i.path not in dropped], len(dropped)


def resolve_same_position(frames: Sequence[FrameHeader], positions: Sequence[Hashable],
                          where: dict[Path, str]) -> tuple[list[int], int]:
    """Keep one of each group of identical slices that share a position.

    Parameters
    ----------
    frames
        The slices of one series.
    positions
        A hashable position key per slice.
    where
        A name for each file in messages (its position in the series, never its file name).

    Returns
    -------
    kept : list of int
        Indices into ``frames`` of the slices to use.
    n_ignored : int
        How many identical slices were dropped.

    Raises
    ------
    DicomError
        ``conflicting-duplicates`` for two slices at one position with different content (or
        frames of multi-frame objects, which are not compared).
    """
    by_position: dict[Hashable, list[int]] = defaultdict(list)
    for i, key in enumerate(positions):
        by_position[key].append(i)
    dropped: set[int] = set()
    labels = frame_labels(frames, where)
    for group in by_position.values():
        first = frames[group[0]]
        for i in group[1:]:
            other = frames[i]
            if first.frame is not None or other.frame is not None:
                raise DicomError(f"{labels[group[0]]} and {labels[i]} share a position and "
                                 "nothing (echo, b-value, time point, acquisition) tells them "
                                 "apart", reason="conflicting-duplicates")
            if not same_image(first, other):
                raise DicomError(f"{labels[i]} and {labels[group[0]]} share a slice "
                                 "position with different content, and nothing (echo, b-value, "
                                 "time point, acquisition) tells them apart",
                                 reason="conflicting-duplicates")
            dropped.add(i)
    if dropped:
        logger.warning("%d identical duplicate slice(s) ignored (same position, same content, "
                       "other SOPInstanceUID)", len(dropped))
    return [i for i in range(len(frames)) if i not in dropped], len(dropped)


__all__ = ["resolve_duplicate_instances", "resolve_same_position", "same_file", "same_image"]
