"""Specific Character Set handling: read non-conformant values the way their writers meant them.

DICOM defines terms such as ``ISO 2022 IR 149`` (Korean, KS X 1001); some systems write
``ISO_IR 149`` instead, which pydicom does not know and would decode as Latin-1 (mojibake).
:func:`correct_charset` replaces such values by the conformant term they stand for, before any
text is decoded. Problems are QC warnings (never statuses): :func:`charset_warnings` turns the
warnings pydicom emits while decoding into the closed codes of
:data:`radflow.dicom.reasons.QC_WARNINGS`.

Decoded free text is used in cleaned form in tables only; it never becomes part of a path.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

from pydicom.charset import convert_encodings, python_encoding
from pydicom.dataset import Dataset

#: Non-conformant SpecificCharacterSet values seen in the wild -> the conformant defined term.
CHARSET_ALIASES: dict[str, str] = {
    "ISO_IR 149": "ISO 2022 IR 149",
    "ISO_IR 87": "ISO 2022 IR 87",
    "ISO_IR 159": "ISO 2022 IR 159",
    "ISO_IR 58": "ISO 2022 IR 58",
    "ISO IR 192": "ISO_IR 192",
    "ISO-IR 192": "ISO_IR 192",
    "ISO_IR_192": "ISO_IR 192",
    "UTF-8": "ISO_IR 192",
    "UTF8": "ISO_IR 192",
    "ISO IR 100": "ISO_IR 100",
    "ISO-IR 100": "ISO_IR 100",
    "ISO_IR_100": "ISO_IR 100",
}
_CHARSET_TAG = 0x00080005


def _raw_terms(ds: Dataset) -> list[str] | None:
    try:
        elem = ds.get_item(_CHARSET_TAG)
    except Exception:  # malformed element
        return None
    if elem is None or elem.value is None:
        return None
    value = elem.value
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    terms = value.split("\\") if isinstance(value, str) else [str(v) for v in value]
    return [t.strip(" \0") for t in terms]


def correct_charset(ds: Dataset) -> tuple[str, ...]:
    """Replace non-conformant SpecificCharacterSet terms of ``ds`` (top level) in place.

    Returns
    -------
    tuple of str
        ``("charset-corrected",)`` when a term was replaced, ``("charset-unknown",)`` when a term
        is neither a defined term nor a known alias (pydicom then reads text as ASCII/Latin-1),
        else ``()``.
    """
    try:
        return _correct(ds)
    except Exception:  # a value so malformed that even correcting it fails: decode as default
        return ("charset-unknown",)


def _correct(ds: Dataset) -> tuple[str, ...]:
    terms = _raw_terms(ds)
    if not terms:
        return ()
    fixed = [CHARSET_ALIASES.get(t.upper(), CHARSET_ALIASES.get(t, t)) for t in terms]
    codes: list[str] = []
    if fixed != terms:
        ds.SpecificCharacterSet = fixed if len(fixed) > 1 else fixed[0]
        # pydicom decodes raw text with the encoding noted when the file was read
        implicit, little = ds.original_encoding
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.set_original_encoding(implicit, little, convert_encodings(fixed))
        codes.append("charset-corrected")
    if any(t not in python_encoding for t in fixed):
        codes.append("charset-unknown")
    return tuple(codes)


def charset_warnings(caught: Iterable[warnings.WarningMessage]) -> tuple[str, ...]:
    """QC codes for the character-set warnings pydicom emitted while decoding text."""
    codes = set()
    for w in caught:
        text = str(w.message)
        if "Failed to decode" in text or "using replacement characters" in text:
            codes.add("charset-decode-error")
        elif "Unknown encoding" in text:
            codes.add("charset-unknown")
        elif "Incorrect value for Specific Character Set" in text:
            codes.add("charset-corrected")
    return tuple(sorted(codes))


#: Text attributes decoded once while indexing, so that decoding problems become QC warnings.
CHECKED_TEXT = ("PatientName", "PatientID", "OtherPatientNames", "SeriesDescription",
                "StudyDescription", "ProtocolName", "InstitutionName", "Manufacturer",
                "BodyPartExamined")


def decode_text_values(ds: Dataset) -> None:
    """Decode the :data:`CHECKED_TEXT` values of ``ds`` (to surface decoding warnings)."""
    for keyword in CHECKED_TEXT:
        try:
            ds.get(keyword)
        except Exception:  # malformed value: the getters treat it as absent
            continue


__all__ = ["CHARSET_ALIASES", "CHECKED_TEXT", "charset_warnings", "correct_charset",
           "decode_text_values"]
