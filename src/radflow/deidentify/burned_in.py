"""Burned-in annotation: which objects radflow will not de-identify unless the user opts in.

radflow changes header attributes only; text written into the pixels (names, dates, IDs on
screenshots, ultrasound and secondary captures) would pass through unchanged. A series is
therefore excluded (status ``excluded:<reason>``) when any of its objects

* says so: BurnedInAnnotation (0028,0301) is ``YES`` -> ``burned-in-annotation``; or
* belongs to a SOP class that typically carries burned-in text or recognisable photographs
  (secondary capture, ultrasound, visible light) and does not state BurnedInAnnotation ``NO``
  -> ``burned-in-sop-class``.

With ``DeidSettings.allow_burned_in`` the user takes responsibility (e.g. after checking the
pixels) and such series are de-identified like any other.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from radflow.dicom.headers import get_str, sop_class_uid

#: SOP classes that typically carry burned-in annotation or recognisable visual features.
BURNED_IN_SOP_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
    "1.2.840.10008.5.1.4.1.1.7.1",  # Multi-frame Single Bit Secondary Capture
    "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte Secondary Capture
    "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word Secondary Capture
    "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame True Color Secondary Capture
    "1.2.840.10008.5.1.4.1.1.6",  # Ultrasound Image Storage (Retired)
    "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image Storage
    "1.2.840.10008.5.1.4.1.1.3",  # Ultrasound Multi-frame Image Storage (Retired)
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame Image Storage
})
#: Visible light (photographs, endoscopy, microscopy, ophthalmology): 1.2.840.10008.5.1.4.1.1.77.*
VISIBLE_LIGHT_PREFIX = "1.2.840.10008.5.1.4.1.1.77."


def burned_in_reason(ds: Dataset) -> str | None:
    """``burned-in-annotation`` / ``burned-in-sop-class`` for a data set at risk, else None."""
    flag = get_str(ds, "BurnedInAnnotation").upper()
    if flag == "YES":
        return "burned-in-annotation"
    if flag == "NO":
        return None
    sop = sop_class_uid(ds)
    if sop in BURNED_IN_SOP_CLASSES or sop.startswith(VISIBLE_LIGHT_PREFIX):
        return "burned-in-sop-class"
    return None


__all__ = ["BURNED_IN_SOP_CLASSES", "burned_in_reason"]
