"""QC pictures: a pair's mask contour over its image on planes through the ROI's centre.

The geometry is pure (:func:`oriented_arrays`, :func:`plane_views`, :func:`display_window`);
:func:`render_pngs` draws it with matplotlib's Agg backend (a ``Figure`` without pyplot) as
the PNG the stage writes to ``report/qc/<pair_id>.png`` and its thumbnail
(``report/assets/thumbs/<pair_id>.png``). Files are named by the pair key only.

Display conventions (radiological): volumes are reoriented to LPS index axes (SimpleITK
``DICOMOrient``), so that the axial plane shows the patient's right on the left of the picture and
anterior at the top, the coronal plane superior at the top and the patient's right on the left,
the sagittal plane superior at the top and anterior on the left. Every panel is drawn in mm, so
its aspect ratio follows the voxel spacing.

RECIST overlay: a pair with RECIST landmarks (``merge/landmarks.tsv``) gets one more panel,
"RECIST slice k", on the acquisition slice ``k`` of its long axis (the plane of the three that
slice is, after the reorientation), with the long and short axes drawn as lines and labelled
with their lengths (mm). The end points (patient mm, LPS) go to the picture through the same
geometry as the voxels (:mod:`radflow.report.overlay`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from radflow.errors import InputFileError
from radflow.io.nifti import read_image
from radflow.records.side import Landmark
from radflow.report.overlay import AXIS_COLOURS, AxisLine, axis_lines, recist_slice
from radflow.report.settings import Plane, ReportSettings

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: CT windows (width, level) in HU.
CT_WINDOWS: dict[str, tuple[float, float]] = {"soft-tissue": (400.0, 40.0),
                                               "lung": (1500.0, -600.0)}
#: ``ct_window: auto``: the lung window when the median HU outside the ROI is below this.
LUNG_BELOW_HU = -400.0
CONTOUR_COLOUR = "#ff3b30"
#: Full picture and thumbnail resolutions (dots per inch of a 3-inch-high figure).
FULL_DPI, THUMB_DPI = 100, 40
PANEL_INCHES = 3.0
#: The patient directions at each panel's left edge, right edge and top (radiological display).
EDGE_LABELS: dict[str, tuple[str, str, str]] = {"axial": ("R", "L", "A"),
                                                "coronal": ("R", "L", "S"),
                                                "sagittal": ("A", "P", "S")}


@dataclass(frozen=True)
class PlaneView:
    """One panel: a 2-D image and mask as displayed (row 0 at the top), with its pixel size.

    Attributes
    ----------
    plane
        ``axial``, ``coronal`` or ``sagittal``.
    image : numpy.ndarray, shape (rows, cols)
    mask : numpy.ndarray of bool, shape (rows, cols)
    pixel_mm
        (width, height) of one displayed pixel, mm.
    index
        The slice's index along the plane's normal in the LPS-oriented volume.
    box
        The crop, ``(start, stop)`` of the z, y and x indices of the LPS-oriented volume.
    title
        The panel's label (the plane's name when empty).
    lines
        RECIST axes drawn over the panel.
    """

    plane: Plane
    image: np.ndarray
    mask: np.ndarray
    pixel_mm: tuple[float, float]
    index: int
    box: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
    title: str = ""
    lines: tuple[AxisLine, ...] = ()

    @property
    def size_mm(self) -> tuple[float, float]:
        """(width, height) of the panel in mm."""
        rows, cols = self.image.shape
        return cols * self.pixel_mm[0], rows * self.pixel_mm[1]

    def to_panel(self, index: Sequence[float]) -> tuple[float, float]:
        """The panel coordinates (mm from the left and top edges) of a continuous index
        ``(x, y, z)`` of the LPS-oriented volume (voxel centres at integers)."""
        x, y, z = index
        (_, z_stop), (y_start, _), (x_start, _) = self.box
        if self.plane == "axial":
            col, row = x - x_start, y - y_start
        elif self.plane == "coronal":
            col, row = x - x_start, (z_stop - 1) - z
        else:
            col, row = y - y_start, (z_stop - 1) - z
        return (col + 0.5) * self.pixel_mm[0], (row + 0.5) * self.pixel_mm[1]


@dataclass(frozen=True)
class Window:
    """A display window: values ``low`` .. ``high`` map to black .. white; ``name`` says which."""

    low: float
    high: float
    name: str


def oriented_arrays(image: sitk.Image, mask: sitk.Image, label: int
                    ) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Image and ``mask == label`` as (z, y, x) arrays on LPS index axes, and (sx, sy, sz) mm.

    Raises
    ------
    InputFileError
        The mask's grid is not the image's (size or spacing).
    """
    image, mask = sitk.DICOMOrient(image, "LPS"), sitk.DICOMOrient(mask, "LPS")
    if image.GetSize() != mask.GetSize() or not np.allclose(image.GetSpacing(),
                                                            mask.GetSpacing(), atol=1e-3):
        raise InputFileError("the mask's grid is not the image's", reason="grid-mismatch")
    spacing = tuple(float(s) for s in image.GetSpacing())
    # copies: a view would outlive the reoriented images it looks into
    return (sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(mask) == label,
            (spacing[0], spacing[1], spacing[2]))


def _centre_index(mask: np.ndarray, axis: int) -> int:
    """The slice along ``axis`` (of a (z, y, x) mask) through the ROI's centre of mass, or the
    slice with most ROI voxels when the centre's slice misses the ROI (a curved ROI)."""
    counts = mask.sum(axis=tuple(a for a in range(3) if a != axis))
    centre = round(float(np.average(np.arange(len(counts)), weights=counts)))
    return centre if counts[centre] else int(np.argmax(counts))


def crop_box(mask: np.ndarray, spacing: tuple[float, float, float], margin_mm: float
             ) -> tuple[slice, slice, slice]:
    """(z, y, x) slices of the ROI's bounding box plus ``margin_mm`` on each side, clipped."""
    zyx_spacing = (spacing[2], spacing[1], spacing[0])
    box = []
    for axis in range(3):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        pad = int(np.ceil(margin_mm / zyx_spacing[axis]))
        box.append(slice(max(int(hit[0]) - pad, 0), min(int(hit[-1]) + 1 + pad, mask.shape[axis])))
    return box[0], box[1], box[2]


def plane_views(image: np.ndarray, mask: np.ndarray, spacing: tuple[float, float, float],
                planes: Sequence[Plane], margin_mm: float) -> list[PlaneView]:
    """The panels of a QC picture, cropped around the ROI (pure).

    Parameters
    ----------
    image, mask : numpy.ndarray, shape (z, y, x)
        On LPS index axes (:func:`oriented_arrays`); ``mask`` boolean and not empty.
    spacing
        (sx, sy, sz) in mm.
    planes
        The panels, in order.
    margin_mm
        Context around the ROI's bounding box.

    Raises
    ------
    ValueError
        The mask is empty (a bug: pairs with an empty mask have no picture).
    """
    if not mask.any():
        raise ValueError("plane_views: the mask is empty")
    box = crop_box(mask, spacing, margin_mm)
    normal = {"axial": 0, "coronal": 1, "sagittal": 2}
    views = []
    for plane in planes:
        views.append(plane_view(image, mask, spacing, plane, _centre_index(mask, normal[plane]),
                                box))
    return views


def plane_view(image: np.ndarray, mask: np.ndarray, spacing: tuple[float, float, float],
               plane: Plane, index: int, box: tuple[slice, slice, slice]) -> PlaneView:
    """The panel of ``plane`` through slice ``index`` (along its normal) of the crop ``box``.

    ``image``, ``mask``: (z, y, x) on LPS index axes; ``box``: :func:`crop_box`.
    """
    bz, by, bx = box
    sx, sy, sz = spacing
    if plane == "axial":
        img, roi, pixel = image[index, by, bx], mask[index, by, bx], (sx, sy)
    elif plane == "coronal":
        img, roi, pixel = image[bz, index, bx][::-1], mask[bz, index, bx][::-1], (sx, sz)
    else:
        img, roi, pixel = image[bz, by, index][::-1], mask[bz, by, index][::-1], (sy, sz)
    return PlaneView(plane, np.asarray(img, dtype=np.float32), np.asarray(roi, bool), pixel,
                     index, ((bz.start, bz.stop), (by.start, by.stop), (bx.start, bx.stop)))


def recist_view(image: sitk.Image, values: np.ndarray, mask: np.ndarray,
                spacing: tuple[float, float, float], landmarks: Sequence[Landmark],
                margin_mm: float) -> PlaneView | None:
    """The "RECIST slice k" panel of a pair, or None when it has no long axis on that slice.

    Parameters
    ----------
    image
        The image as read (its grid is the landmarks' grid; only its geometry is used).
    values, mask, spacing
        :func:`oriented_arrays` of the pair.
    landmarks
        The pair's landmarks (:mod:`radflow.records.side`); ``long_axis`` and ``short_axis``
        are drawn, on the long axis's slice (:mod:`radflow.report.overlay`).
    margin_mm
        As for :func:`plane_views` (same crop).
    """
    where = recist_slice(image, landmarks)
    if where is None:
        return None
    view = plane_view(values, mask, spacing, where.plane, where.index,
                      crop_box(mask, spacing, margin_mm))
    lines = axis_lines(image, where, view.to_panel)
    if not any(line.name == "long_axis" for line in lines):
        return None  # its end points are not on its slice (warned): not this image's landmarks
    return replace(view, title=f"RECIST slice {where.k}", lines=lines)


def display_window(modality: str, image: np.ndarray, mask: np.ndarray,
                   settings: ReportSettings) -> Window:
    """The window of a picture from the voxels of its crop (``image``, ``mask`` cropped).

    CT: :data:`CT_WINDOWS` (``ct_window``; ``auto``: lung when the median outside the ROI is
    below :data:`LUNG_BELOW_HU`). Any other modality: the ``percentile_window`` of the crop.
    """
    if modality == "CT":
        name = settings.ct_window
        if name == "auto":
            outside = image[~mask]
            name = ("lung" if outside.size and float(np.median(outside)) < LUNG_BELOW_HU
                    else "soft-tissue")
        width, level = CT_WINDOWS[name]
        return Window(level - width / 2, level + width / 2, f"CT {name} W{width:g} L{level:g}")
    low_p, high_p = settings.percentile_window
    low, high = (float(v) for v in np.percentile(image, [low_p, high_p]))
    if high <= low:
        high = low + 1.0
    return Window(low, high, f"{modality or 'image'} percentiles {low_p:g}-{high_p:g}")


def draw_figure(views: Sequence[PlaneView], window: Window, title: str) -> Figure:
    """The picture as a matplotlib ``Figure`` (Agg, no pyplot): the panels side by side, each
    in mm (equal aspect), with their contours, labels and RECIST axes (a ``Line2D`` each, its
    ``gid`` the axis's name, in panel coordinates)."""
    from matplotlib.figure import Figure  # Agg via FigureCanvasAgg: no pyplot, no display

    ratios = [v.size_mm[0] / v.size_mm[1] for v in views]
    fig = Figure(figsize=(PANEL_INCHES * sum(ratios) + 0.2, PANEL_INCHES + 0.45),
                 facecolor="black")
    grid = fig.add_gridspec(1, len(views), width_ratios=ratios, left=0.01, right=0.99,
                            bottom=0.02, top=1 - 0.4 / (PANEL_INCHES + 0.45), wspace=0.04)
    for i, view in enumerate(views):
        ax = fig.add_subplot(grid[0, i])
        width, height = view.size_mm
        ax.imshow(view.image, cmap="gray", vmin=window.low, vmax=window.high,
                  extent=(0, width, height, 0), interpolation="nearest", aspect="equal")
        if view.mask.any():
            rows, cols = view.mask.shape
            ax.contour((np.arange(cols) + 0.5) * view.pixel_mm[0],
                       (np.arange(rows) + 0.5) * view.pixel_mm[1],
                       view.mask.astype(np.float32), levels=[0.5], colors=[CONTOUR_COLOUR],
                       linewidths=1.2)
        for line in view.lines:
            ax.plot([line.start[0], line.end[0]], [line.start[1], line.end[1]],
                    color=AXIS_COLOURS[line.name], linewidth=1.2, gid=line.name)
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        ax.set_axis_off()
        # labels in mm (data coordinates): the axes box can be wider than the image
        left, right, top = EDGE_LABELS[view.plane]
        for x, y, text, ha, va in ((0.02, 0.02, view.title or view.plane, "left", "top"),
                                   (0.01, 0.5, left, "left", "center"),
                                   (0.99, 0.5, right, "right", "center"),
                                   (0.5, 0.01, top, "center", "top")):
            ax.text(x * width, y * height, text, color="yellow", fontsize=7, ha=ha, va=va)
        for row, line in enumerate(reversed(view.lines)):
            label = "long" if line.name == "long_axis" else "short"
            ax.text(0.02 * width, (0.98 - 0.07 * row) * height,
                    f"{label} {line.length_mm:.1f} mm", color=AXIS_COLOURS[line.name],
                    fontsize=7, ha="left", va="bottom", gid=f"{line.name}_label")
    fig.suptitle(title, color="white", fontsize=9, y=0.99, va="top")
    return fig


def render_pngs(views: Sequence[PlaneView], window: Window, title: str) -> tuple[bytes, bytes]:
    """(full PNG, thumbnail PNG) of :func:`draw_figure`."""
    fig = draw_figure(views, window, title)
    out = []
    for dpi in (FULL_DPI, THUMB_DPI):
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, facecolor="black",
                    metadata={"Software": None})
        out.append(buffer.getvalue())
    return out[0], out[1]


@dataclass(frozen=True)
class PairPicture:
    """What the page shows for one pair: its keys and status, and its picture or why none."""

    pair_id: str
    case_id: str
    roi: str
    label: str
    status: str
    modality: str
    picture: str = ""
    thumbnail: str = ""
    window: str = ""
    note: str = ""


def pair_picture_pngs(image_path: str, mask_path: str, label: int, modality: str, title: str,
                      settings: ReportSettings, image: sitk.Image | None = None,
                      landmarks: Sequence[Landmark] = ()) -> tuple[bytes, bytes, Window]:
    """Read a pair's files and render its picture (full, thumbnail) and the window used.

    ``image``: the image already read (pairs on one image share it). ``landmarks``: the pair's
    (``merge/landmarks.tsv``); with a RECIST long axis the picture gets the RECIST panel
    (:func:`recist_view`).

    Raises
    ------
    InputFileError
        A file is missing or unreadable, the grids differ, or the label is absent.
    """
    image = image if image is not None else read_image(image_path, name="the image")
    mask = read_image(mask_path, name="the mask")
    values, roi, spacing = oriented_arrays(image, mask, label)
    if not roi.any():
        raise InputFileError(f"label {label} is absent from the mask", reason="label-absent")
    views = plane_views(values, roi, spacing, settings.planes, settings.margin_mm)
    recist = recist_view(image, values, roi, spacing, landmarks, settings.margin_mm)
    if recist is not None:
        views.append(recist)
    box = crop_box(roi, spacing, settings.margin_mm)
    window = display_window(modality, np.asarray(values[box], np.float32), roi[box], settings)
    full, thumb = render_pngs(views, window, f"{title}  ·  {window.name}")
    return full, thumb, window


__all__ = ["CT_WINDOWS", "LUNG_BELOW_HU", "PairPicture", "PlaneView", "Window", "crop_box",
           "display_window", "draw_figure", "oriented_arrays", "pair_picture_pngs", "plane_view",
           "plane_views", "recist_view", "render_pngs"]
