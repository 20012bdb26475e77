"""Atomic output files.

Every file radflow writes goes through :func:`atomic_path` or one of the helpers here: data are
written to a temporary file in the destination folder and moved into place with
:func:`os.replace`, so a job killed at any moment leaves either the complete old file, the complete
new file, or nothing at the destination; never a truncated file that a rerun would accept.
Temporary files start with ``.tmp-`` and are removed on error.

Gzip (NIfTI volumes) uses ISA-L (python-isal) at level :data:`GZIP_LEVEL`: about ten times the
speed of zlib level 6 for files a few percent larger (bench/convert.py). Streams are
deterministic: no file name and mtime 0 in the gzip header, so the same data give the same
bytes with the same isal version (other deflate encoders give other, equally valid, bytes).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from isal import igzip

if TYPE_CHECKING:  # pandas (with pyarrow, ~100 MiB) is not imported by jobs that write no table
    import pandas as pd


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; move it onto ``dest`` when the block succeeds.

    Parameters
    ----------
    dest
        Final destination. Its parent folder is created if needed.
    suffix
        Suffix of the temporary file (some writers choose the format from it, e.g. ``.nii.gz``).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(dest: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_text(dest: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``dest`` atomically."""
    write_bytes(dest, text.encode("utf-8"))


def write_bytes_if_changed(dest: str | os.PathLike[str], data: bytes) -> bool:
    """Write ``data`` atomically unless ``dest`` already holds exactly these bytes.

    Keeping the old file (and its modification time) lets Snakemake skip downstream jobs whose
    input did not really change when an upstream aggregate is rewritten.

    Returns
    -------
    bool
        True when the file was (re)written.
    """
    dest = Path(dest)
    if dest.is_file() and dest.read_bytes() == data:
        return False
    write_bytes(dest, data)
    return True


def json_bytes(obj: Any) -> bytes:
    """Serialise ``obj`` as deterministic, human-readable JSON (sorted keys, UTF-8, newline).

    Strings that UTF-8 cannot encode (file names that are not valid UTF-8 reach Python as lone
    surrogates) make the whole document ASCII with ``\\u`` escapes, which ``json.loads`` turns
    back into the same strings (and :class:`pathlib.Path` into the same file names).
    """
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=True, allow_nan=False)
                + "\n").encode("ascii")


def write_json(dest: str | os.PathLike[str], obj: Any, *, only_if_changed: bool = False) -> bool:
    """Write ``obj`` as JSON atomically (see :func:`json_bytes`); returns True when written."""
    data = json_bytes(obj)
    if only_if_changed:
        return write_bytes_if_changed(dest, data)
    write_bytes(dest, data)
    return True


def write_tsv(dest: str | os.PathLike[str], table: pd.DataFrame) -> None:
    """Write ``table`` as a tab-separated file atomically.

    Values are quoted where needed (csv minimal quoting), so tabs, newlines or quotes inside free
    text cannot break the table. Missing values are written as empty fields.
    """
    buf = io.StringIO()
    table.to_csv(buf, sep="\t", index=False, lineterminator="\n")
    write_text(dest, buf.getvalue())


def write_csv(dest: str | os.PathLike[str], table: pd.DataFrame) -> None:
    """Write ``table`` as a comma-separated file atomically (minimal quoting, ``\\n`` lines)."""
    buf = io.StringIO()
    table.to_csv(buf, index=False, lineterminator="\n")
    write_text(dest, buf.getvalue())


def write_parquet(dest: str | os.PathLike[str], table: pd.DataFrame) -> None:
    """Write ``table`` as Parquet atomically (no pandas index, deterministic bytes)."""
    with atomic_path(dest, suffix=".parquet") as tmp:
        table.to_parquet(tmp, index=False, engine="pyarrow")


#: ISA-L compression level (0-3; 2 is python-isal's default).
GZIP_LEVEL = 2


def gzip_bytes(data: bytes) -> bytes:
    """Gzip ``data`` deterministically: no file name and mtime 0 in the gzip header."""
    return igzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


@contextlib.contextmanager
def atomic_gzip(dest: str | os.PathLike[str]) -> Iterator[io.BufferedIOBase]:
    """Yield a binary stream gzipped (as :func:`gzip_bytes`) into ``dest`` atomically.

    Data are compressed as they are written, so neither the raw nor the compressed bytes are
    ever held in memory whole.
    """
    with atomic_path(dest) as tmp, open(tmp, "wb") as raw, \
            igzip.IGzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=raw,
                            mtime=0) as stream:
        yield stream
