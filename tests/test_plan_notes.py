"""convert.scope says what it leaves out: an image-only tree under the default ``paired`` scope
converts nothing, and the planning says so instead of doing nothing silently."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radflow import plan as rw
from radflow.demo.synthetic import Patient, Study, derived_uid, write_series
from radflow.plan.jobs import scope_notes
from radflow.summary import summary_lines

REPO = Path(__file__).resolve().parents[1]
SERIES_COLUMNS = ["case_id", "series_key", "source", "role", "status"]
PAIR_COLUMNS = ["pair_id", "case_id", "image_key", "mask_key", "status", "image_status",
                "mask_status"]


@pytest.mark.parametrize(("scope", "counts", "expected"), [
    ("paired", (3, 0, 0), "no pairs were found: 0 of 3 image series will be converted; "
                          "set convert.scope: all"),
    ("paired", (3, 1, 1), "2 of 3 image series are in no pair and will not be converted"),
    ("paired", (3, 3, 4), ""),
    ("paired", (0, 0, 0), ""),
    ("all", (3, 3, 0), ""),
])
def test_scope_notes(scope: str, counts: tuple[int, int, int], expected: str) -> None:
    n_images, n_converted, n_pairs = counts
    notes = scope_notes(scope, n_images=n_images, n_converted=n_converted, n_pairs=n_pairs)
    if not expected:
        assert notes == ()
    else:
        assert len(notes) == 1 and notes[0].startswith("convert.scope is 'paired'")
        assert expected in notes[0] and notes[0].endswith("to convert every image")


def _tables(tmp_path: Path, n_images: int) -> tuple[str, str]:
    series = pd.DataFrame([{"case_id": f"c{i}", "series_key": f"s{i}", "source": "dicom",
                            "role": "image", "status": "ok"} for i in range(n_images)],
                          columns=SERIES_COLUMNS)
    series.to_csv(tmp_path / "series.tsv", sep="\t", index=False)
    pd.DataFrame(columns=PAIR_COLUMNS).to_csv(tmp_path / "pair_plan.tsv", sep="\t", index=False)
    return str(tmp_path / "series.tsv"), str(tmp_path / "pair_plan.tsv")


def test_an_image_only_plan_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    series, pairs = _tables(tmp_path, 2)
    with caplog.at_level(logging.INFO, logger="radflow.plan.jobs"):
        plan = rw.read_plan(series, pairs, "paired")
        again = rw.read_plan(series, pairs, "paired")
    assert again is plan and plan.convert.empty
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [f"radflow: {n}" for n in plan.notes]
    assert len(warnings) == 1 and "0 of 2 image series will be converted" in plan.notes[0]
    everything = rw.read_plan(series, pairs, "all")
    assert everything.notes == () and sorted(everything.convert["series_key"]) == ["s0", "s1"]


def test_the_run_summary_repeats_the_note(tmp_path: Path) -> None:
    (tmp_path / "crawl").mkdir()
    _tables(tmp_path / "crawl", 3)
    paired = summary_lines(tmp_path, convert_scope="paired")
    assert [line for line in paired if line.startswith("NOTE:")] == [
        "NOTE: convert.scope is 'paired' and no pairs were found: 0 of 3 image series will be "
        "converted; set convert.scope: all to convert every image"]
    assert not [line for line in summary_lines(tmp_path, convert_scope="all")
                if line.startswith("NOTE:")]
    assert not [line for line in summary_lines(tmp_path) if line.startswith("NOTE:")]


def _image_only_tree(root: Path) -> None:
    stored = (np.arange(4 * 8 * 8, dtype=np.int16).reshape(4, 8, 8) % 50) + 1000
    for i in range(2):
        patient = Patient(f"PID-SCOPE-{i}", f"Scope^Patient{i}")
        study = Study(derived_uid("scope-study", i), derived_uid("scope-for", i))
        write_series(root / f"p{i}", stored, patient=patient, study=study,
                     series_uid=derived_uid("scope-series", i))


@pytest.mark.slow
def test_snakemake_convert_on_an_image_only_tree_says_why_nothing_is_converted(
        tmp_path: Path) -> None:
    _image_only_tree(tmp_path / "dicom")
    snakemake = Path(sys.executable).with_name("snakemake")

    def run(*config: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(snakemake), "convert", "--cores", "1", "-s",
                               str(REPO / "Snakefile"), "--directory", str(tmp_path),
                               "--config", f"dicom_root={tmp_path / 'dicom'}", *config],
                              capture_output=True, text=True, timeout=600, check=False)

    paired = run()
    assert paired.returncode == 0, paired.stderr[-3000:]
    assert ("convert.scope is 'paired' and no pairs were found: 0 of 2 image series will be "
            "converted; set convert.scope: all to convert every image") in paired.stderr
    assert not list((tmp_path / "results").glob("*/convert/*/*.json"))
    # the end-of-run summary repeats it (the Snakefile's onsuccess handler)
    assert "NOTE: convert.scope is 'paired' and no pairs were found" in paired.stdout
    everything = run("convert={scope: all}")
    assert everything.returncode == 0, everything.stderr[-3000:]
    assert "convert.scope is" not in everything.stderr
    assert len(list((tmp_path / "results").glob("*/convert/*/*.json"))) == 2
