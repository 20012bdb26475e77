"""The crawl's per-series acquisition summary: a whitelist of non-identifying header values.

One summary per series, from its first file (by path): what protocol QC gates
(:mod:`radflow.protocol`) judge, for every series of a study, converted or not (dose reports
included). Only the attributes in :data:`ACQUISITION_KEYWORDS` are read (through
:func:`radflow.dicom.sidecar.header_values`: top level, then the Shared Functional Groups
macros), plus the SOP *class* UID, the image plane and, for a radiation dose structured report,
the CTDIvol and DLP it holds. No name, ID, date, time, institution, device serial number or
instance UID is read, so none can reach ``crawl/acquisition.tsv``.

Values are text: numbers as written by :func:`repr` of the float/int, several values joined by
``\\`` (``ImageType``, a Siemens ``ConvolutionKernel`` with its iterative strength), ``""`` when
absent. Per-slice values (tube current with modulation, exposure) are those of the first file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from radflow.dicom.sidecar import header_values

#: Header attributes of the summary (DICOM keywords; also the table's column names).
ACQUISITION_KEYWORDS: tuple[str, ...] = (
    "ManufacturerModelName", "BodyPartExamined", "ImageType", "PatientPosition",
    "KVP", "XRayTubeCurrent", "ExposureTime", "Exposure", "ExposureInuAs", "CTDIvol",
    "ConvolutionKernel", "SliceThickness", "SpacingBetweenSlices", "ReconstructionDiameter",
    "SingleCollimationWidth", "TotalCollimationWidth", "SpiralPitchFactor",
)
#: X-Ray Radiation Dose SR and Enhanced X-Ray Radiation Dose SR (PS3.4 B.5).
DOSE_SR_SOP_CLASSES: frozenset[str] = frozenset({
    "1.2.840.10008.5.1.4.1.1.88.67", "1.2.840.10008.5.1.4.1.1.88.76"})
#: DCM codes of TID 10011 / 10012 (CT Irradiation Event Data, CT Accumulated Dose Data).
MEAN_CTDIVOL = "113830"
DLP = "113838"
DLP_TOTAL = "113813"
#: A slice normal within ~37 degrees of a patient axis names the plane; else ``oblique``.
_PLANE_MIN_COSINE = 0.8
#: Items read at most in a dose report's content tree (a report has tens to hundreds).
_MAX_CONTENT_ITEMS = 100_000


def acquisition_values(ds: Dataset) -> dict[str, str]:
    """The whitelisted header values of ``ds`` as text (keys: :data:`ACQUISITION_KEYWORDS`,
    absent ones left out)."""
    return {k: _text(v) for k, v in header_values(ds, ACQUISITION_KEYWORDS).items()}


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\\".join(_text(v) for v in value)
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(value)


def plane_of(orientation: Sequence[float] | None) -> str:
    """``axial``, ``coronal``, ``sagittal`` or ``oblique`` from ImageOrientationPatient (row and
    column cosines): the patient axis the slice normal points along; ``""`` when unknown."""
    if not orientation or len(orientation) != 6:
        return ""
    normal = np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:], float))
    length = float(np.linalg.norm(normal))
    if not np.isfinite(length) or length == 0:
        return ""
    axis = int(np.argmax(np.abs(normal)))
    if abs(normal[axis]) / length < _PLANE_MIN_COSINE:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def dose_report_values(ds: Dataset) -> dict[str, str]:
    """CTDIvol and DLP of a radiation dose SR: ``dose_ctdivol`` (the largest Mean CTDIvol of its
    irradiation events, mGy) and ``dose_dlp`` (CT Dose Length Product Total, else the sum of
    the events' DLP, mGy.cm); ``"none"`` when the report holds no such value. Empty for any
    other object."""
    if str(ds.get("SOPClassUID", "")) not in DOSE_SR_SOP_CLASSES:
        return {}
    ctdi: list[float] = []
    dlp: list[float] = []
    total: list[float] = []
    wanted = {MEAN_CTDIVOL: ctdi, DLP: dlp, DLP_TOTAL: total}
    for code, value in _numeric_items(ds):
        if code in wanted:
            wanted[code].append(value)
    dlp_value = total[0] if total else (sum(dlp) if dlp else None)
    return {"dose_ctdivol": _text(max(ctdi)) if ctdi else "none",
            "dose_dlp": _text(dlp_value) if dlp_value is not None else "none"}


def _numeric_items(ds: Dataset) -> Iterator[tuple[str, float]]:
    """(DCM concept code, value) of every NUM content item, depth first."""
    stack = [ds]
    seen = 0
    while stack and seen < _MAX_CONTENT_ITEMS:
        item = stack.pop()
        seen += 1
        try:
            content = item.get("ContentSequence")
            if str(item.get("ValueType", "")) == "NUM":
                name = item.get("ConceptNameCodeSequence")
                measured = item.get("MeasuredValueSequence")
                if name and measured and str(name[0].get("CodingSchemeDesignator", "")) == "DCM":
                    value = float(measured[0].get("NumericValue"))
                    if np.isfinite(value):
                        yield str(name[0].get("CodeValue", "")), value
        except (TypeError, ValueError, AttributeError, IndexError):
            continue  # a malformed item: the values it would hold are not counted
        if isinstance(content, DicomSequence):
            stack.extend(reversed(list(content)))


__all__ = ["ACQUISITION_KEYWORDS", "DOSE_SR_SOP_CLASSES", "acquisition_values",
           "dose_report_values", "plane_of"]
