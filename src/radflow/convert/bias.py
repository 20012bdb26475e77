"""MR bias-field correction (N4) as an opt-in step of the convert stage
(``convert.mr_bias_correction: true``).

:func:`n4_correct` runs SimpleITK's N4 (Tustison et al. 2010, IEEE TMI 29:1310) with fixed
settings (:data:`N4_SETTINGS`), so one cohort is corrected one way and a re-run gives the same
voxels:

* the bias field is estimated on the volume shrunk by :data:`SHRINK` along each axis (an axis
  with fewer than ``4 x SHRINK`` voxels is shrunk less), inside an Otsu foreground mask of the
  shrunk volume (voxels above the Otsu threshold, 200 bins; the background holds no bias
  information);
* the field is then evaluated at full resolution (``GetLogBiasFieldAsImage`` on the original
  grid: the B-spline that N4 fitted) and the volume divided by it, so the output keeps the
  original grid and every voxel;
* every filter runs on one thread: ITK may split sums over threads, and the result must not
  depend on the machine's number of cores (a convert job has one core anyway).

The output is float32. The sidecar's ``bias_correction`` records the method, the settings, the
shrink factors used, the iterations run at the finest level and the seconds taken.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import SimpleITK as sitk

from radflow.errors import DicomError

#: Shrink factor per axis for estimating the field (the usual N4 speed-up; the field is smooth).
SHRINK = 4
#: Fixed N4 settings: iterations per fitting level (the number of levels is their count),
#: convergence threshold, initial B-spline control points per axis, spline order, and
#: SimpleITK's defaults for the histogram sharpening.
N4_SETTINGS: dict[str, Any] = {
    "iterations": [50, 40, 30],
    "convergence_threshold": 1e-3,
    "control_points": [4, 4, 4],
    "spline_order": 3,
    "histogram_bins": 200,
    "bias_field_fwhm": 0.15,
    "wiener_filter_noise": 0.01,
}
#: Histogram bins of the Otsu threshold that makes the foreground mask.
OTSU_BINS = 200


def shrink_factors(size: tuple[int, ...], shrink: int = SHRINK) -> list[int]:
    """Shrink factor per axis: ``shrink``, less for an axis too short to keep 4 voxels."""
    return [max(1, min(shrink, n // 4)) for n in size]


def n4_applies(image: sitk.Image, modality: str) -> bool:
    """Whether ``convert.mr_bias_correction`` corrects ``image``: a 3-D grey MR volume."""
    return (modality.strip().upper() == "MR" and image.GetDimension() == 3
            and image.GetNumberOfComponentsPerPixel() == 1)


def n4_correct(image: sitk.Image, name: str = "") -> tuple[sitk.Image, dict[str, Any]]:
    """N4 bias-field-corrected copy of a grey MR volume and the sidecar's ``bias_correction``.

    Parameters
    ----------
    image
        A 3-D scalar volume (int16 or float32).
    name
        How messages name the volume (its pseudonymous key).

    Returns
    -------
    corrected : SimpleITK.Image
        float32, the grid of ``image``: ``image / exp(log bias field)``.
    record : dict
        ``method``, ``library``, ``mask``, ``shrink`` (per axis), the settings of
        :data:`N4_SETTINGS`, ``iterations_last_level`` (iterations run at the finest level)
        and ``seconds``.

    Raises
    ------
    DicomError
        ``bias-correction-failed``: no positive foreground voxel above the Otsu threshold (e.g. a
        constant volume), or N4 raised an error.
    """
    start = time.perf_counter()
    full = sitk.Cast(image, sitk.sitkFloat32)
    factors = shrink_factors(full.GetSize())
    small = sitk.Shrink(full, factors)
    otsu = sitk.OtsuThresholdImageFilter()
    otsu.SetInsideValue(0)
    otsu.SetOutsideValue(1)
    otsu.SetNumberOfHistogramBins(OTSU_BINS)
    otsu.SetNumberOfThreads(1)
    # N4 works on log intensities: only positive voxels can be foreground.
    mask = sitk.And(otsu.Execute(small), sitk.Cast(small > 0, sitk.sitkUInt8))
    if not np.any(sitk.GetArrayViewFromImage(mask)):
        raise DicomError(f"{name}: N4 bias-field correction: no foreground voxel above the "
                         "Otsu threshold (a constant or non-positive volume)",
                         reason="bias-correction-failed")
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations(N4_SETTINGS["iterations"])
    corrector.SetConvergenceThreshold(N4_SETTINGS["convergence_threshold"])
    corrector.SetNumberOfControlPoints(N4_SETTINGS["control_points"])
    corrector.SetSplineOrder(N4_SETTINGS["spline_order"])
    corrector.SetNumberOfHistogramBins(N4_SETTINGS["histogram_bins"])
    corrector.SetBiasFieldFullWidthAtHalfMaximum(N4_SETTINGS["bias_field_fwhm"])
    corrector.SetWienerFilterNoise(N4_SETTINGS["wiener_filter_noise"])
    corrector.SetNumberOfThreads(1)
    try:
        corrector.Execute(small, mask)
        log_field = corrector.GetLogBiasFieldAsImage(full)
    except RuntimeError as exc:  # ITK's exceptions reach Python as RuntimeError
        raise DicomError(f"{name}: N4 bias-field correction failed ({exc})",
                         reason="bias-correction-failed") from exc
    corrected = sitk.Cast(full / sitk.Exp(log_field), sitk.sitkFloat32)
    corrected.CopyInformation(image)
    record = {"method": "n4", "library": f"SimpleITK {sitk.Version_VersionString()}",
              "mask": "otsu", "shrink": factors, **N4_SETTINGS,
              "iterations_last_level": int(corrector.GetElapsedIterations()),
              "seconds": round(time.perf_counter() - start, 3)}
    return corrected, record


__all__ = ["N4_SETTINGS", "OTSU_BINS", "SHRINK", "n4_applies", "n4_correct", "shrink_factors"]
