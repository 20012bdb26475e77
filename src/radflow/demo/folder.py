"""The demo cohort's output folder: refuse foreign folders, sync a staged cohort onto it.

Regenerating the demo is idempotent: unchanged files keep their bytes and modification times
(so a Snakemake run on the demo does not redo work), files that the new cohort no longer has are
removed, but only inside the folders the demo owns, and only in a folder marked as a demo.
"""

from __future__ import annotations

import os
from pathlib import Path

from radflow.errors import ConfigError
from radflow.io.atomic import write_bytes_if_changed

#: File that marks a folder as a radflow demo cohort (regeneration may then replace its files).
MARKER = ".radflow-demo"
#: Subfolders whose files are fully owned by the demo (stale files there are removed).
OWNED_DIRS = ("dicom", "masks")


def check_out_dir(out: Path) -> None:
    """Refuse an output that is a file, or a non-empty folder without the demo marker."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"demo output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ConfigError(f"demo output {out} is not empty and is not a radflow demo folder "
                          f"(no {MARKER} file); choose an empty or new folder")


def sync_folder(staging: Path, out: Path) -> tuple[int, int]:
    """Copy ``staging`` onto ``out`` (only changed files); drop stale files in owned folders."""
    new: set[Path] = set()
    for dirpath, _dirs, files in os.walk(staging):
        new.update(Path(dirpath, f).relative_to(staging) for f in files)
    written = sum(write_bytes_if_changed(out / rel, (staging / rel).read_bytes())
                  for rel in sorted(new))
    removed = 0
    for sub in OWNED_DIRS:
        for dirpath, dirs, files in os.walk(out / sub, topdown=False):
            here = Path(dirpath)
            for name in files + [d for d in dirs if (here / d).is_symlink()]:
                if (here / name).relative_to(out) not in new:
                    (here / name).unlink()
                    removed += 1
            if here != out / sub and not any(here.iterdir()):
                here.rmdir()
    return written, removed


__all__ = ["MARKER", "OWNED_DIRS", "check_out_dir", "sync_folder"]
