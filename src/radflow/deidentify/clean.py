"""Clean Descriptors (PS3.15 E.3.5): which descriptors radflow keeps, and how it cleans them.

The standard's "clean" means: replace with values of similar meaning known not to contain
identifying information. Free text cannot be proven clean, so radflow keeps only the short
descriptors radiomics work depends on (:data:`CLEANED_DESCRIPTORS`: study/series descriptions
and protocol names select series; ROI and structure set names label masks) and cleans them by
removal: every identifying value the same object holds (names and their parts, IDs, accession
number, institution, station, addresses, ... — the values the profile removes or replaces) is
cut out, case-insensitively, together with anything that looks like a date, a long number (IDs,
phone numbers) or an e-mail address. Every other attribute whose Clean Descriptors action is
``C`` (comments, histories, diagnoses, code sequences) gets its Basic Profile action instead,
which is stricter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Descriptors kept after cleaning under the Clean Descriptors Option.
CLEANED_DESCRIPTORS = frozenset({
    "StudyDescription", "SeriesDescription", "ProtocolName", "ContrastBolusAgent",
    "AcquisitionDeviceProcessingDescription", "PerformedProcedureStepDescription",
    "RequestedProcedureDescription", "DerivationDescription", "StructureSetLabel",
    "StructureSetName", "ROIName", "ROIObservationLabel",
})
#: Text value representations whose removed values become terms to cut from descriptors.
TEXT_VRS = frozenset({"AE", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
#: Attributes whose removed values are also cut word by word (addresses, institutions...).
WORDWISE = frozenset({
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName",
    "PatientAddress", "ReferringPhysicianAddress", "PersonAddress", "RegionOfResidence",
    "CountryOfResidence", "MilitaryRank", "BranchOfService", "Occupation",
})
MIN_TERM = 2
MIN_WORD = 4

_DATE_RE = re.compile(r"(?<!\d)(?:1[89]|20)\d{2}[-./]?(?:0[1-9]|1[0-2])[-./]?(?:[0-2]\d|3[01])"
                      r"(?!\d)|(?<!\d)\d{1,2}[-./]\d{1,2}[-./]\d{2,4}(?!\d)")
_LONG_NUMBER_RE = re.compile(r"\d{6,}")
_EMAIL_RE = re.compile(r"\S+@\S+")
_EDGE = " -_^,;:./\\|"


def name_terms(value: str) -> list[str]:
    """Terms of a person name: every component group, component and given+family join."""
    terms = []
    for group in value.split("="):
        parts = [p.strip() for p in group.split("^") if p.strip()]
        terms.append(" ".join(parts))
        if len(parts) >= 2:
            terms += [f"{parts[1]} {parts[0]}", parts[0] + parts[1], parts[1] + parts[0]]
        for part in parts:
            terms.append(part)
            terms += part.split()
    return terms


def value_terms(keyword: str, vr: str, value: str) -> list[str]:
    """Terms to cut from descriptors for one removed text value."""
    value = value.strip(" \0")
    if not value:
        return []
    if vr == "PN":
        terms = name_terms(value)
    else:
        terms = [value] + [v for v in value.split("\\") if v]
        if keyword in WORDWISE:
            terms += [w for w in re.split(r"[\s,;/^]+", value) if len(w) >= MIN_WORD]
    return [t for t in terms if len(t) >= MIN_TERM]


def _pattern(term: str) -> re.Pattern[str]:
    escaped = re.escape(term)
    if term.isascii():  # whole words only: "Li" must not cut "Liver"
        escaped = rf"(?<![A-Za-z0-9]){escaped}(?![A-Za-z0-9])"
    return re.compile(escaped, re.IGNORECASE)


def clean_descriptor(text: str, terms: Iterable[str], max_length: int = 64) -> str:
    """``text`` with every term, date, long number and e-mail address cut out.

    Parameters
    ----------
    text
        The descriptor's value.
    terms
        The identifying values of the same object (:func:`value_terms`).
    max_length
        The value representation's maximum length.
    """
    out = text
    for term in sorted(set(terms), key=len, reverse=True):
        out = _pattern(term).sub(" ", out)
    for regex in (_EMAIL_RE, _DATE_RE, _LONG_NUMBER_RE):
        out = regex.sub(" ", out)
    out = re.sub(r"\s+", " ", out).strip(_EDGE)
    return out[:max_length].strip(_EDGE)


__all__ = ["CLEANED_DESCRIPTORS", "TEXT_VRS", "clean_descriptor", "name_terms", "value_terms"]
