"""Pseudonymous keys.

``case_id`` and every other key derived from source identifiers are keyed hashes
(HMAC-SHA256) with a secret that lives outside ``results/``: the file named by the environment
variable ``RADFLOW_KEY_FILE``, else ``key_file`` from the config, else ``.radflow/key`` (created
once with 32 random bytes, mode 0600, and reused). Without the key, a pseudonym cannot be linked
back to the patient; with it, the same source ID always gives the same pseudonym, so clinical
tables can be mapped with the same key before the join.

Every key radflow derives is made here, and nowhere else: :func:`case_id`, :func:`series_key`
(of a :func:`source_ref`), :func:`study_key`, :func:`pair_id` and :func:`folder_key`; their
patterns are :data:`KEY_PATTERNS`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from pathlib import Path
from typing import Literal

from radflow.errors import KeyFileError, RadflowError

logger = logging.getLogger(__name__)

KEY_ENV = "RADFLOW_KEY_FILE"
DEFAULT_KEY_FILE = Path(".radflow") / "key"
MIN_KEY_BYTES = 16

#: Regular expressions of the pseudonymous keys (also the Snakefile's wildcard constraints).
KEY_PATTERNS = {
    "case_id": r"c[0-9a-f]{12}",
    "series_key": r"s[0-9a-f]{16}",
    "pair_id": r"p[0-9a-f]{16}",
    "unit": r"[sp][0-9a-f]{16}",
}
#: A PatientID that already is a case key (radflow's de-identified tree writes ``case_id`` there).
CASE_ID_PATTERN = re.compile(KEY_PATTERNS["case_id"])
SERIES_KEY_PATTERN = re.compile(KEY_PATTERNS["series_key"])
#: What a volume's source reference names (see :func:`source_ref`).
SourceKind = Literal["series", "unreadable", "mask", "mask-file", "file", "folder"]


def resolve_key_file(configured: str | None) -> Path:
    """Return the key file to use: ``$RADFLOW_KEY_FILE``, else ``configured``, else the default."""
    env = os.environ.get(KEY_ENV)
    if env:
        return Path(env)
    if configured:
        return Path(configured)
    return DEFAULT_KEY_FILE


def load_key(path: str | os.PathLike[str], *, create: bool = False) -> bytes:
    """Read the secret key from ``path``; with ``create=True`` make it first if it does not exist.

    Raises
    ------
    KeyFileError
        When the file is missing (and ``create`` is False) or holds fewer than 16 bytes.
    """
    path = Path(path)
    if not path.exists():
        if not create:
            raise KeyFileError(f"key file {path} does not exist; set {KEY_ENV} or key_file",
                               reason="missing-key")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # created concurrently by another job: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
            logger.info("created a new pseudonymisation key in %s (keep it; back it up privately)",
                     path)
    key = path.read_bytes().strip()
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(f"key file {path} holds {len(key)} bytes, expected at least "
                           f"{MIN_KEY_BYTES}", reason="short-key")
    return key


def keyed_hash(key: bytes, namespace: str, value: str, length: int = 16) -> str:
    """HMAC-SHA256 of ``value`` in ``namespace``, as ``length`` lowercase hex characters.

    The namespace keeps e.g. a patient ID and a UID with the same text from colliding.
    """
    msg = namespace.encode("utf-8") + b"\x00" + value.encode("utf-8", "surrogatepass")
    return hmac.new(key, msg, hashlib.sha256).hexdigest()[:length]


def case_id(key: bytes, source_patient_id: str) -> str:
    """Pseudonymous case key (``c`` + 12 hex) for a source patient identifier.

    Leading/trailing white space of the source ID is ignored (DICOM pads values to even length).
    """
    return "c" + keyed_hash(key, "case", source_patient_id.strip(), 12)


def series_key(key: bytes, source_ref: str) -> str:
    """Pseudonymous series/file key (``s`` + 16 hex) for a SeriesInstanceUID or a file path."""
    return "s" + keyed_hash(key, "series", source_ref, 16)


def source_ref(kind: SourceKind, value: str, *, split: str = "", subject: str = "") -> str:
    """The source reference of one volume, the text :func:`series_key` hashes.

    Parameters
    ----------
    kind
        ``series`` (a SeriesInstanceUID, ``value``, plus the ``split`` suffix of one volume of
        a split series, e.g. ``_e2``), ``unreadable`` (a DICOM file no series could be read
        from), ``mask`` (an RTSTRUCT/SEG SOPInstanceUID), ``mask-file`` (a DICOM mask object
        without one), ``file`` (an image or mask file of the cohort sheet of ``subject``) or
        ``folder`` (a cohort-sheet folder in which no single series was found). Paths are
        passed resolved.
    value
        The UID or path.

    Raises
    ------
    RadflowError
        For an unknown ``kind`` (a programming error: no key may be built from it).
    """
    if kind == "series":
        return value + split
    if kind == "file":
        return f"file:{subject}:{value}"
    if kind in ("unreadable", "mask", "mask-file", "folder"):
        return f"{kind}:{value}"
    raise RadflowError(f"unknown source reference kind {kind!r}", reason="unknown-ref-kind")


def volume_key(key: bytes, kind: SourceKind, value: str, *, split: str = "",
               subject: str = "") -> str:
    """``series_key`` of a volume: :func:`series_key` of its :func:`source_ref`."""
    return series_key(key, source_ref(kind, value, split=split, subject=subject))


def study_key(key: bytes, study_uid: str) -> str:
    """Pseudonymous study key (``t`` + 16 hex) of a StudyInstanceUID; empty for none."""
    return ("t" + keyed_hash(key, "study", study_uid, 16)) if study_uid else ""


def pair_id(image_key: str, mask_key: str, label: int, roi: str) -> str:
    """Stable pair key (``p`` + 16 hex) from already pseudonymous parts (no secret needed)."""
    text = f"{image_key}\0{mask_key}\0{label}\0{roi}"
    return "p" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def folder_key(key: bytes, relative_path: str) -> str:
    """Pseudonymous folder name (``f`` + 8 hex) of a source folder, given by its ``/``-joined
    path relative to the DICOM root (the de-identified tree's folder levels)."""
    return "f" + keyed_hash(key, "folder", relative_path, 8)
