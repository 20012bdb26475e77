"""Logging set-up for the workflow's scripts (library modules only call ``getLogger``)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def script_logging(log_file: str | os.PathLike[str], level: int = logging.INFO) -> Iterator[None]:
    """Send all log records to ``log_file`` (Snakemake's ``log[0]``) for the duration of a job.

    An exception escaping the block is logged with its traceback, then re-raised so that the
    job fails.
    """
    path = Path(log_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    try:
        yield
    except Exception:
        logging.getLogger(__name__).exception("job failed")
        raise
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
