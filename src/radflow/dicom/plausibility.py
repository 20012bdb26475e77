"""Plausibility of a volume's physical size: QC warnings for grids no scanner acquires.

A header can describe a regular grid that passes every geometry rule and still be wrong, e.g. a
Siemens mosaic that is not recognised as one (a 6 x 6 grid of 64 x 64 tiles read as one
384 x 384 slice spanning 1.25 m). Such volumes keep their status and get QC warnings
(:data:`radflow.dicom.reasons.QC_WARNINGS`):

``implausible-extent``
    The in-plane extent (Rows x row spacing or Columns x column spacing) exceeds
    :data:`MAX_IN_PLANE_EXTENT_MM` for the modality (:data:`DEFAULT_MAX_EXTENT_MM` for others).
``acquisition-matrix-mismatch``
    A single slice whose Rows and Columns are both at least :data:`MATRIX_RATIO` times the
    largest value of its AcquisitionMatrix (0018,1310): more than interpolation (x2) explains;
    typically several images tiled into one.

Pure functions over :class:`~radflow.dicom.frames.FrameHeader` values (no I/O).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from radflow.dicom.frames import FrameHeader

#: Largest plausible in-plane extent (mm) per modality: CT up to extended-FOV reconstructions
#: (~800 mm), PET/NM up to whole-ring reconstructions (e.g. 400 x 2.04 mm = 815 mm), MR bores
#: image at most ~600 mm.
MAX_IN_PLANE_EXTENT_MM: dict[str, float] = {"CT": 850.0, "PT": 1000.0, "NM": 1000.0,
                                            "MR": 700.0}
#: For modalities not in :data:`MAX_IN_PLANE_EXTENT_MM`.
DEFAULT_MAX_EXTENT_MM = 700.0
#: Rows and Columns this many times the acquired matrix (or more) in a single slice are flagged.
MATRIX_RATIO = 3.0


def extent_qc(frames: Sequence[FrameHeader], modality: str, n_positions: int) -> set[str]:
    """QC codes for an implausible grid (see the module notes).

    Parameters
    ----------
    frames
        The slices of one volume (the first slice's grid is checked).
    modality
        The series' Modality.
    n_positions
        Number of distinct slice positions of the volume.
    """
    if not frames:
        return set()
    first = frames[0]
    codes: set[str] = set()
    row_spacing, col_spacing = first.pixel_spacing
    extent = max(first.rows * row_spacing, first.cols * col_spacing)
    limit = MAX_IN_PLANE_EXTENT_MM.get(modality.upper(), DEFAULT_MAX_EXTENT_MM)
    if math.isfinite(extent) and extent > limit:
        codes.add("implausible-extent")
    acquired = first.acquisition_matrix
    if (n_positions == 1 and acquired > 0
            and min(first.rows, first.cols) >= MATRIX_RATIO * acquired):
        codes.add("acquisition-matrix-mismatch")
    return codes


__all__ = ["DEFAULT_MAX_EXTENT_MM", "MATRIX_RATIO", "MAX_IN_PLANE_EXTENT_MM", "extent_qc"]
