"""The RECIST overlay of a QC picture: where a pair's RECIST axes (``merge/landmarks.tsv``, patient
mm, ITK/LPS) fall on the report's LPS-oriented panels.

An end point goes to the picture through the same geometry as the voxels: its continuous index
on the image's grid (``TransformPhysicalPointToContinuousIndex``), the axis permutation and flips
of the reorientation (:class:`LpsIndexMap`, read from ``DICOMOrient`` itself, so oblique
directions get the filter's own choice), then the panel's crop
(:meth:`radflow.report.qc.PlaneView.to_panel`). The RECIST slice ``k`` is an acquisition slice;
the reorientation only permutes and flips axes, so it is a slice of one of the three display
planes (the one nearest to the acquisition plane) and its end points lie exactly on it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from radflow.records.side import Landmark
from radflow.report.settings import Plane

logger = logging.getLogger(__name__)

#: Colours of the RECIST long and short axes.
AXIS_COLOURS: dict[str, str] = {"long_axis": "#00e5ff", "short_axis": "#ffd60a"}
#: The landmarks drawn on the RECIST panel, in drawing order.
RECIST_AXES: tuple[str, ...] = ("long_axis", "short_axis")
#: Largest distance (voxels) of an end point from the displayed slice before it is not drawn.
ON_SLICE_VOXELS = 0.01
#: Display plane of the LPS index axis normal to it (x: sagittal, y: coronal, z: axial).
PLANE_OF_NORMAL: dict[int, Plane] = {0: "sagittal", 1: "coronal", 2: "axial"}


@dataclass(frozen=True)
class AxisLine:
    """A RECIST axis as drawn on a panel.

    Attributes
    ----------
    name
        ``long_axis`` or ``short_axis``.
    start, end
        End points in the panel's coordinates: mm from its left edge (x) and top edge (y), the
        coordinates the image is drawn in.
    length_mm
        The axis's length in patient space (the distance between its landmark end points).
    """

    name: str
    start: tuple[float, float]
    end: tuple[float, float]
    length_mm: float


@dataclass(frozen=True)
class LpsIndexMap:
    """Continuous indices of an image's grid -> those of its ``DICOMOrient(image, "LPS")``.

    The reorientation permutes and flips the index axes only: LPS axis ``a`` is the image's
    axis ``source[a]``, reversed when ``flipped[a]``; ``size`` is the image's size (i, j, k).
    """

    source: tuple[int, int, int]
    flipped: tuple[bool, bool, bool]
    size: tuple[int, int, int]

    @classmethod
    def of(cls, image: sitk.Image) -> LpsIndexMap:
        """The map of ``image``, read from ``DICOMOrient`` applied to a 2 x 2 x 2 probe with the
        image's direction whose voxels hold their own index (so it is the filter's own choice,
        oblique directions included)."""
        probe = sitk.GetImageFromArray(np.arange(8, dtype=np.uint8).reshape(2, 2, 2))
        probe.SetDirection(image.GetDirection())
        oriented = sitk.GetArrayFromImage(sitk.DICOMOrient(probe, "LPS"))  # [k, j, i] = i+2j+4k

        def ijk(value: int) -> np.ndarray:
            return np.array([value & 1, (value >> 1) & 1, (value >> 2) & 1])

        first = ijk(int(oriented[0, 0, 0]))
        steps = (oriented[0, 0, 1], oriented[0, 1, 0], oriented[1, 0, 0])  # along x, y, z
        source, flipped = [], []
        for step in steps:
            axis = int(np.flatnonzero(ijk(int(step)) - first)[0])
            source.append(axis)
            flipped.append(bool(first[axis] == 1))
        size = image.GetSize()
        return cls((source[0], source[1], source[2]), (flipped[0], flipped[1], flipped[2]),
                   (int(size[0]), int(size[1]), int(size[2])))

    def lps_axis(self, axis: int) -> int:
        """The LPS axis (0: x, 1: y, 2: z) the image's index axis ``axis`` became."""
        return self.source.index(axis)

    def __call__(self, index: Sequence[float]) -> tuple[float, float, float]:
        """The LPS-oriented continuous index (x, y, z) of the image's ``index`` (i, j, k)."""
        out = [self.size[s] - 1 - index[s] if f else index[s]
               for s, f in zip(self.source, self.flipped, strict=True)]
        return float(out[0]), float(out[1]), float(out[2])


@dataclass(frozen=True)
class RecistSlice:
    """The displayed slice of a pair's RECIST axes.

    Attributes
    ----------
    k
        The acquisition slice (``slice_index`` of the landmarks, ``k`` index of the image).
    plane
        The display plane that slice is after the reorientation.
    index
        Its index along the plane's normal in the LPS-oriented volume.
    axes
        The drawable axes by name (two finite end points on slice ``k``).
    to_lps
        The image's :class:`LpsIndexMap`.
    """

    k: int
    plane: Plane
    index: int
    axes: dict[str, Landmark]
    to_lps: LpsIndexMap


def recist_slice(image: sitk.Image, landmarks: Sequence[Landmark]) -> RecistSlice | None:
    """Where the RECIST axes of a pair are shown, or None without a (usable) long axis.

    ``image``: the pair's image as read (the landmarks' grid; only its geometry is used).
    """
    axes = {m.name: m for m in landmarks
            if m.name in RECIST_AXES and m.slice_index is not None and len(m.points) == 2
            and all(math.isfinite(c) for p in m.points for c in p)}
    if "long_axis" not in axes:
        return None
    k = int(axes["long_axis"].slice_index or 0)
    axes = {n: m for n, m in axes.items() if m.slice_index == k}
    to_lps = LpsIndexMap.of(image)
    if not 0 <= k < to_lps.size[2]:
        logger.warning("report: RECIST slice %d is outside the image (%d slices): no axes",
                       k, to_lps.size[2])
        return None
    normal = to_lps.lps_axis(2)
    index = round(to_lps((0.0, 0.0, float(k)))[normal])
    return RecistSlice(k, PLANE_OF_NORMAL[normal], index, axes, to_lps)


def axis_lines(image: sitk.Image, where: RecistSlice,
               to_panel: Callable[[Sequence[float]], tuple[float, float]]
               ) -> tuple[AxisLine, ...]:
    """The axes of ``where`` in panel coordinates (``to_panel``: LPS-oriented continuous index
    (x, y, z) -> panel mm); an axis whose end points are off the slice is left out (warned)."""
    normal = where.to_lps.lps_axis(2)
    lines = []
    for name in RECIST_AXES:
        if name not in where.axes:
            continue
        points = where.axes[name].points
        ends = [where.to_lps(image.TransformPhysicalPointToContinuousIndex(p)) for p in points]
        if any(abs(e[normal] - where.index) > ON_SLICE_VOXELS for e in ends):
            logger.warning("report: the %s's end points are not on RECIST slice %d: not drawn",
                           name, where.k)
            continue
        lines.append(AxisLine(name, to_panel(ends[0]), to_panel(ends[1]),
                              math.dist(points[0], points[1])))
    return tuple(lines)


__all__ = ["AXIS_COLOURS", "ON_SLICE_VOXELS", "PLANE_OF_NORMAL", "RECIST_AXES", "AxisLine",
           "LpsIndexMap", "RecistSlice", "axis_lines", "recist_slice"]
