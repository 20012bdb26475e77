"""Cleaning of free text taken from inputs (series descriptions, ROI names).

Free text from DICOM headers or sheets may hold anything: control characters, NUL, path
separators, 10 kB strings. Cleaned text is safe inside TSV/CSV/JSON cells. It is never used to
build a path: paths are built from pseudonymous keys only.
"""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean_text(value: object, max_length: int = 64) -> str:
    """Return ``value`` as a single-line, printable string of at most ``max_length`` characters.

    Control characters (including NUL, tab and newlines) become spaces, runs of white space are
    collapsed, surrogates and unassigned code points are dropped, and the result is NFC
    normalised and stripped.
    """
    if value is None:
        return ""
    text = str(value)
    text = "".join(ch for ch in text
                   if not 0xD800 <= ord(ch) <= 0xDFFF and unicodedata.category(ch) != "Cn")
    text = _CONTROL.sub(" ", unicodedata.normalize("NFC", text))
    text = " ".join(text.split())
    return text[:max_length].strip()
