"""Pseudonymous keys.

``case_id`` and every other key derived from source identifiers are keyed hashes
(HMAC-SHA256) with a secret that lives outside ``results/``: the file named by the environment
variable ``RADFLOW_KEY_FILE``, else ``key_file`` from the config, else ``.radflow/key`` (created
once with 32 random bytes, mode 0600, and reused). Without the key, a pseudonym cannot be linked
back to the patient; with it, the same source ID always gives the same pseudonym, so clinical
tables can be mapped with the same key before the join.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from radflow.errors import KeyFileError

log = logging.getLogger(__name__)

KEY_ENV = "RADFLOW_KEY_FILE"
DEFAULT_KEY_FILE = Path(".radflow") / "key"
MIN_KEY_BYTES = 16


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
            log.info("created a new pseudonymisation key in %s (keep it; back it up privately)",
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
