"""Resampling a stack of parallel slices onto a regular orthogonal grid (opt-in policy).

Used when ``geometry.gantry_tilt`` or ``geometry.uneven_spacing`` is ``resample``:

* **gantry tilt** (or any in-plane shift of the slices along the stack): each slice is shifted
  in-plane by its own offset from the first slice, measured from ImagePositionPatient, onto a grid
  whose third axis is the true slice normal. The grid keeps the first slice's in-plane voxel grid
  and grows by whole voxels so that no slice content is cut off; voxels no slice covers get the
  fill value (the smallest value of the series).
* **uneven spacing**: slices are placed at equidistant positions between the first and the last
  slice, spaced by the median gap (adjusted to end exactly on the last slice).

Interpolation is linear (bilinear in-plane, linear between the two neighbouring slices along the
normal), so a voxel that coincides with an input voxel keeps its value exactly. Missing slices
are never interpolated (the geometry check rejects them first). Pure functions on arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Offsets below this many voxels are DS rounding of ImagePositionPatient, not a shift that
#: needs a larger grid.
GRID_SLACK_VOXELS = 1e-3


@dataclass(frozen=True)
class Resampling:
    """How a sorted stack of parallel slices maps onto the output grid.

    Attributes
    ----------
    reasons
        What is repaired: ``"gantry-tilt"``, ``"uneven-spacing"`` or both.
    distances
        Position of each input slice along the normal, relative to the first (mm), ascending.
    offsets
        In-plane offset of each input slice's first voxel from the first slice's, in voxels
        ``(columns, rows)``; all zero unless ``"gantry-tilt"`` is repaired.
    grid_shift
        Output voxel (0, 0) in voxels of the first slice's grid ``(columns, rows)`` (<= 0).
    rows, cols, n_slices
        Output size.
    input_rows, input_cols
        Input slice size.
    z_spacing
        Output slice spacing (mm).
    tilt_degrees
        Angle between the stacking direction and the normal (0 without tilt).
    """

    reasons: tuple[str, ...]
    distances: tuple[float, ...]
    offsets: tuple[tuple[float, float], ...]
    grid_shift: tuple[int, int]
    rows: int
    cols: int
    n_slices: int
    z_spacing: float
    tilt_degrees: float
    input_rows: int
    input_cols: int


def plan_resampling(positions: np.ndarray, direction: np.ndarray,
                    pixel_spacing_xy: tuple[float, float], rows: int, cols: int,
                    reasons: tuple[str, ...]) -> Resampling:
    """Plan the output grid of a stack.

    Parameters
    ----------
    positions : numpy.ndarray, shape (n, 3)
        ImagePositionPatient of each slice, sorted along the normal, n >= 2.
    direction : numpy.ndarray, shape (3, 3)
        Columns: row direction, column direction, normal.
    pixel_spacing_xy
        Column spacing x and row spacing y (mm).
    rows, cols
        Input slice size.
    reasons
        ``"gantry-tilt"`` and/or ``"uneven-spacing"``.
    """
    pos = np.asarray(positions, dtype=float)
    delta = pos - pos[0]
    dist = delta @ direction[:, 2]
    if "gantry-tilt" in reasons:
        u = delta @ direction[:, 0] / pixel_spacing_xy[0]
        v = delta @ direction[:, 1] / pixel_spacing_xy[1]
    else:
        u = v = np.zeros(len(pos))
    lo_u = math.floor(min(0.0, float(u.min())) + GRID_SLACK_VOXELS)
    lo_v = math.floor(min(0.0, float(v.min())) + GRID_SLACK_VOXELS)
    hi_u = math.ceil(max(0.0, float(u.max())) - GRID_SLACK_VOXELS)
    hi_v = math.ceil(max(0.0, float(v.max())) - GRID_SLACK_VOXELS)
    span = float(dist[-1] - dist[0])
    median_gap = float(np.median(np.diff(dist)))
    n_out = max(2, round(span / median_gap) + 1) if "uneven-spacing" in reasons else len(pos)
    shift_mm = float(np.hypot(u[-1] * pixel_spacing_xy[0], v[-1] * pixel_spacing_xy[1]))
    return Resampling(
        reasons=reasons,
        distances=tuple(float(d) for d in dist),
        offsets=tuple((float(a), float(b)) for a, b in zip(u, v, strict=True)),
        grid_shift=(lo_u, lo_v),
        rows=rows + hi_v - lo_v,
        cols=cols + hi_u - lo_u,
        n_slices=n_out,
        z_spacing=span / (n_out - 1),
        tilt_degrees=float(np.degrees(np.arctan2(shift_mm, abs(span)))) if span else 0.0,
        input_rows=rows,
        input_cols=cols,
    )


def resample_stack(stack: np.ndarray, plan: Resampling, fill_value: float) -> np.ndarray:
    """Resample sorted slices onto the planned grid.

    Parameters
    ----------
    stack : numpy.ndarray, shape (n, rows, cols)
        Input slices sorted along the normal (float).
    plan
        From :func:`plan_resampling` for the same slices.
    fill_value
        Value of output voxels that no input slice covers.

    Returns
    -------
    numpy.ndarray, shape (plan.n_slices, plan.rows, plan.cols), float32
    """
    from scipy import ndimage  # only here: not loaded (~20 MiB) by conversions that never resample

    shifted = np.empty((stack.shape[0], plan.rows, plan.cols), dtype=np.float64)
    for k, (du, dv) in enumerate(plan.offsets):
        # output (row j, column i) reads input (j + shift_v - dv, i + shift_u - du)
        offset = (plan.grid_shift[1] - dv, plan.grid_shift[0] - du)
        if offset == (0.0, 0.0) and stack.shape[1:] == shifted.shape[1:]:
            shifted[k] = stack[k]
        else:
            shifted[k] = ndimage.affine_transform(
                stack[k].astype(np.float64), np.eye(2), offset=offset,
                output_shape=shifted.shape[1:], order=1, mode="constant", cval=fill_value)
    dist = np.asarray(plan.distances)
    out = np.empty((plan.n_slices, plan.rows, plan.cols), dtype=np.float32)
    for j in range(plan.n_slices):
        z = dist[0] + j * plan.z_spacing if j < plan.n_slices - 1 else dist[-1]
        k = int(np.clip(np.searchsorted(dist, z, side="right") - 1, 0, len(dist) - 2))
        w = (z - dist[k]) / (dist[k + 1] - dist[k])
        w = min(max(w, 0.0), 1.0)
        out[j] = shifted[k] if w == 0.0 else (1.0 - w) * shifted[k] + w * shifted[k + 1]
    return out


def resampling_record(plan: Resampling, fill_value: float, input_spacing_xy: tuple[float, float]) \
        -> dict[str, Any]:
    """JSON-ready description of a resampling for the sidecar."""
    gaps = np.diff(np.asarray(plan.distances))
    return {
        "reasons": list(plan.reasons),
        "method": "linear",
        "input_slices": len(plan.distances),
        "output_slices": plan.n_slices,
        "input_gap_mm": {"min": float(gaps.min()), "median": float(np.median(gaps)),
                         "max": float(gaps.max())},
        "output_spacing_mm": [float(input_spacing_xy[0]), float(input_spacing_xy[1]),
                              float(plan.z_spacing)],
        "tilt_degrees": plan.tilt_degrees,
        "grid_added_voxels": {"columns": plan.cols - plan.input_cols,
                              "rows": plan.rows - plan.input_rows},
        "fill_value": float(fill_value),
    }


def resampled_label(plan: Resampling | None) -> str:
    """``series.tsv`` value: ``""``, ``gantry-tilt``, ``uneven-spacing`` or both joined by ``+``."""
    return "+".join(plan.reasons) if plan is not None else ""


__all__ = ["GRID_SLACK_VOXELS", "Resampling", "plan_resampling", "resample_stack",
           "resampled_label", "resampling_record"]
