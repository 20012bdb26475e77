"""A cohort-sheet row whose image is a DICOM folder, with ``deidentify=true``.

The folder names *source* files; the crawl of the de-identified tree translates it, through the
de-identification stage's private UID/source map (``<private>/deid/uid_map.tsv``), into the
de-identified series whose source files lie in it. The pair plan must equal the plan of the same
sheet on the source tree, up to the documented key differences (``image_key`` and ``pair_id``
are keyed hashes of the new UIDs), and equal the plan of a sheet naming those series by
``series:<UID>``. The stage runs here through the rules' own entry points (``run_crawl``,
``run_deidentify_one``, ``run_deidentify``), as the Snakefile calls them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from test_deid_dataset import PATIENTS, phi_hits, planted_terms, write_planted_series

from radflow.crawl import Deidentified, crawl, deid_folder_sources, run_crawl
from radflow.deidentify import run_deidentify, run_deidentify_one, unit_keys
from radflow.deidentify.uids import replace_uid
from radflow.demo.synthetic import Study, derived_uid, write_series
from radflow.errors import ConfigError
from radflow.io.nifti import write_nifti
from radflow.keys import load_key, series_key
from radflow.records.uid_map import read_uid_map
from radflow.settings import CrawlSettings

MUELLER, OBRIEN = PATIENTS[0], PATIENTS[3]
ECHO_UID = derived_uid(OBRIEN.patient_id, "echoes")
#: Columns that must be equal on both trees (image_key and pair_id differ by design).
SAME = ["case_id", "mask_key", "label", "roi", "sheet_row", "image_status", "mask_status",
        "status", "pairing_reason", "candidates", "roi_source"]


def _series_folder(root: Path, patient, series: int) -> Path:
    """write_planted_series' folder (named after the patient, as archives often are)."""
    return (root / patient.name.split("=")[0].replace("^", "_") / patient.patient_id /
            f"{patient.accession}_series{series}")


def _write_echoes(folder: Path) -> None:
    """Two echoes of one MR series (one UID), each in its own subfolder ``e1``, ``e2``."""
    study = Study(derived_uid(OBRIEN.patient_id, "study"), derived_uid(OBRIEN.patient_id, "for"))
    for v in range(2):
        stored = (np.arange(3 * 8 * 8, dtype=np.int16).reshape(3, 8, 8) % 40) + 100 * v
        write_series(folder / f"e{v + 1}", stored, patient=OBRIEN, study=study,
                     series_uid=ECHO_UID, modality="MR", intercept=0.0, uid_seed=f"echo{v}",
                     acquisition={"EchoNumbers": v + 1, "EchoTime": 10.0 * (v + 1)})


class Cohort:
    """Source tree, private folder, de-identified tree and key of one de-identification run."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.source = base / "archive"
        self.private = base / "private"
        self.deid = base / "results" / "deid"
        self.key_file = base / "secret" / "key"
        self.sheet_dir = base / "sheets"

    @property
    def key(self) -> bytes:
        return load_key(self.key_file)

    @property
    def deidentified(self) -> Deidentified:
        return Deidentified(source_root=str(self.source), uid_map=str(self.uid_map))

    @property
    def uid_map(self) -> Path:
        return self.private / "deid" / "uid_map.tsv"

    def sheet(self, name: str, rows: list[dict[str, object]]) -> Path:
        path = self.sheet_dir / name
        pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
        return path


def _deidentify(c: Cohort) -> None:
    """The rules deid_crawl, deidentify_one (per unit) and deidentify."""
    run_crawl(dicom_root=str(c.source), sheet="", key_file=str(c.key_file),
              settings=CrawlSettings(), series_tsv=str(c.private / "deid_crawl" / "series.tsv"),
              pair_plan_tsv=str(c.private / "deid_crawl" / "pair_plan.tsv"),
              sources_dir=str(c.private / "deid_sources"),
              rois_tsv=str(c.private / "deid_crawl" / "rois.tsv"))
    keys = unit_keys(c.private / "deid_crawl" / "series.tsv", c.private / "deid_sources")
    records = []
    for k in keys:
        record = c.deid / ".series" / f"{k}.json"
        result = run_deidentify_one(source=str(c.private / "deid_sources" / f"{k}.json"),
                                    record=str(record), dicom_root=str(c.source),
                                    key_file=str(c.key_file), settings={})
        assert result.status == "ok"
        records.append(str(record))
    run_deidentify(records=records, sources_dir=str(c.private / "deid_sources"),
                   key_file=str(c.key_file), actions_tsv=str(c.deid / "actions.tsv"),
                   series_tsv=str(c.deid / "series.tsv"),
                   pseudonyms_tsv=str(c.private / "pseudonyms.tsv"),
                   uid_map_tsv=str(c.uid_map))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Cohort:
    c = Cohort(tmp_path_factory.mktemp("deid_folder"))
    write_planted_series(c.source, MUELLER, n=3, series=1)
    write_planted_series(c.source, MUELLER, n=3, series=2)  # same patient folder
    write_planted_series(c.source, OBRIEN, n=3, series=1)
    _write_echoes(c.source / "O'Brien_Siobhan" / "echoes")
    (c.source / "Müller_Hans-Jürgen" / "empty").mkdir()
    c.sheet_dir.mkdir()
    mask = np.zeros((3, 8, 8), np.uint8)
    mask[1, 2:5, 2:5] = 1
    write_nifti(c.sheet_dir / "m.nii.gz", sitk.GetImageFromArray(mask))
    _deidentify(c)
    return c


def _folder_rows(c: Cohort) -> list[dict[str, object]]:
    m1 = _series_folder(c.source, MUELLER, 1)
    o1 = _series_folder(c.source, OBRIEN, 1)
    echoes = c.source / "O'Brien_Siobhan" / "echoes"
    rows = [
        (MUELLER, m1),                                   # 1: one series
        (MUELLER, m1.parent),                            # 2: two series: ambiguous
        (MUELLER, c.source / "Müller_Hans-Jürgen" / "empty"),  # 3: no series
        (OBRIEN, m1),                                    # 4: someone else's series
        (OBRIEN, echoes / "e2"),                         # 5: one echo of a split series
        (OBRIEN, echoes),                                # 6: both echoes: ambiguous
        (OBRIEN, Path("..") / o1.relative_to(c.base)),   # 7: relative to the sheet's folder
        (OBRIEN, c.source),                              # 8: the whole root: ambiguous
    ]
    return [{"subject": p.patient_id, "image": str(folder), "mask": "m.nii.gz", "label": 1,
             "roi": "GTV"} for p, folder in rows]


def test_folder_rows_pair_as_on_the_source_tree(cohort, caplog) -> None:
    c = cohort
    caplog.set_level(logging.DEBUG)
    sheet = c.sheet("folders.tsv", _folder_rows(c))
    key = c.key
    deid = crawl(c.deid, sheet, key, CrawlSettings(), deidentified=c.deidentified).pairs
    source = crawl(c.source, sheet, key, CrawlSettings()).pairs
    deid, source = (t.set_index("sheet_row", drop=False).sort_index() for t in (deid, source))
    assert deid["status"].to_dict() == {
        1: "ok", 2: "failed:image-ambiguous-series-folder",
        3: "failed:image-no-series-in-folder", 4: "failed:subject-mismatch", 5: "ok",
        6: "failed:image-ambiguous-series-folder", 7: "ok",
        8: "failed:image-ambiguous-series-folder"}
    pd.testing.assert_frame_equal(deid[SAME], source[SAME])
    # image_key: the keyed hash of the new UID where a series was found, of the (same) source
    # folder where none was; pair_id follows
    uids = {1: derived_uid(MUELLER.patient_id, "series", 1), 5: ECHO_UID + "_e2",
            7: derived_uid(OBRIEN.patient_id, "series", 1),
            4: derived_uid(MUELLER.patient_id, "series", 1)}
    for row in deid.itertuples():
        if row.sheet_row in uids:
            base, sep, split = uids[row.sheet_row].partition("_")
            assert source.loc[row.sheet_row, "image_key"] == series_key(key, base + sep + split)
            assert row.image_key == series_key(key, replace_uid(key, base) + sep + split)
        else:
            assert row.image_key == source.loc[row.sheet_row, "image_key"]
            assert row.pair_id == source.loc[row.sheet_row, "pair_id"]
    log_text = "\n".join(r.getMessage() for r in caplog.records).encode("utf-8")
    for p in (MUELLER, OBRIEN):
        assert phi_hits(log_text, planted_terms(p)) == []


def test_folder_rows_equal_series_uid_rows(cohort) -> None:
    """A folder holding one series gives the pair that ``series:<UID>`` gives."""
    c = cohort
    rows = _folder_rows(c)
    by_uid = [dict(rows[0], image=f"series:{derived_uid(MUELLER.patient_id, 'series', 1)}"),
              dict(rows[4], image=f"series:{ECHO_UID}_e2"),
              dict(rows[6], image=f"series:{derived_uid(OBRIEN.patient_id, 'series', 1)}")]
    folders = c.sheet("three_folders.tsv", [rows[0], rows[4], rows[6]])
    uids = c.sheet("three_uids.tsv", by_uid)
    a, b = (crawl(c.deid, s, c.key, CrawlSettings(), deidentified=c.deidentified)
            for s in (folders, uids))
    assert (a.pairs["status"] == "ok").all() and len(a.pairs) == 3
    pd.testing.assert_frame_equal(a.pairs, b.pairs)
    pd.testing.assert_frame_equal(a.series, b.series)
    # and the pair's image is a de-identified series (its files lie in the de-identified tree)
    for image_key in a.pairs["image_key"]:
        files = a.sources[image_key].files
        assert all(Path(f).resolve().is_relative_to(c.deid.resolve()) for f in files)


def test_source_records_of_a_deidentified_series(cohort) -> None:
    c = cohort
    uid_map = read_uid_map(c.uid_map)
    deid_files = sorted(str(p) for p in c.deid.rglob("*.dcm"))
    mapped = {f: deid_folder_sources([f], uid_map) for f in deid_files}
    assert all(m for m in mapped.values())
    sources = {p for m in mapped.values() for p in m}
    assert sources == {p.resolve() for p in c.source.rglob("*.dcm")}
    assert deid_folder_sources([str(c.deid / "c0" / "nokey" / "00000.dcm")], uid_map) is None
    # the map's UIDs are those of the de-identified files (the keyed replacements)
    for source_uid, new_uid in uid_map.series_uid.items():
        assert new_uid == replace_uid(c.key, source_uid)
    assert ECHO_UID in uid_map.series_uid


def test_folder_outside_dicom_root_is_refused_without_naming_it(cohort) -> None:
    c = cohort
    write_planted_series(c.base / "elsewhere", MUELLER, n=3, series=3)
    outside = _series_folder(c.base / "elsewhere", MUELLER, 3)
    rows = [*_folder_rows(c)[:1], dict(_folder_rows(c)[0], image=str(outside))]
    sheet = c.sheet("outside.tsv", rows)
    with pytest.raises(ConfigError) as info:
        crawl(c.deid, sheet, c.key, CrawlSettings(), deidentified=c.deidentified)
    message = str(info.value)
    assert "outside.tsv" in message and "row 2" in message and "inside dicom_root" in message
    assert phi_hits(message.encode("utf-8"), planted_terms(MUELLER)) == []
    assert "elsewhere" not in message and str(c.base) not in message
    # the same sheet without de-identification reads the folder
    assert set(crawl(c.source, sheet, c.key, CrawlSettings()).pairs["status"]) == {"ok"}


def test_folder_rows_need_the_source_records(cohort) -> None:
    c = cohort
    sheet = c.sheet("one.tsv", _folder_rows(c)[:1])
    with pytest.raises(ConfigError, match=r"one\.tsv, row 1: .*source records") as info:
        crawl(c.deid, sheet, c.key, CrawlSettings(), deidentified=Deidentified())
    assert phi_hits(str(info.value).encode("utf-8"), planted_terms(MUELLER)) == []
    # a sheet without folder rows does not need them
    series_sheet = c.sheet("uid.tsv", [dict(_folder_rows(c)[0], image="series:1.2.3")])
    pairs = crawl(c.deid, series_sheet, c.key, CrawlSettings(), deidentified=Deidentified()).pairs
    assert list(pairs["status"]) == ["failed:image-series-not-found"]
