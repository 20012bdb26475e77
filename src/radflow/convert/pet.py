"""PET series as standardised uptake values (``convert.pet_units``; :mod:`radflow.dicom.suv`).

:func:`pet_image` turns the volume of a DICOM PET series (modality PT) into SUVs before it is
written: the rescaled voxel values times the series' factor (one factor per slice with
DecayCorrection NONE), computed in float64 and written as float32, and returns the sidecar's
``suv`` record. Stored SUVs (factor 1) and ``pet_units: stored`` keep the volume as read. A
series whose header does not allow SUVs raises :class:`~radflow.errors.SuvError`; the convert
stage records its ``suv-*`` reason and writes no volume.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import SimpleITK as sitk

from radflow.dicom.colour import is_colour
from radflow.dicom.headers import clean_text, get_str
from radflow.dicom.suv import suv_factors
from radflow.dicom.volume import SeriesVolume
from radflow.errors import SuvError

logger = logging.getLogger(__name__)


def pet_image(volume: SeriesVolume, pet_units: str) -> tuple[sitk.Image, dict[str, Any] | None]:
    """The volume to write and the sidecar's ``suv`` record (``None``: not a PET series).

    Parameters
    ----------
    volume
        A converted DICOM series; its ``datasets`` are in slice order.
    pet_units
        ``suv-bw``, ``suv-lbm``, ``suv-bsa`` or ``stored``.

    Raises
    ------
    SuvError
        The header does not allow ``pet_units`` (the ``suv-*`` reasons), or per-slice factors
        (DecayCorrection NONE) on a volume whose slices are not one image each
        (``suv-decay-unknown``).
    """
    image = volume.image
    first = volume.datasets[0]
    if get_str(first, "Modality").upper() != "PT" or is_colour(image):
        return image, None
    if pet_units == "stored":
        units = clean_text(get_str(first, "Units"), 16)
        return image, {"method": "stored", "inputs": {"requested": "stored", "units": units}}
    result = suv_factors(volume.datasets, pet_units)
    record = result.to_json()
    if result.factor == 1.0:  # the stored values already are the asked SUVs
        return image, record
    factors = np.asarray(result.factors, dtype=np.float64)
    n_slices = image.GetSize()[2]
    if result.factor is None:  # one factor per image, in slice order
        if "resampling" in volume.info or factors.size != n_slices:
            raise SuvError("DecayCorrection NONE gives each image its own factor, but the volume "
                           "was resampled or built from multi-frame objects",
                           reason="suv-decay-unknown")
        scale = factors[:, None, None]
    else:
        scale = factors[:1, None, None]
    voxels = sitk.GetArrayViewFromImage(image)  # (z, y, x)
    out = sitk.GetImageFromArray((voxels.astype(np.float64) * scale).astype(np.float32))
    out.CopyInformation(image)
    logger.info("PET values as %s (factor %s)", result.method,
                f"{result.factor:.6g}" if result.factor is not None else "per slice")
    return out, record


__all__ = ["pet_image"]
