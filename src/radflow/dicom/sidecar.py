"""Acquisition sidecar: a whitelist of non-identifying acquisition parameters of a series.

Only the attributes in :data:`SIDECAR_KEYWORDS` are ever copied, so names, IDs, birth dates,
accession numbers, institution and station names, device serial numbers, UIDs and dates cannot
reach the sidecar. (Free text such as SeriesDescription is cleaned of control characters and cut
to 64 characters, but its content is what the site typed; it is not screened for names.)

Values are JSON-serialisable: numbers become ``int``/``float``, text becomes cleaned ``str``,
multi-valued attributes become lists; absent or unreadable attributes are left out. Enhanced
multi-frame objects keep many of these attributes in functional-group macros; an attribute missing
at the top level is looked up in the first item of each Shared Functional Groups macro (e.g.
MR Timing and Related Parameters, MR Echo, CT Acquisition Details).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.valuerep import IS, DSfloat

from radflow.dicom.headers import clean_text, quiet_pydicom

#: Top-level (or shared functional group) attributes copied as they are.
SIDECAR_KEYWORDS: tuple[str, ...] = (
    "Modality", "Manufacturer", "ManufacturerModelName", "SoftwareVersions",
    "BodyPartExamined", "PatientPosition", "ImageType", "SeriesDescription",
    "PatientAge", "PatientSex", "PatientWeight", "PatientSize", "RescaleType",
    # CT
    "KVP", "XRayTubeCurrent", "Exposure", "ExposureTime", "CTDIvol", "ConvolutionKernel",
    "ReconstructionDiameter", "SliceThickness", "SpacingBetweenSlices", "ContrastBolusAgent",
    # MR
    "MagneticFieldStrength", "RepetitionTime", "EchoTime", "InversionTime", "FlipAngle",
    "ScanningSequence", "SequenceVariant", "MRAcquisitionType", "PixelBandwidth",
    "EffectiveEchoTime",
    # PET
    "Units", "DecayCorrection", "CorrectedImage", "AttenuationCorrectionMethod",
    "ReconstructionMethod", "SUVType",
)
#: Attributes of the first RadiopharmaceuticalInformationSequence item.
RADIOPHARMACEUTICAL_KEYWORDS: tuple[str, ...] = (
    "Radiopharmaceutical", "RadionuclideHalfLife", "RadionuclideTotalDose",
    "RadionuclidePositronFraction",
)
_TEXT_LIMIT = 64


def acquisition_sidecar(ds: Dataset) -> dict[str, Any]:
    """Whitelisted acquisition parameters of ``ds`` as a JSON-serialisable dict.

    Parameters
    ----------
    ds
        One data set of the series (usually the first slice).

    Returns
    -------
    dict
        DICOM keyword -> value, keys in :data:`SIDECAR_KEYWORDS` order; for PET also
        ``"Radiopharmaceutical"`` (dict of :data:`RADIOPHARMACEUTICAL_KEYWORDS` plus
        ``"Radionuclide"`` code meaning).
    """
    out = header_values(ds, SIDECAR_KEYWORDS)
    with quiet_pydicom():
        pharm = _first_item(ds, "RadiopharmaceuticalInformationSequence")
        if pharm is not None:
            info = {k: v for k in RADIOPHARMACEUTICAL_KEYWORDS
                    if (v := _json_value(_raw(pharm, k))) is not None}
            nuclide = _first_item(pharm, "RadionuclideCodeSequence")
            meaning = _json_value(_raw(nuclide, "CodeMeaning")) if nuclide is not None else None
            if meaning is not None:
                info["Radionuclide"] = meaning
            if info:
                out["Radiopharmaceutical"] = info
    return out


def header_values(ds: Dataset, keywords: Iterable[str]) -> dict[str, Any]:
    """The values of ``keywords`` in ``ds`` as JSON-safe values, looked up as
    :func:`acquisition_sidecar` does (top level first, then the Shared Functional Groups
    macros); absent or unreadable attributes are left out. The caller's ``keywords`` are its
    whitelist (e.g. :data:`radflow.dicom.acquisition.ACQUISITION_KEYWORDS`)."""
    out: dict[str, Any] = {}
    with quiet_pydicom():
        shared = _shared_macros(ds)
        for keyword in keywords:
            value = _lookup(ds, keyword, shared)
            if value is not None:
                out[keyword] = value
    return out


def _raw(ds: Dataset, keyword: str) -> Any:
    try:
        return ds.get(keyword)
    except Exception:  # malformed value
        return None


def _first_item(ds: Dataset, keyword: str) -> Dataset | None:
    seq = _raw(ds, keyword)
    return seq[0] if isinstance(seq, DicomSequence) and len(seq) else None


def _shared_macros(ds: Dataset) -> list[Dataset]:
    group = _first_item(ds, "SharedFunctionalGroupsSequence")
    if group is None:
        return []
    macros = []
    for tag in list(group.keys()):
        if tag.is_private:  # never needed, and may hold payloads pydicom cannot parse
            continue
        try:
            value = group[tag].value
        except Exception:  # malformed element
            continue
        if isinstance(value, DicomSequence) and len(value):
            macros.append(value[0])
    return macros


def _lookup(ds: Dataset, keyword: str, shared: Iterable[Dataset]) -> Any:
    value = _json_value(_raw(ds, keyword))
    if value is not None:
        return value
    for macro in shared:
        value = _json_value(_raw(macro, keyword))
        if value is not None:
            return value
    return None


def _json_value(value: Any) -> Any:
    """A DICOM value as a JSON-safe scalar or list; ``None`` for empty/unsupported values."""
    if value is None or isinstance(value, DicomSequence | bytes | bytearray):
        return None
    if isinstance(value, MultiValue | list | tuple):
        items = [_json_scalar(v) for v in value]
        items = [v for v in items if v is not None]
        return items or None
    return _json_scalar(value)


def _json_scalar(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, IS | int):
        return int(value)
    if isinstance(value, DSfloat | float | Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    text = clean_text(value, _TEXT_LIMIT)
    return text or None


__all__ = ["RADIOPHARMACEUTICAL_KEYWORDS", "SIDECAR_KEYWORDS", "acquisition_sidecar",
           "header_values"]
