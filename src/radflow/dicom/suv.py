"""PET standardised uptake values (SUV): the factors that turn a PET series' voxel values into SUVs.

:func:`suv_factors` reads the headers of one PET series and returns a :class:`SuvResult` (the
factor to multiply the rescaled voxel values with, and every header value used), or raises
:class:`~radflow.errors.SuvError` with a closed-vocabulary ``suv-*`` reason when the header does
not allow a safe computation: a count or Bq/ml image is never passed on as SUV.

Procedure
---------
The vendor-neutral SUV pseudo-code of the QIBA FDG-PET/CT profile (QIBA wiki, page
"Standardized Uptake Value (SUV)", section "Vendor-neutral pseudo-codes for SUV calculation";
the logic 3D Slicer's PET DICOM extension and cornerstone's ``calculate-suv`` implement):

* **Units** (0054,1001). ``BQML``: SUVbw factor = weight [g] / decayed dose [Bq]. ``CNTS``: only
  with Philips' private SUV Scale Factor (7053,1000) (the factor itself), or its Activity
  Concentration Scale Factor (7053,1009) (rescaled value x it = Bq/ml, then as BQML). ``GML``:
  already SUVbw (SUVType BW, or absent as QIBA assumes): factor 1, method ``stored-suv``.
  Anything else is ``suv-units-unknown``. CorrectedImage (0028,0051) must list ATTN.
* **Scan time**: SeriesDate/SeriesTime, unless they are after the earliest AcquisitionDate/
  AcquisitionTime of the series (a series re-saved or post-processed later, e.g. by GE or
  Siemens consoles); then that earliest acquisition time. (QIBA reads GE's private scan time
  first; radflow reads no GE private element.)
* **Injection time**: RadiopharmaceuticalStartDateTime (0018,1078); without it, or when it is
  implausible (after the scan, or more than :data:`MAX_HALF_LIVES` half-lives before it, as a
  date shifted apart from the series date by de-identification gives), the QIBA rule:
  RadiopharmaceuticalStartTime (0018,1072) on the scan's date, the day before when that puts it
  after the scan (midnight crossing).
* **Decay correction** (0054,1102), which must agree with DECY in CorrectedImage. ``START``:
  voxels refer to the scan time, decayed dose = dose x 2^(-elapsed / half-life) (QIBA).
  ``ADMIN``: voxels refer to the injection, decayed dose = dose. ``NONE``: voxels are the mean
  activity during each image's frame (its AcquisitionDate/AcquisitionTime and
  ActualFrameDuration), so the dose is averaged over that frame: dose x 2^(-elapsed /
  half-life) x (1 - exp(-l d)) / (l d), l = ln 2 / half-life, d = frame duration; one factor per
  image. (ADMIN and NONE follow the DICOM definition of Decay Correction, PS3.3 C.8.9.1.1.5.)

SUL and SUVbsa (``convert.pet_units: suv-lbm | suv-bsa``) scale the SUVbw factor by lean body
mass / weight (Janmahasatian et al. 2005, Clin Pharmacokinet 44:1051-65: LBM = 9270 W /
(6680 + 216 BMI) for men, 9270 W / (8780 + 244 BMI) for women) or by body surface area [cm2] /
weight [g] (Du Bois & Du Bois 1916, Arch Intern Med 17:863-71: BSA = 0.007184 W^0.425 H^0.725,
H in cm), from PatientWeight, PatientSize (m) and PatientSex.

No date leaves this module: times are recorded as differences (``elapsed_s``) and by the
attribute they came from; messages give hours, never a date or time of day.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, get_args

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from radflow.dicom.headers import get_float, get_str, get_strs
from radflow.dicom.suv_decay import MAX_HALF_LIVES, decay_fractions
from radflow.errors import SuvError

#: The SUVs radflow computes (``convert.pet_units`` without ``stored``).
SuvMethod = Literal["suv-bw", "suv-lbm", "suv-bsa"]
SUV_METHODS: tuple[str, ...] = get_args(SuvMethod)
#: Method recorded when the stored values already are the asked SUVs (factor 1).
STORED_SUV = "stored-suv"
#: Units and SUVType (0054,1006) of stored values that already are each method's SUVs.
STORED_TYPES: dict[str, tuple[str, str]] = {"suv-bw": ("GML", "BW"),
                                            "suv-lbm": ("GML", "LBMJANMA"),
                                            "suv-bsa": ("CM2ML", "BSA")}
#: Below this a RadionuclideTotalDose is taken for a value in MBq, not Bq (0.1 MBq).
MIN_DOSE_BQ = 1e5
MAX_WEIGHT_KG = 1000.0
MAX_HEIGHT_M = 3.0
PHILIPS_CREATOR = "Philips PET Private Group"
_PHILIPS_SUV, _PHILIPS_ACTIVITY = 0x00, 0x09  # (7053,xx00) and (7053,xx09)
_TERM = re.compile(r"[A-Z0-9_ ]{1,16}")


@dataclass(frozen=True)
class SuvInputs:
    """The header values a factor was computed from (:meth:`to_json`: no dates).

    Per-image values (``elapsed_s``, ``frame_duration_s``, ``decay_factor``) are tuples in the
    order of the data sets given; ``decay_factor`` is the fraction of the injected dose left at
    the time the voxel values refer to (NONE: averaged over the frame).
    """

    requested: str
    units: str
    suv_type: str = ""
    decay_correction: str = ""
    weight_kg: float | None = None
    height_m: float | None = None
    sex: str | None = None
    dose_bq: float | None = None
    half_life_s: float | None = None
    injection_from: str | None = None
    reference_from: str | None = None
    elapsed_s: tuple[float, ...] | None = None
    frame_duration_s: tuple[float, ...] | None = None
    decay_factor: tuple[float, ...] | None = None
    lean_body_mass_kg: float | None = None
    body_surface_area_m2: float | None = None
    vendor_scale: str | None = None
    vendor_scale_factor: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The values set, a per-image tuple as one number when all images agree."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == "":
                continue
            if isinstance(value, tuple):
                value = value[0] if len(set(value)) == 1 else list(value)
            out[f.name] = value
        return out


@dataclass(frozen=True)
class SuvResult:
    """SUV = rescaled voxel value x factor.

    Attributes
    ----------
    method
        ``suv-bw``, ``suv-lbm``, ``suv-bsa``, or ``stored-suv`` (the stored values already are
        the asked SUVs; factor 1).
    factors
        One factor per data set, in the order given (they differ only with DecayCorrection
        NONE, where each image has its own frame time).
    inputs
        What the factors were computed from.
    """

    method: str
    factors: tuple[float, ...]
    inputs: SuvInputs

    @property
    def factor(self) -> float | None:
        """The one factor of the series; ``None`` when the images' factors differ."""
        return self.factors[0] if len(set(self.factors)) == 1 else None

    def to_json(self) -> dict[str, Any]:
        """``method``, ``factor`` (or per-image ``factors``) and ``inputs`` for the sidecar."""
        factor = self.factor
        scale: dict[str, Any] = ({"factor": factor} if factor is not None
                                 else {"factors": list(self.factors)})
        return {"method": self.method, **scale, "inputs": self.inputs.to_json()}


def suv_factors(datasets: Sequence[Dataset], method: str) -> SuvResult:
    """The SUV factors of one PET series (procedure in the module docstring).

    Parameters
    ----------
    datasets
        The series' data sets (headers; every image, for the earliest acquisition time, the
        per-image frame times of DecayCorrection NONE and the consistency check).
    method
        ``suv-bw``, ``suv-lbm`` or ``suv-bsa``.

    Raises
    ------
    SuvError
        With the reason (``suv-units-unknown``, ``suv-missing-weight``, ...; the vocabulary of
        :data:`radflow.dicom.reasons.REASONS`) and a message naming the attribute.
    """
    if method not in SUV_METHODS:
        raise ValueError(f"method must be one of {', '.join(SUV_METHODS)}, got {method!r}")
    if not datasets:
        raise ValueError("no data sets given")
    _check_consistent(datasets)
    first = datasets[0]
    units = get_str(first, "Units").upper()
    base = SuvInputs(requested=method, units=_term(units), suv_type=_term(
        get_str(first, "SUVType").upper()), decay_correction=_term(
        get_str(first, "DecayCorrection").upper()))
    n = len(datasets)
    if units in ("GML", "CM2ML"):
        return _stored(first, method, base, n)
    if units not in ("BQML", "CNTS"):
        raise SuvError(f"Units (0054,1001) {base.units or 'missing'}: SUVs are computed from "
                       "BQML, CNTS with a Philips scale factor, or stored SUVs (GML, CM2ML)",
                       reason="suv-units-unknown")
    if "ATTN" not in {v.upper() for v in get_strs(first, "CorrectedImage")}:
        raise SuvError("CorrectedImage (0028,0051) does not list ATTN: the voxel values are not "
                       "attenuation corrected, not quantitative",
                       reason="suv-not-attenuation-corrected")
    activity = 1.0
    if units == "CNTS":
        suv_scale = _philips(first, _PHILIPS_SUV)
        if suv_scale is not None:  # Philips computed SUVbw itself
            inputs = replace(base, vendor_scale="Philips SUV Scale Factor (7053,1000)",
                             vendor_scale_factor=suv_scale)
            return _normalised(first, method, inputs, (suv_scale,) * n, None)
        activity_scale = _philips(first, _PHILIPS_ACTIVITY)
        if activity_scale is None:
            raise SuvError("Units (0054,1001) CNTS without a Philips SUV Scale Factor "
                           "(7053,1000) or Activity Concentration Scale Factor (7053,1009)",
                           reason="suv-units-unknown")
        activity = activity_scale
        base = replace(base, vendor_scale="Philips Activity Concentration Scale Factor "
                                          "(7053,1009)", vendor_scale_factor=activity_scale)
    weight = _weight(first)
    pharm = _radiopharmaceutical(first)
    dose = _dose(pharm)
    decay = decay_fractions(datasets, pharm)
    inputs = replace(base, weight_kg=weight, dose_bq=dose, half_life_s=decay.half_life_s,
                     injection_from=decay.injection_from, reference_from=decay.reference_from,
                     elapsed_s=decay.elapsed_s, frame_duration_s=decay.frame_duration_s,
                     decay_factor=decay.fractions)
    return _normalised(first, method, inputs,
                       tuple(activity * weight * 1000.0 / (dose * d) for d in decay.fractions),
                       weight)


def lean_body_mass_kg(weight_kg: float, height_m: float, sex: str) -> float:
    """Lean body mass (Janmahasatian et al. 2005): 9270 W / (6680 + 216 BMI) for men,
    9270 W / (8780 + 244 BMI) for women (W in kg, BMI = W / H^2 with H in m)."""
    bmi = weight_kg / height_m ** 2
    if sex == "M":
        return 9270.0 * weight_kg / (6680.0 + 216.0 * bmi)
    if sex == "F":
        return 9270.0 * weight_kg / (8780.0 + 244.0 * bmi)
    raise ValueError(f"sex must be M or F, got {sex!r}")


def body_surface_area_m2(weight_kg: float, height_m: float) -> float:
    """Body surface area (Du Bois & Du Bois 1916): 0.007184 W^0.425 H^0.725 (W kg, H cm)."""
    return 0.007184 * weight_kg ** 0.425 * (height_m * 100.0) ** 0.725


# --- units and body size ---------------------------------------------------------------------


def _stored(first: Dataset, method: str, base: SuvInputs, n: int) -> SuvResult:
    """Stored SUVs: factor 1 when they are the asked kind; stored SUVbw can become SUL/SUVbsa."""
    stored = base.suv_type or ("BW" if base.units == "GML" else "BSA")
    inputs = base if base.suv_type else replace(base, suv_type=f"{stored} (assumed)")
    if (base.units, stored) == STORED_TYPES[method]:
        return SuvResult(STORED_SUV, (1.0,) * n, inputs)
    if (base.units, stored) == ("GML", "BW"):
        return _normalised(first, method, inputs, (1.0,) * n, None)
    raise SuvError(f"Units (0054,1001) {base.units} with SUVType {stored}: stored SUVs of "
                   f"another kind than {method}, not convertible", reason="suv-units-unknown")


def _normalised(first: Dataset, method: str, inputs: SuvInputs, bw: tuple[float, ...],
                weight: float | None) -> SuvResult:
    """SUVbw factors ``bw`` turned into ``method``'s (SUL: x LBM / W; SUVbsa: x BSA / W)."""
    if method == "suv-bw":
        return SuvResult(method, bw, inputs)
    weight = _weight(first) if weight is None else weight
    height = get_float(first, "PatientSize")
    if height is None or not 0 < height <= MAX_HEIGHT_M:
        shown = "missing" if height is None else f"{height:g}"
        raise SuvError(f"PatientSize (0010,1020) {shown}: {method} needs a height in m "
                       f"(0 to {MAX_HEIGHT_M:g})", reason="suv-missing-height-or-sex")
    inputs = replace(inputs, weight_kg=weight, height_m=height)
    if method == "suv-lbm":
        sex = get_str(first, "PatientSex").upper()
        if sex not in ("M", "F"):
            raise SuvError("PatientSex (0010,0040) not M or F: the lean body mass formula "
                           "(Janmahasatian 2005) needs it", reason="suv-missing-height-or-sex")
        lbm = lean_body_mass_kg(weight, height, sex)
        inputs, ratio = replace(inputs, sex=sex, lean_body_mass_kg=lbm), lbm / weight
    else:
        bsa = body_surface_area_m2(weight, height)
        inputs, ratio = replace(inputs, body_surface_area_m2=bsa), bsa * 1e4 / (weight * 1e3)
    return SuvResult(method, tuple(f * ratio for f in bw), inputs)


def _weight(ds: Dataset) -> float:
    weight = get_float(ds, "PatientWeight")
    if weight is None or not 0 < weight < MAX_WEIGHT_KG:
        shown = "missing" if weight is None else f"{weight:g} kg"
        raise SuvError(f"PatientWeight (0010,1030) {shown}: SUVs need a weight in kg (above 0, "
                       f"below {MAX_WEIGHT_KG:g})", reason="suv-missing-weight")
    return weight


def _radiopharmaceutical(ds: Dataset) -> Dataset | None:
    try:
        seq = ds.get("RadiopharmaceuticalInformationSequence")
    except Exception:  # malformed sequence
        return None
    return seq[0] if isinstance(seq, DicomSequence) and len(seq) else None


def _dose(pharm: Dataset | None) -> float:
    dose = None if pharm is None else get_float(pharm, "RadionuclideTotalDose")
    if dose is None or dose < MIN_DOSE_BQ:
        shown = "missing" if dose is None else f"{dose:g} Bq"
        raise SuvError(f"RadionuclideTotalDose (0018,1074) in the Radiopharmaceutical "
                       f"Information Sequence {shown}: a dose in Bq of at least "
                       f"{MIN_DOSE_BQ:g} is needed", reason="suv-missing-dose")
    return dose


def _philips(ds: Dataset, element: int) -> float | None:
    """A positive number in Philips' private group 7053 (``None`` when absent or unusable)."""
    try:
        tag = ds.private_block(0x7053, PHILIPS_CREATOR).get_tag(element)
        value = ds[tag].value if tag in ds else None
    except Exception:  # no such private creator, or a malformed element
        return None
    if isinstance(value, bytes):  # implicit VR read without the private dictionary
        value = value.decode("ascii", "replace").strip("\x00 ")
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _term(value: str) -> str:
    """A defined term as read; anything else (long or odd text) is not repeated."""
    return value if not value or _TERM.fullmatch(value) else "(unrecognised value)"


# --- one series, one header -----------------------------------------------------------------

_SERIES_TEXT = ("Units", "SUVType", "DecayCorrection", "CorrectedImage", "PatientSex",
                "SeriesDate", "SeriesTime", "TimezoneOffsetFromUTC")
_SERIES_NUMBERS = ("PatientWeight", "PatientSize")
_PHARM_TEXT = ("RadiopharmaceuticalStartTime", "RadiopharmaceuticalStartDateTime")
_PHARM_NUMBERS = ("RadionuclideTotalDose", "RadionuclideHalfLife")


def _signature(ds: Dataset) -> dict[str, Any]:
    pharm = _radiopharmaceutical(ds)
    out: dict[str, Any] = {k: get_str(ds, k).upper() for k in _SERIES_TEXT}
    out.update({k: get_float(ds, k) for k in _SERIES_NUMBERS})
    out.update({k: get_str(pharm, k) if pharm is not None else "" for k in _PHARM_TEXT})
    out.update({k: get_float(pharm, k) if pharm is not None else None for k in _PHARM_NUMBERS})
    out["Philips scale factors (7053,1000) / (7053,1009)"] = (
        _philips(ds, _PHILIPS_SUV), _philips(ds, _PHILIPS_ACTIVITY))
    return out


def _check_consistent(datasets: Sequence[Dataset]) -> None:
    """The header values SUVs depend on are the same in every image of the series."""
    reference = _signature(datasets[0])
    for k, ds in enumerate(datasets[1:], 2):
        differ = [name for name, value in _signature(ds).items() if value != reference[name]]
        if differ:
            raise SuvError(f"{', '.join(differ)} differ(s) between image {k} of "
                           f"{len(datasets)} and image 1 of the PET series",
                           reason="suv-inconsistent-headers")


__all__ = ["MAX_HALF_LIVES", "MIN_DOSE_BQ", "STORED_SUV", "STORED_TYPES", "SUV_METHODS",
           "SuvError", "SuvInputs", "SuvMethod", "SuvResult", "body_surface_area_m2",
           "lean_body_mass_kg", "suv_factors"]
