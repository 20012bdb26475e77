"""Keyed, deterministic UID replacement (PS3.15 action ``U``).

A source UID is replaced by ``2.25.<decimal integer>``, the integer being the first 128 bits of
HMAC-SHA256(key, ``"uid"`` + source UID) (the same key as the pseudonyms, :mod:`radflow.keys`).
``2.25`` is the root for UIDs derived from a 128-bit number (ISO/IEC 9834-8, PS3.5 B.2); the
result has at most 44 characters (limit 64), only digits and dots, no leading zeros.

The mapping depends on the key and the UID only, so the same source UID becomes the same new UID
in every file, series and patient: a SEG's ReferencedSOPInstanceUID, an RTSTRUCT's
ContourImageSequence, a FrameOfReferenceUID shared by a study's series all keep pointing at the
de-identified copies of the same objects. Without the key the mapping cannot be inverted or
recomputed.
"""

from __future__ import annotations

import hashlib
import hmac
import re

UID_ROOT = "2.25."
_UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def replace_uid(key: bytes, uid: str) -> str:
    """The de-identified UID for ``uid`` (trailing padding ignored; empty stays empty)."""
    uid = uid.strip(" \0")
    if not uid:
        return ""
    digest = hmac.new(key, b"uid\x00" + uid.encode("ascii", "surrogateescape"),
                      hashlib.sha256).digest()
    return UID_ROOT + str(int.from_bytes(digest[:16], "big"))


def is_valid_uid(uid: str) -> bool:
    """Whether ``uid`` has DICOM UID syntax (PS3.5 9.1) and at most 64 characters."""
    return len(uid) <= 64 and bool(_UID_RE.match(uid))


__all__ = ["UID_ROOT", "is_valid_uid", "replace_uid"]
