"""What a protocol rule can judge: the attribute registry and each attribute's value of a series.

Values come from three places: the crawl's acquisition table (DICOM keywords, read from the
series' first file), the crawl's series table (``Modality``, ``Manufacturer``,
``SeriesDescription``, ``slice_spacing``), and radflow's derivations below; the two image
attributes (``body_width_fraction``, ``body_in_fov``) are computed from the converted image by
:mod:`radflow.protocol.body`.

A value is ``None`` when it is unknown (absent from the header, not a number, not converted):
a condition on it is ``unknown``. :data:`ABSENT` is a value known to be missing (a dose report
that holds no CTDIvol): a condition on it fails.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from radflow.protocol.profile import KernelMap, Profile

NUMBER, TEXT, BOOL = "number", "text", "boolean"


@dataclass(frozen=True)
class Attribute:
    """``kind`` (number, text, boolean), where the value comes from, what it means."""

    kind: str
    source: str
    meaning: str


_H = "header (crawl/acquisition.tsv)"
_S = "crawl/series.tsv"
_D = "derived"
_I = "image (converted series)"
#: Every attribute a profile may name (the schema's enum lists the same names).
ATTRIBUTES: dict[str, Attribute] = {
    "KVP": Attribute(NUMBER, _H, "peak tube voltage, kV"),
    "XRayTubeCurrent": Attribute(NUMBER, _H, "tube current, mA (first slice)"),
    "ExposureTime": Attribute(NUMBER, _H, "exposure time, ms"),
    "Exposure": Attribute(NUMBER, _H, "tube current-time product, mAs (first slice)"),
    "ExposureInuAs": Attribute(NUMBER, _H, "tube current-time product, uAs"),
    "CTDIvol": Attribute(NUMBER, _H, "volume CT dose index, mGy"),
    "ConvolutionKernel": Attribute(TEXT, _H, "reconstruction kernel (first value)"),
    "SliceThickness": Attribute(NUMBER, _H, "nominal slice thickness, mm"),
    "SpacingBetweenSlices": Attribute(NUMBER, _H, "spacing between slices as written, mm"),
    "ReconstructionDiameter": Attribute(NUMBER, _H, "reconstruction field of view, mm"),
    "SingleCollimationWidth": Attribute(NUMBER, _H, "width of one detector channel, mm"),
    "TotalCollimationWidth": Attribute(NUMBER, _H, "total collimation width, mm"),
    "SpiralPitchFactor": Attribute(NUMBER, _H, "helical pitch"),
    "PatientPosition": Attribute(TEXT, _H, "HFS, FFS, HFP, ... (S = supine)"),
    "BodyPartExamined": Attribute(TEXT, _H, "body part"),
    "ManufacturerModelName": Attribute(TEXT, _H, "scanner model"),
    "SOPClassUID": Attribute(TEXT, _H, "SOP class UID"),
    "Modality": Attribute(TEXT, _S, "modality"),
    "Manufacturer": Attribute(TEXT, _S, "manufacturer"),
    "SeriesDescription": Attribute(TEXT, _S, "series description (cleaned)"),
    "slice_spacing": Attribute(NUMBER, _S, "slice spacing along the normal from the slice "
                                            "positions, mm (spacing_z)"),
    "kernel_class": Attribute(TEXT, _D, "standard or sharp: the profile's kernel map applied "
                                        "to Manufacturer and ConvolutionKernel"),
    "exposure_mas": Attribute(NUMBER, _D, "Exposure, else ExposureInuAs / 1000, mAs"),
    "slice_gap": Attribute(NUMBER, _D, "slice spacing (slice_spacing, else "
                                       "SpacingBetweenSlices) minus SliceThickness, mm; > 0 is "
                                       "a gap, < 0 an overlap"),
    "detector_channels": Attribute(NUMBER, _D, "TotalCollimationWidth / "
                                               "SingleCollimationWidth, rounded"),
    "plane": Attribute(TEXT, _D, "axial, coronal, sagittal or oblique (slice normal)"),
    "dose_report": Attribute(TEXT, _D, "rdsr (X-Ray Radiation Dose SR), screen (description "
                                       "matches the profile's dose_screens) or none"),
    "dose_ctdivol": Attribute(NUMBER, _D, "largest Mean CTDIvol in a dose SR, mGy"),
    "dose_dlp": Attribute(NUMBER, _D, "total DLP in a dose SR, mGy.cm"),
    "body_width_fraction": Attribute(NUMBER, _I, "widest left-right body extent / field of "
                                                 "view (radflow.protocol.body)"),
    "body_in_fov": Attribute(BOOL, _I, "the body touches neither left nor right image edge"),
}
IMAGE_ATTRIBUTES: frozenset[str] = frozenset(
    name for name, a in ATTRIBUTES.items() if a.source == _I)


class _Absent:
    """A value known to be missing (see module docstring)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()
_HEADER_NUMBERS = tuple(n for n, a in ATTRIBUTES.items() if a.source == _H and a.kind == NUMBER)
_HEADER_TEXTS = ("PatientPosition", "BodyPartExamined", "ManufacturerModelName")


def number(text: str) -> float | None:
    """The first value of a table cell as a finite float; ``None`` when empty or not a number."""
    first = text.split("\\", 1)[0].strip()
    try:
        value = float(first)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def kernel_class(manufacturer: str, kernel: str, kernels: Sequence[KernelMap]) -> str | None:
    """``standard`` / ``sharp`` of ``kernel`` by the first map whose manufacturer pattern
    matches; ``None`` when no map matches or it does not name the kernel."""
    if not manufacturer or not kernel:
        return None
    maker, name = manufacturer.casefold(), kernel.casefold()
    for entry in kernels:
        if any(fnmatch.fnmatchcase(maker, p.casefold()) for p in entry.manufacturer):
            if any(fnmatch.fnmatchcase(name, p.casefold()) for p in entry.standard):
                return "standard"
            if any(fnmatch.fnmatchcase(name, p.casefold()) for p in entry.sharp):
                return "sharp"
            return None
    return None


def series_values(series: Mapping[str, str], acquisition: Mapping[str, str] | None,
                  profile: Profile) -> dict[str, Any]:
    """Every non-image attribute of one series (``None`` unknown, :data:`ABSENT` known absent).

    Parameters
    ----------
    series
        Its row of ``crawl/series.tsv`` (text cells).
    acquisition
        Its row of ``crawl/acquisition.tsv``, or ``None`` (a sheet file, an unreadable file).
    profile
        For the kernel map and the dose-screen descriptions.
    """
    acq = acquisition or {}
    values: dict[str, Any] = {n: number(acq.get(n, "")) for n in _HEADER_NUMBERS}
    values.update({n: acq.get(n, "") or None for n in _HEADER_TEXTS})
    kernel = acq.get("ConvolutionKernel", "").split("\\", 1)[0].strip()
    values["ConvolutionKernel"] = kernel or None
    values["SOPClassUID"] = acq.get("sop_class_uid", "") or None
    values["Modality"] = series.get("modality", "") or None
    values["Manufacturer"] = series.get("manufacturer", "") or None
    description = series.get("series_description", "")
    values["SeriesDescription"] = description or None
    values["slice_spacing"] = number(series.get("spacing_z", ""))
    values["kernel_class"] = kernel_class(series.get("manufacturer", ""), kernel,
                                          profile.kernels)
    exposure = values["Exposure"]
    if exposure is None and values["ExposureInuAs"] is not None:
        exposure = values["ExposureInuAs"] / 1000.0
    values["exposure_mas"] = exposure
    spacing = (values["slice_spacing"] if values["slice_spacing"] is not None
               else values["SpacingBetweenSlices"])
    thickness = values["SliceThickness"]
    values["slice_gap"] = (round(spacing - thickness, 3)
                           if spacing is not None and thickness is not None else None)
    single, total = values["SingleCollimationWidth"], values["TotalCollimationWidth"]
    values["detector_channels"] = (float(round(total / single))
                                   if single and total and single > 0 and total > 0 else None)
    values["plane"] = acq.get("plane", "") or None
    values["dose_report"] = _dose_report(values["SOPClassUID"], description, profile)
    for name in ("dose_ctdivol", "dose_dlp"):
        text = acq.get(name, "")
        values[name] = ABSENT if text == "none" else number(text)
    for name in IMAGE_ATTRIBUTES:
        values[name] = None
    return values


def _dose_report(sop_class: str | None, description: str, profile: Profile) -> str:
    # imported here: the Snakefile reads profiles at every start and needs no pydicom
    from radflow.dicom.acquisition import DOSE_SR_SOP_CLASSES

    if sop_class in DOSE_SR_SOP_CLASSES:
        return "rdsr"
    text = description.casefold()
    if text and any(fnmatch.fnmatchcase(text, p.casefold()) for p in profile.dose_screens):
        return "screen"
    return "none"


__all__ = ["ABSENT", "ATTRIBUTES", "BOOL", "IMAGE_ATTRIBUTES", "NUMBER", "TEXT", "Attribute",
           "kernel_class", "number", "series_values"]
