"""The coded concepts of radflow's DICOM SR: the name, unit and method of each feature row.

A feature row of the extract stage (``feature_class``, ``feature``, ``ibsi_code``, ...) becomes
one TID 1419 measurement (:func:`feature_concept`):

* **concept name**: the IBSI 1 feature identifier with coding scheme designator ``IBSI``, code
  meaning the IBSI feature name (from ``radflow.ibsi.codes.tsv``), as PyRadiomics' DICOM
  experiment does (``labs/pyradiomics-dcm/pyradiomics-dcm.py``: ``CodingSchemeDesignator
  "IBSI"``, code value the IBSI identifier, meaning the IBSI name; the codes are IBSI's own, the
  same identifiers the extract stage writes to ``ibsi_code``). A row without an IBSI code
  (IBSI has no such feature, or the settings make the value another quantity) gets a code of
  radflow's private scheme ``99RADFLOW`` (PS3.16 §8: designators beginning with ``99`` are
  private), code value = the first 10 hex digits of SHA-1 of ``<feature_class>_<feature>``,
  meaning ``<feature_class>_<feature>`` (again as PyRadiomics' experiment does, with its
  ``99PYRADIOMICS`` scheme); ``sr.uncoded: skip`` leaves those rows out instead. RECIST sizes
  without IBSI code use SNOMED CT's long and short axis (SCT 103339001, 103340004) and the
  method RECIST 1.1 (DCM 126081); the metabolic tumour volume SNOMED CT's Volume (SCT
  118565006).
* **method**: for texture features, the IBSI aggregation identifier after the ``/`` of
  ``ibsi_code`` (``ITBB``: averaged over 3D directions, ...), scheme ``IBSI``.
* **unit** (UCUM, as DICOM CID 7181 / CID 85): lengths ``mm``, areas ``mm2``, volumes ``mm3``
  or ``ml``, ``1`` for dimensionless values (texture features are functions of discretised grey
  levels and counts); intensities in Hounsfield units ``[hnsf'U]`` on an unfiltered,
  unnormalised CT image, ``g/ml{SUVbw}`` (and the other SUV units of CID 85) on a PET image
  converted to SUV, otherwise ``[arb'U]`` (arbitrary units: MR, filtered or normalised images).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pydicom.sr.coding import Code

from radflow.ibsi import codes_table

#: Coding scheme designator of the IBSI 1 identifiers (as PyRadiomics' DICOM experiment uses it).
IBSI_SCHEME = "IBSI"
#: radflow's private coding scheme for features without an IBSI identifier (PS3.16 §8: ``99``).
PRIVATE_SCHEME = "99RADFLOW"
#: What the two schemes are: written to the SR's CodingSchemeIdentificationSequence.
SCHEMES: dict[str, tuple[str, str]] = {
    IBSI_SCHEME: ("Image Biomarker Standardisation Initiative (IBSI 1) feature identifiers",
                  "IBSI"),
    PRIVATE_SCHEME: ("radflow feature names without an IBSI identifier", "radflow"),
}

#: IBSI texture aggregation identifiers -> a short meaning (IBSI 1 manual, chapter 3).
AGGREGATIONS: dict[str, str] = {
    "ITBB": "3D directional matrices, averaged",
    "IAZD": "3D directional matrices, merged",
    "KOBO": "one 3D matrix",
    "JJUI": "2D directional matrices, merged per slice",
    "ZW7Z": "2D directional matrices, merged",
    "62GR": "2D matrices, merged over slices",
    "8QNN": "2D matrices, averaged over slices",
}

UCUM = "UCUM"
MM = Code("mm", UCUM, "millimeter")
MM2 = Code("mm2", UCUM, "square millimeter")
MM3 = Code("mm3", UCUM, "cubic millimeter")
ML = Code("ml", UCUM, "milliliter")
ONE = Code("1", UCUM, "no units")
HU = Code("[hnsf'U]", UCUM, "Hounsfield unit")
HU2 = Code("[hnsf'U]2", UCUM, "Hounsfield unit squared")
ARB = Code("[arb'U]", UCUM, "arbitrary unit")
ARB2 = Code("[arb'U]2", UCUM, "arbitrary unit squared")
#: convert.pet_units -> the SUV unit of DICOM CID 85 (PET units).
SUV_UNITS: dict[str, Code] = {
    "suv-bw": Code("g/ml{SUVbw}", UCUM, "Standardized Uptake Value body weight"),
    "suv-lbm": Code("g/ml{SUVlbm}", UCUM, "Standardized Uptake Value lean body mass (James)"),
    "suv-bsa": Code("cm2/ml{SUVbsa}", UCUM, "Standardized Uptake Value body surface area"),
}
LONG_AXIS = Code("103339001", "SCT", "Long axis")
SHORT_AXIS = Code("103340004", "SCT", "Short axis")
VOLUME = Code("118565006", "SCT", "Volume")
RECIST_11 = Code("126081", "DCM", "RECIST 1.1")

#: Features in intensity units (``I``), per class; ``I2``: squared intensity units.
_INTENSITY = {"Mean", "Median", "Minimum", "Maximum", "10Percentile", "90Percentile",
              "InterquartileRange", "Range", "MeanAbsoluteDeviation",
              "RobustMeanAbsoluteDeviation", "RootMeanSquared", "StandardDeviation", "SUVmax",
              "SUVpeak", "MTVThreshold"}
_INTENSITY2 = {"Variance", "Energy", "TotalEnergy"}
#: (feature_class, feature) -> a fixed unit (all other shape/size/... rows: dimensionless).
_FIXED: dict[tuple[str, str], Code] = {
    **{("shape", f): MM for f in ("Maximum3DDiameter", "Maximum2DDiameterColumn",
                                  "Maximum2DDiameterRow", "Maximum2DDiameterSlice",
                                  "MajorAxisLength", "MinorAxisLength", "LeastAxisLength")},
    ("shape", "MeshVolume"): MM3, ("shape", "VoxelVolume"): MM3, ("shape", "SurfaceArea"): MM2,
    ("shape", "SurfaceVolumeRatio"): Code("/mm", UCUM, "per millimeter"),
    **{("shape2D", f): MM for f in ("MaximumDiameter", "MajorAxisLength", "MinorAxisLength",
                                    "Perimeter")},
    ("shape2D", "MeshSurface"): MM2, ("shape2D", "PixelSurface"): MM2,
    ("shape2D", "PerimeterSurfaceRatio"): Code("/mm", UCUM, "per millimeter"),
    ("recist", "LongestDiameter"): MM, ("recist", "ShortAxisDiameter"): MM,
    ("recist", "BidimensionalProduct"): MM2,
    ("size", "VoxelVolume"): MM3, ("size", "MeshVolume"): MM3, ("size", "Maximum3DDiameter"): MM,
    ("size", "MajorAxisLength"): MM, ("size", "MinorAxisLength"): MM,
    ("size", "LeastAxisLength"): MM,
    ("suv", "MTV"): ML,
    ("minkowski", "Volume"): MM3, ("minkowski", "SurfaceArea"): MM2,
    ("minkowski", "MeanBreadth"): MM,
}
#: Rows that are not a measurement of the region: left out of the SR (README, "DICOM SR").
NOT_MEASUREMENTS: frozenset[tuple[str, str]] = frozenset({
    ("recist", "LongestDiameterSlice"),  # an index of radflow's voxel grid, not a quantity
})
#: Semantic sizes without an IBSI identifier: their standard concept and method.
_SEMANTIC: dict[tuple[str, str], tuple[Code, Code | None]] = {
    ("recist", "LongestDiameter"): (LONG_AXIS, RECIST_11),
    ("recist", "ShortAxisDiameter"): (SHORT_AXIS, RECIST_11),
    ("suv", "MTV"): (VOLUME, None),
}


@dataclass(frozen=True)
class Concept:
    """What one feature row is in the SR: its name, unit and method (``None``: none)."""

    name: Code
    unit: Code
    method: Code | None = None


def private_code(feature_class: str, feature: str) -> Code:
    """The ``99RADFLOW`` code of a feature without an IBSI identifier (see the module doc)."""
    meaning = f"{feature_class}_{feature}"
    value = hashlib.sha1(meaning.encode("utf-8")).hexdigest()[:10].upper()
    return Code(value, PRIVATE_SCHEME, meaning[:64])


def intensity_unit(modality: str, image_type: str, normalisation: str,
                   pet_units: str) -> tuple[Code, Code]:
    """The unit of intensity-valued features and of their squares on this image.

    Parameters
    ----------
    modality
        The image series' modality (``CT``, ``PT``, ...).
    image_type
        The feature row's image type (``original``, ``wavelet-LLH``, ...).
    normalisation
        The row's ``normalisation`` (``none``, ``zscore-image``, ...).
    pet_units
        ``convert.pet_units`` (``suv-bw``, ..., ``stored``).
    """
    plain = image_type == "original" and normalisation in ("", "none")
    if plain and modality == "CT":
        return HU, HU2
    if plain and modality == "PT" and pet_units in SUV_UNITS:
        return SUV_UNITS[pet_units], ARB2
    return ARB, ARB2


def feature_concept(feature_class: str, feature: str, ibsi_code: str, *,
                    intensity: tuple[Code, Code]) -> Concept:
    """The concept name, unit and method of one feature row (see the module docstring).

    Parameters
    ----------
    feature_class, feature, ibsi_code
        The row's columns (``ibsi_code`` as the extract stage wrote it: ``""``, ``YEKZ`` or
        ``ACUI/ITBB``).
    intensity
        The intensity unit and its square (:func:`intensity_unit`).
    """
    key = (feature_class, feature)
    if key in _FIXED:
        unit = _FIXED[key]
    elif feature in _INTENSITY and feature_class in ("firstorder", "density", "suv"):
        unit = intensity[0]
    elif feature in _INTENSITY2 and feature_class == "firstorder":
        unit = intensity[1]
    elif (feature_class == "minkowski" and feature.endswith("AUC")) or key == ("suv", "TLG"):
        unit = ARB  # a curve's area over intensity; SUV x ml
    else:
        unit = ONE
    code, _, aggregation = ibsi_code.partition("/")
    if code:
        entry = codes_table().get(key)
        meaning = entry.ibsi_name if entry is not None and entry.ibsi_name else code
        method = (Code(aggregation, IBSI_SCHEME, AGGREGATIONS.get(aggregation, aggregation))
                  if aggregation else None)
        return Concept(Code(code, IBSI_SCHEME, meaning[:64]), unit, method)
    if key in _SEMANTIC:
        name, method = _SEMANTIC[key]
        return Concept(name, unit, method)
    return Concept(private_code(feature_class, feature), unit, None)


def is_ibsi(code: Code) -> bool:
    """Whether ``code`` is an IBSI identifier (not a standard or private code)."""
    return code.scheme_designator == IBSI_SCHEME


__all__ = ["AGGREGATIONS", "IBSI_SCHEME", "NOT_MEASUREMENTS", "PRIVATE_SCHEME", "SCHEMES",
           "SUV_UNITS", "Concept", "feature_concept", "intensity_unit", "is_ibsi",
           "private_code"]
