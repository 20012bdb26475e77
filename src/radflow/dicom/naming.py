"""How messages name files and frames: by position in a series' sorted file list, never by name.

A real archive's file and folder names can hold a patient's name (``DOE^JANE/IM0002.dcm``), and
messages reach logs and tables under ``results/``. So every message radflow's DICOM code builds
(exceptions, log lines, the ``message`` of a crawl record, the ``error`` of a convert sidecar)
names a file only as ``file 3 of 120`` - its 1-based position in the sorted file list of its
series - and a frame of a multi-frame object as ``file 1 of 1, frame 7``. Messages quote no file
name, folder name, path or UID.

* :func:`file_labels` gives those labels for a file list;
* :func:`frame_label` names one frame;
* :func:`named` prefixes the message of a :class:`~radflow.errors.RadflowError` raised inside it
  with such a label (file readers raise messages without any file reference);
* :func:`exception_detail` describes a third-party exception without its message when that
  message could quote a path;
* :func:`uid_name` names a SOP class or transfer syntax by its registered name instead of its UID.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydicom.uid import UID

from radflow.errors import RadflowError


def file_labels(paths: Iterable[str | os.PathLike[str]]) -> dict[Path, str]:
    """``{path: "file k of n"}`` with ``k`` the position in ``paths`` sorted as strings.

    Parameters
    ----------
    paths
        The files of one series (any order; duplicates are counted once).
    """
    ordered = sorted({Path(p) for p in paths}, key=str)
    n = len(ordered)
    return {p: f"file {k + 1} of {n}" for k, p in enumerate(ordered)}


def frame_label(file_label: str, frame: int | None) -> str:
    """``file_label``, with the 1-based frame number for a frame of a multi-frame object."""
    return file_label if frame is None else f"{file_label}, frame {frame + 1}"


@contextmanager
def named(label: str) -> Iterator[None]:
    """Prefix the message of a :class:`~radflow.errors.RadflowError` raised inside with ``label``.

    The exception keeps its class, reason and attributes; only its message changes.
    """
    try:
        yield
    except RadflowError as exc:
        exc.args = (f"{label}: {exc.args[0] if exc.args else ''}", *exc.args[1:])
        raise


def exception_detail(exc: BaseException, path: str | os.PathLike[str] | None = None,
                     max_len: int = 200) -> str:
    """``"<type>: <message>"`` of a third-party exception, or only its type when the message
    could name a file: it holds a path separator or a part of ``path``."""
    text = " ".join(str(exc).split())[:max_len]
    parts = [p for p in Path(path).parts if len(p) > 2] if path is not None else []
    if not text or "/" in text or "\\" in text or any(p in text for p in parts):
        return type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def uid_name(uid: str, what: str = "UID") -> str:
    """The registered name of a standard UID (SOP class, transfer syntax), quoted; messages
    quote no UID, so a private or unknown one is only called that."""
    name = UID(uid).name if uid else ""
    if not name or name == uid:
        return f"a private or unknown {what}"
    return f"'{name}'"


__all__ = ["exception_detail", "file_labels", "frame_label", "named", "uid_name"]
