"""The crawl's table columns, its private source records and the keys it derives.

Shared by :mod:`radflow.crawl` (DICOM series and the stage's outputs) and
:mod:`radflow.crawl_sheet` (cohort-sheet rows).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from radflow.keys import case_id as make_case_id

SERIES_COLUMNS = [
    "case_id", "series_key", "study_key", "source", "role", "modality", "n_instances", "status",
    "rows", "cols", "slices", "spacing_x", "spacing_y", "spacing_z", "orientation",
    "series_number", "series_description", "manufacturer", "split", "resampled", "qc",
]
INT_COLUMNS = ["n_instances", "rows", "cols", "slices", "series_number"]
PAIR_COLUMNS = ["pair_id", "case_id", "image_key", "mask_key", "label", "roi", "sheet_row",
                "image_status", "mask_status", "status", "pairing_reason", "candidates",
                "roi_source"]
IMAGE_FILE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
SHEET_SCHEMA = "sheet.schema.yaml"
#: A PatientID that already is a case key (radflow's de-identified tree writes ``case_id`` there).
CASE_ID_PATTERN = re.compile(r"c[0-9a-f]{12}")
SERIES_KEY_PATTERN = re.compile(r"s[0-9a-f]{16}")


@dataclass(frozen=True)
class Deidentified:
    """How to read a tree radflow de-identified itself (``deidentify: true``).

    Its PatientIDs are ``case_id`` values and are used as such (not hashed again), so case keys,
    the cohort sheet's subjects and the clinical join are the same as on the source tree. Its
    top-level ``*.tsv`` files (``actions.tsv``, ``series.tsv``) are the stage's logs, not DICOM.
    ``uids_replaced``: the sheet's ``series:<UID>`` references are mapped to the replaced UIDs
    (False with ``deid.retain_uids``).

    A sheet row whose image is a DICOM folder names *source* files; it is translated through the
    de-identification's private source records (:func:`deid_folder_sources`), which needs
    ``source_root`` (the source ``dicom_root``, which such a folder must lie in) and
    ``sources_dir`` (``<private>/deid_sources``, the source file list of every de-identified
    series: the series' folder on the de-identified tree is named after its key).
    """

    uids_replaced: bool = True
    source_root: str | None = None
    sources_dir: str | None = None


def patient_case_id(key: bytes, patient_id: str, deidentified: Deidentified | None) -> str:
    """``case_id`` of a PatientID: its keyed hash, or itself on a de-identified tree."""
    pid = patient_id.strip()
    if deidentified is not None and CASE_ID_PATTERN.fullmatch(pid):
        return pid
    return make_case_id(key, pid)


@dataclass
class Source:
    """One thing the convert stage turns into a NIfTI file (kept private: it holds paths)."""

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


def pair_id_for(image_key: str, mask_key: str, label: int, roi: str) -> str:
    """Stable pair key (``p`` + 16 hex) from already pseudonymous parts."""
    text = f"{image_key}\0{mask_key}\0{label}\0{roi}"
    return "p" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
