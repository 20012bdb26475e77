"""radflow's own intensity normalisations, applied in the extract stage before PyRadiomics
(``extract.normalisation``: ``zscore-roi``, ``zscore-body``; README, "Modality defaults").

Both are PyRadiomics' ``normalize`` (``radiomics.imageoperations.normalizeImage``) with the mean
and standard deviation taken over another region of the image:

    f(x) = s * clip((x - mu) / sigma, -n, n)

with ``s`` the params file's ``normalizeScale`` (default 1), ``n`` its ``removeOutliers`` (no
clipping when not set) and ``sigma`` the sample standard deviation (divisor N - 1, as ITK's
NormalizeImageFilter that PyRadiomics uses for ``zscore-image``). The statistics are taken on the
image's own grid, before PyRadiomics resamples it (PyRadiomics normalises before resampling too).

* ``zscore-roi``: mu and sigma of the ROI's voxels (``mask == label``), so each pair of an image
  gets its own normalised copy.
* ``zscore-body``: mu and sigma of a body mask (:func:`body_mask`: Otsu threshold of the whole
  image, its largest connected component, enclosed holes filled), computed once per image.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from radflow.errors import ExtractionError


def body_mask(image: sitk.Image) -> np.ndarray:
    """The body of ``image`` as a boolean array (z, y, x).

    Voxels above the Otsu threshold of the whole image (SimpleITK's OtsuThresholdImageFilter,
    128 histogram bins), then the largest face-connected component of them, then every hole it
    encloses in 3-D (``BinaryFillhole``: dark tissue inside the body, such as fluid or air in the
    bowel, counts as body; air around the patient does not).

    Raises
    ------
    ExtractionError
        Reason ``body-mask-empty``: a constant image, with nothing above the threshold.
    """
    otsu = sitk.OtsuThresholdImageFilter()
    otsu.Execute(image)
    above = (sitk.GetArrayViewFromImage(image) > otsu.GetThreshold()).astype(np.uint8)
    if not above.any():
        raise ExtractionError("zscore-body: no voxel above the Otsu threshold (a constant "
                              "image?)", reason="body-mask-empty")
    components = sitk.RelabelComponent(sitk.ConnectedComponent(sitk.GetImageFromArray(above)),
                                       sortByObjectSize=True)
    largest = sitk.Cast(components == 1, sitk.sitkUInt8)
    filled = sitk.BinaryFillhole(largest, fullyConnected=False, foregroundValue=1)
    return sitk.GetArrayFromImage(filled).astype(bool)


def zscore(image: sitk.Image, region: np.ndarray, *, scale: float = 1.0,
           outliers: float | None = None, what: str = "region") -> sitk.Image:
    """``image`` z-scored with the mean and sample SD of its voxels in ``region``.

    Parameters
    ----------
    image
        A scalar image.
    region : numpy.ndarray of bool, shape (z, y, x) of ``image``
        Where the statistics are taken.
    scale, outliers
        ``normalizeScale`` and ``removeOutliers`` (see the module docstring).
    what
        The region's name, for messages (``ROI label 2``, ``body mask``).

    Returns
    -------
    SimpleITK.Image
        float64, on ``image``'s grid.

    Raises
    ------
    ExtractionError
        ``normalisation-geometry`` (``region`` has another shape), ``normalisation-zero-sd``
        (fewer than 2 voxels in ``region``, or all of one value).
    """
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    if region.shape != values.shape:
        raise ExtractionError(f"normalisation over the {what}: its grid {region.shape[::-1]} is "
                              f"not the image's {values.shape[::-1]}",
                              reason="normalisation-geometry")
    inside = values[region]
    sigma = float(inside.std(ddof=1)) if inside.size > 1 else float("nan")
    if not np.isfinite(sigma) or sigma == 0:
        raise ExtractionError(f"normalisation over the {what}: {inside.size} voxel(s), standard "
                              "deviation 0 or undefined", reason="normalisation-zero-sd")
    values -= float(inside.mean())
    values /= sigma
    if outliers is not None:
        np.clip(values, -outliers, outliers, out=values)
    values *= scale
    out = sitk.GetImageFromArray(values)
    out.CopyInformation(image)
    return out


__all__ = ["body_mask", "zscore"]
