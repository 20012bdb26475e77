"""The crawl's table columns, its private source records and how it reads PatientIDs.

Every key recipe and pattern lives in :mod:`radflow.keys`.

Shared by :mod:`radflow.crawl` (DICOM series and the stage's outputs) and
:mod:`radflow.crawl.sheet` (cohort-sheet rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from radflow.keys import CASE_ID_PATTERN
from radflow.keys import case_id as make_case_id

PAIR_COLUMNS = ["pair_id", "case_id", "image_key", "mask_key", "label", "roi", "sheet_row",
                "image_status", "mask_status", "status", "pairing_reason", "candidates",
                "roi_source"]
IMAGE_FILE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
SHEET_SCHEMA = "sheet.schema.yaml"


@dataclass(frozen=True)
class Deidentified:
    """How to read a tree radflow de-identified itself (``deidentify: true``).

    Its PatientIDs are ``case_id`` values and are used as such (not hashed again), so case keys,
    the cohort sheet's subjects and the clinical join are the same as on the source tree. Its
    top-level ``*.tsv`` files (``actions.tsv``, ``series.tsv``) are the stage's logs, not DICOM.
    ``uids_replaced``: the sheet's ``series:<UID>`` references name replaced UIDs (False with
    ``deid.retain_uids``: without a map they are used as they are).

    The sheet's source references are translated through the de-identification stage's
    UID/source map ``uid_map`` (``<private>/deid/uid_map.tsv``, :mod:`radflow.records.uid_map`):
    ``series:<UID>`` to the de-identified UID, and a DICOM folder (*source* files) to the
    de-identified series made from the files in it
    (:func:`radflow.crawl.sheet.deid_folder_sources`), which also needs ``source_root`` (the
    source ``dicom_root``, which such a folder must lie in).
    """

    uids_replaced: bool = True
    source_root: str | None = None
    uid_map: str | None = None


def patient_case_id(key: bytes, patient_id: str, deidentified: Deidentified | None) -> str:
    """``case_id`` of a PatientID: its keyed hash, or itself on a de-identified tree."""
    pid = patient_id.strip()
    if deidentified is not None and CASE_ID_PATTERN.fullmatch(pid):
        return pid
    return make_case_id(key, pid)


@dataclass
class CrawlSource:
    """One thing the convert stage turns into a NIfTI file, while the crawl builds it: its files
    and its ``series.tsv`` row (a :class:`~radflow.records.tables.SeriesRow` once complete).
    :func:`radflow.crawl.write_crawl` writes it as the :class:`radflow.records.Source` record
    (kept private: it holds paths)."""

    series_key: str
    case_id: str
    kind: str  # "dicom" | "image-file" | "rtstruct" | "seg"
    role: str  # "image" | "mask"
    files: list[str]
    row: dict[str, Any] = field(default_factory=dict)  # the public series.tsv row
    frames: list[list[int] | None] | None = None  # per file, for one volume of a split
    #: rtstruct/seg: the image whose grid the masks are built on, the labels to convert and the
    #: mask reading settings (in the source JSON so that only mask conversions re-run when
    #: they change).
    mask: dict[str, Any] | None = None
