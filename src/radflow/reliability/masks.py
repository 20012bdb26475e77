"""ROI perturbations that change only the mask: volume adaptation and contour randomisation.

After Zwanenburg et al. (2019), "Assessing robustness of radiomic features by image
perturbation", Sci Rep 9:614, as implemented in MIRP (github.com/oncoray/mirp,
``mirp/_images/mask_image.py``: ``fractional_volume_change`` and ``randomise_mask``), with the
differences stated in each function. Also the shared helpers of the reliability modules: the
checked ROI of an image/mask pair (:func:`roi_array`) and a mask image rebuilt from a boolean
array (:func:`mask_image`).

Arrays are in SimpleITK's numpy order, shape ``(z, y, x)``; a ROI is ``mask == label``.
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi
from skimage.segmentation import slic

from radflow.errors import ConfigError, PairingError

#: Largest difference (mm, or direction cosine) at which two grids count as the same.
GRID_TOLERANCE = 1e-4

#: MIRP's supervoxel inclusion rule: a supervoxel covered by the ROI at least this much is always
#: kept, one covered less than :data:`NEVER_BELOW` never; in between it is kept with probability
#: equal to its covered fraction.
ALWAYS_FROM = 0.90
NEVER_BELOW = 0.20


def roi_array(mask: sitk.Image, label: int, image: sitk.Image | None = None) -> np.ndarray:
    """The ROI ``mask == label`` as a boolean array, checked.

    Parameters
    ----------
    mask
        3-D label map.
    label
        ROI label (> 0).
    image
        When given, ``mask`` must lie on its grid (size; spacing, origin and direction within
        :data:`GRID_TOLERANCE`).

    Returns
    -------
    np.ndarray, shape (z, y, x), bool

    Raises
    ------
    PairingError
        ``invalid-mask`` (not 3-D), ``grid-mismatch`` or ``empty-mask`` (no voxel has ``label``).
    """
    if mask.GetDimension() != 3 or (image is not None and image.GetDimension() != 3):
        raise PairingError("perturbations and negative controls need a 3-D image and mask",
                           reason="invalid-mask")
    if image is not None and not (image.GetSize() == mask.GetSize() and all(
            np.allclose(getattr(image, f)(), getattr(mask, f)(), rtol=0, atol=GRID_TOLERANCE)
            for f in ("GetSpacing", "GetOrigin", "GetDirection"))):
        raise PairingError("the mask is not on the image grid (size, spacing, origin or "
                           "direction differ)", reason="grid-mismatch")
    roi = sitk.GetArrayViewFromImage(mask) == label
    if not roi.any():
        raise PairingError(f"label {label}: no voxel of the mask has it", reason="empty-mask")
    return roi


def mask_image(roi: np.ndarray, label: int, like: sitk.Image,
               grid: sitk.Image | None = None) -> sitk.Image:
    """A label map holding ``label`` on ``roi`` and 0 elsewhere.

    Parameters
    ----------
    roi : np.ndarray, shape (z, y, x), bool
    label
        Value of the ROI voxels.
    like
        Mask whose pixel type the result keeps.
    grid
        Image whose grid (spacing, origin, direction) the result takes; default ``like``.
    """
    dtype = sitk.GetArrayViewFromImage(like).dtype
    out = sitk.GetImageFromArray(np.where(roi, label, 0).astype(dtype, copy=False))
    out.CopyInformation(grid if grid is not None else like)
    return out


def adapt_volume(mask: sitk.Image, fraction: float, *, label: int = 1,
                 rng: np.random.Generator | None = None) -> sitk.Image:
    """Grow (``fraction > 0``) or shrink (``< 0``) the ROI to ``round(V × (1 + fraction))`` voxels.

    The ROI gains the background voxels nearest to it, or loses its voxels nearest to the
    background, by Euclidean distance in mm (``scipy.ndimage.distance_transform_edt`` with the
    voxel spacing; outside the image counts as background). Voxels at the same distance are
    ordered by ``rng`` (MIRP picks its last boundary voxels at random too) or, without ``rng``, by
    their array index. The voxel count is therefore exact: the volume change is within one voxel
    of ``fraction``.

    MIRP (``fractional_volume_change``) dilates or erodes with a 6-connected element, counted in
    voxels, until the target is passed, then adds or removes random voxels of the last shell; on
    anisotropic voxels (5 mm slices) that grows much faster across slices than in-plane. Ordering
    by physical distance keeps the growth the same in every direction.

    Parameters
    ----------
    mask
        3-D label map.
    fraction
        Relative volume change, ``> -1``.
    label
        ROI label; the result holds ``label`` on the new ROI and 0 elsewhere (other labels are
        dropped), in the pixel type of ``mask``.
    rng
        Orders voxels at equal distance.

    Raises
    ------
    ConfigError
        ``fraction`` not a finite number above -1.
    PairingError
        ``empty-mask`` (no ROI, or it would shrink to nothing) or ``roi-too-large`` (the image
        has too few voxels to grow into).
    """
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) \
            or not math.isfinite(fraction) or fraction <= -1:
        raise ConfigError(f"volume adaptation fraction must be a number above -1, "
                          f"got {fraction!r}")
    roi = roi_array(mask, label)
    count = int(roi.sum())
    delta = round(count * (1.0 + fraction)) - count
    if count + delta < 1:
        raise PairingError(f"label {label}: shrinking {count} voxels by {fraction:+g} leaves "
                           "none", reason="empty-mask")
    if delta == 0:
        return mask_image(roi, label, mask)
    spacing = np.asarray(mask.GetSpacing()[::-1], dtype=np.float64)
    if delta > 0:
        chosen = _nearest_background(roi, spacing, delta, rng)
        roi = roi.copy()
        roi[chosen] = True
    else:
        chosen = _nearest_to_background(roi, spacing, -delta, rng)
        roi = roi.copy()
        roi[chosen] = False
    return mask_image(roi, label, mask)


def _bounding_box(roi: np.ndarray, pad: np.ndarray | tuple[int, ...]) -> tuple[slice, ...]:
    """Bounding box of ``roi`` widened by ``pad`` voxels per axis, clipped to the array."""
    box = ndi.find_objects(roi.astype(np.uint8, copy=False))[0]
    return tuple(slice(max(s.start - p, 0), min(s.stop + p, n))
                 for s, p, n in zip(box, pad, roi.shape, strict=True))


def _pick(distance: np.ndarray, n: int, rng: np.random.Generator | None) -> np.ndarray:
    """Positions (into ``distance``) of the ``n`` smallest distances, ties ordered by ``rng``."""
    ties = rng.random(distance.size) if rng is not None else np.arange(distance.size)
    return np.lexsort((ties, distance))[:n]


def _nearest_background(roi: np.ndarray, spacing: np.ndarray, n: int,
                        rng: np.random.Generator | None) -> tuple[np.ndarray, ...]:
    """Indices of the ``n`` background voxels nearest to ``roi``.

    Works on the bounding box widened by ``reach`` mm (doubled until enough): a voxel outside it
    is more than ``reach`` mm from every ROI voxel, so once the ``n``-th nearest voxel inside is
    within ``reach`` the choice equals the choice over the whole image.
    """
    if n > roi.size - int(roi.sum()):
        raise PairingError(f"the ROI cannot grow by {n} voxels: the image has fewer background "
                           "voxels", reason="roi-too-large")
    reach = 2.0 * float(spacing.max())
    while True:
        box = _bounding_box(roi, np.ceil(reach / spacing).astype(int))
        crop = roi[box]
        distance = ndi.distance_transform_edt(~crop, sampling=spacing)
        outside = np.flatnonzero(~crop)
        whole = all(s.start == 0 and s.stop == size for s, size in zip(box, roi.shape,
                                                                        strict=True))
        if outside.size >= n:
            chosen = outside[_pick(distance.ravel()[outside], n, rng)]
            if whole or distance.ravel()[chosen].max() <= reach:
                break
        reach *= 2.0
    local = np.unravel_index(chosen, crop.shape)
    return tuple(i + s.start for i, s in zip(local, box, strict=True))


def _nearest_to_background(roi: np.ndarray, spacing: np.ndarray, n: int,
                           rng: np.random.Generator | None) -> tuple[np.ndarray, ...]:
    """Indices of the ``n`` ROI voxels nearest to the background (outside the image counts).

    The bounding box is padded with one background layer: the nearest background voxel of any
    ROI voxel is never farther than the layer (clipping a point to the box brings it closer in
    every coordinate), so the distances are those over the whole image.
    """
    box = _bounding_box(roi, (1, 1, 1))
    crop = np.pad(roi[box], 1)
    distance = ndi.distance_transform_edt(crop, sampling=spacing)[1:-1, 1:-1, 1:-1]
    inside = np.flatnonzero(roi[box])
    chosen = inside[_pick(distance.ravel()[inside], n, rng)]
    local = np.unravel_index(chosen, roi[box].shape)
    return tuple(i + s.start for i, s in zip(local, box, strict=True))


def randomise_contour(image: sitk.Image, mask: sitk.Image, rng: np.random.Generator, *,
                      label: int = 1, boundary_mm: float = 25.0) -> sitk.Image:
    """Randomise the ROI's contour from supervoxels of the image (MIRP's ``randomise_mask``).

    1. Crop image and mask to the ROI's bounding box widened by ``boundary_mm`` on every side.
    2. Clip the grey levels to the ROI's range widened by 10 % of it on either side and scale
       them to [0, 1].
    3. Cut the crop into supervoxels with SLIC (``skimage.segmentation.slic``; Achanta et al.
       2012) with MIRP's constants: about one supervoxel per ``max(20 voxels, 500 mm³)``,
       Gaussian pre-smoothing ``sigma`` = the smallest spacing (mm), ``compactness`` 0.05,
       the voxel spacing, connected supervoxels.
    4. For each supervoxel touching the ROI, its covered fraction is the probability of keeping
       it; fractions ≥ :data:`ALWAYS_FROM` become 1, below :data:`NEVER_BELOW` 0, and the most
       covered supervoxel is always kept (so the result is never empty).
    5. Draw one uniform number per touching supervoxel (in label order) from ``rng``; the new
       ROI is the union of the kept supervoxels, closed once with the 6-connected element.

    SLIC itself is deterministic; the randomness is only in step 5, so the same ``rng`` state
    gives the same contour.

    Parameters
    ----------
    image
        3-D image (any scalar pixel type).
    mask
        Label map on the grid of ``image``.
    rng
        Source of the inclusion draws.
    label
        ROI label; the result holds it on the new ROI and 0 elsewhere, in the pixel type of
        ``mask``.
    boundary_mm
        Margin of the crop around the ROI (mm); MIRP's default 25 mm.

    Raises
    ------
    PairingError
        ``invalid-mask``, ``grid-mismatch`` or ``empty-mask`` (:func:`roi_array`).
    """
    roi = roi_array(mask, label, image)
    spacing = np.asarray(image.GetSpacing()[::-1], dtype=np.float64)
    box = _bounding_box(roi, np.ceil(boundary_mm / spacing).astype(int))
    crop_roi = roi[box]
    values = np.asarray(sitk.GetArrayViewFromImage(image)[box], dtype=np.float64)
    low, high = float(values[crop_roi].min()), float(values[crop_roi].max())
    margin = 0.1 * (high - low)
    low, high = low - margin, high + margin
    scaled = (np.clip(values, low, high) - low) / (high - low) if high > low \
        else np.zeros_like(values)
    per_segment = max(20.0, 500.0 / float(np.prod(spacing)))
    segments = slic(scaled, n_segments=max(1, int(scaled.size / per_segment)),
                    sigma=float(spacing.min()), spacing=spacing, compactness=0.05,
                    convert2lab=False, enforce_connectivity=True, channel_axis=None,
                    start_label=1)
    total = np.bincount(segments.ravel())
    covered = np.bincount(segments[crop_roi], minlength=total.size)
    touching = np.flatnonzero(covered)
    chance = covered[touching] / total[touching]
    chance[np.argmax(chance)] = 1.0
    chance[chance >= ALWAYS_FROM] = 1.0
    chance[chance < NEVER_BELOW] = 0.0
    kept = touching[rng.random(touching.size) < chance]
    new_crop = np.isin(segments, kept)
    new_crop = ndi.binary_closing(np.pad(new_crop, 1))[1:-1, 1:-1, 1:-1]
    new_roi = np.zeros_like(roi)
    new_roi[box] = new_crop
    return mask_image(new_roi, label, mask)
