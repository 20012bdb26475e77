"""Benchmark: what the re-exported-copy check (radflow.crawl.copies) adds to the crawl.

Not a test. Run from the repository root::

    .venv/bin/python bench/crawl_copies.py                   # demo cohort in a temporary folder
    .venv/bin/python bench/crawl_copies.py --keep /tmp/bench-copies

Two cohorts: the demo cohort (``radflow demo``), and the demo cohort plus a re-export of every
patient's analysed series (SE002: every file read and written again with pydicom under new
Study, Series and SOP Instance UIDs, as a PACS re-export does). For each, the check alone
(:func:`radflow.crawl.copies.copy_groups` on the indexed records: what it read) and the whole
:func:`radflow.crawl.crawl` with the check and with the check replaced by a no-op, alternated
``--repeats`` times (warm file cache); medians are printed.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

import radflow.crawl as crawl_module
from radflow.crawl.copies import CopyCheckCost, copy_groups
from radflow.demo import make_demo_cohort
from radflow.dicom.index import find_candidate_files, index_files
from radflow.settings import CrawlSettings

KEY = b"k" * 32


def reexport(root: Path) -> int:
    """Add a copy of every patient's SE002 series under new UIDs; return the files written."""
    written = 0
    for series in sorted(root.glob("*/*/SE002_*")):
        study_uid, series_uid = generate_uid(), generate_uid()
        out = series.parent.parent / "REEXPORT" / series.name
        out.mkdir(parents=True)
        for path in sorted(series.iterdir()):
            ds = pydicom.dcmread(path)
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.save_as(out / f"{ds.SOPInstanceUID}.dcm")  # named by the new SOP UID
            written += 1
    return written


def measure(root: Path, label: str, repeats: int) -> None:
    files = find_candidate_files(root)
    records = index_files(files, CrawlSettings())
    cost = CopyCheckCost()
    start = time.perf_counter()
    groups = copy_groups(records, cost)
    alone = time.perf_counter() - start
    original = crawl_module.flag_copies
    times: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(repeats):
        for mode in ("with", "without"):
            if mode == "without":
                crawl_module.flag_copies = lambda records, key, policy: list(records)
            start = time.perf_counter()
            crawl_module.crawl(root, None, KEY, CrawlSettings())
            times[mode].append(time.perf_counter() - start)
            crawl_module.flag_copies = original
    with_check, without = (statistics.median(times[m]) for m in ("with", "without"))
    print(f"{label}: {len(files)} files, {len(records)} records; check alone "
          f"{alone * 1000:.0f} ms: {cost.candidates} candidate series, {cost.headers_read} "
          f"headers and {cost.pixels_read} files' pixel data read, {len(groups)} copy groups; "
          f"crawl (median of {repeats}) {without:.2f} s without the check, {with_check:.2f} s "
          "with it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="work folder to keep (default: temporary)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-copies-"))
    try:
        make_demo_cohort(work / "demo")
        measure(work / "demo" / "dicom", "demo", args.repeats)
        copies = work / "copies"
        shutil.rmtree(copies, ignore_errors=True)
        shutil.copytree(work / "demo" / "dicom", copies)
        print(f"re-exported {reexport(copies)} files")
        measure(copies, "demo + re-export of every SE002", args.repeats)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
