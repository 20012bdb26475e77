"""The end-of-run summary (radflow.summary): counts per stage, warnings, failed jobs, and never a
crash on missing or broken files."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd
import pytest

from radflow.errors import ConfigError
from radflow.io.atomic import write_parquet, write_text, write_tsv
from radflow.summary import (
    dataset_shape,
    failed_job_logs,
    print_run_summary,
    stage_counts,
    summary_lines,
)


def _summary(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["stage", "status", "count"])


def _results(tmp_path: Path, rows: list[tuple[str, str, int]], dataset_rows: int | None = 2,
             ) -> Path:
    res = tmp_path / "results" / "c"
    write_tsv(res / "qc" / "run_summary.tsv", _summary(rows))
    if dataset_rows is not None:
        write_parquet(res / "merge" / "dataset.parquet",
                      pd.DataFrame({"case_id": [f"c{i}" for i in range(dataset_rows)],
                                    "f": [1.0] * dataset_rows}))
    return res


def _text(res: Path, **kwargs: object) -> str:
    return "\n".join(summary_lines(res, **kwargs))  # type: ignore[arg-type]


GOOD = [("crawl", "excluded:localizer", 2), ("crawl", "excluded:non-image-sr", 1),
        ("crawl", "ok", 10), ("convert", "ok", 8), ("pair", "ok", 8), ("extract", "ok", 8)]


def test_stage_counts_group_kinds_and_rank_other_statuses() -> None:
    stages = stage_counts(_summary([
        ("crawl", "ok", 5), ("crawl", "excluded:localizer", 1),
        ("crawl", "failed:missing-slice", 3), ("crawl", "excluded:derived", 3),
        ("crawl", "failed:gantry-tilt", 7), ("extract", "skipped:failed:empty-mask", 2),
        ("extract", "ok", 4)]))
    assert [s.stage for s in stages] == ["crawl", "extract"]
    crawl, extract = stages
    assert dict(crawl.counts) == {"ok": 5, "excluded": 4, "failed": 10, "skipped": 0}
    # most common first, ties by name, at most three
    assert crawl.top == (("failed:gantry-tilt", 7), ("excluded:derived", 3),
                         ("failed:missing-slice", 3))
    assert crawl.failed_fraction == pytest.approx(10 / 15)
    assert dict(extract.counts)["skipped"] == 2 and extract.failed_fraction == 0


def test_summary_names_the_folder_the_dataset_and_every_stage(tmp_path) -> None:
    res = _results(tmp_path, GOOD, dataset_rows=3)
    text = _text(res)
    assert f"results in {res.as_posix()}/" in text
    assert "merge/dataset.csv: 3 rows, 2 columns" in text
    lines = {line.split()[0]: line.split() for line in text.splitlines()
             if line.startswith("  ") and not line.startswith("  stage")}
    assert lines["crawl"][:5] == ["crawl", "10", "3", "0", "0"]
    assert "excluded:localizer" in lines["crawl"] and "x2," in lines["crawl"]
    assert set(lines) == {"crawl", "convert", "pair", "extract"}
    assert "WARNING" not in text


def test_zero_row_dataset_is_a_loud_warning(tmp_path) -> None:
    res = _results(tmp_path, GOOD, dataset_rows=0)
    assert dataset_shape(res) == (0, 2)
    assert "WARNING: the merged dataset has 0 rows" in _text(res)


@pytest.mark.parametrize(("failed", "limit", "warned"), [
    (2, 0.2, False),   # 2 of 10 = 20 %: not more than the limit
    (3, 0.2, True),    # 3 of 11
    (3, 0.5, False),
    (1, 0.0, True),
])
def test_failed_fraction_above_the_limit_warns(tmp_path, failed, limit, warned) -> None:
    rows = [("crawl", "ok", 10), ("convert", "ok", 10 - min(failed, 2)),
            ("convert", "failed:missing-slice", failed), ("convert", "excluded:derived", 50)]
    text = _text(_results(tmp_path, rows), max_failed_fraction=limit)
    warning = [line for line in text.splitlines() if line.startswith("WARNING: convert")]
    assert bool(warning) == warned, text
    if warned:
        assert f"{failed} of {10 - min(failed, 2) + failed} failed" in warning[0]
        assert "merge.max_failed_fraction" in warning[0]
    assert "WARNING: crawl" not in text  # excluded items do not count as tried


def test_limit_comes_from_the_merge_section(tmp_path) -> None:
    res = _results(tmp_path, [("convert", "ok", 1), ("convert", "failed:missing-slice", 1)])
    quiet, loud = io.StringIO(), io.StringIO()
    print_run_summary(res, {"max_unmatched_fraction": 0.2, "max_failed_fraction": 0.6},
                      file=quiet)
    print_run_summary(res, {"max_failed_fraction": 0.4}, file=loud)
    assert "WARNING" not in quiet.getvalue()
    assert "WARNING: convert: 1 of 2 failed (50%" in loud.getvalue()
    with pytest.raises(ConfigError, match="max_failed_fractoin"):
        print_run_summary(res, {"max_failed_fractoin": 0.4}, file=io.StringIO())


def test_missing_summary_falls_back_to_the_crawl_and_pair_tables(tmp_path) -> None:
    res = tmp_path / "results" / "c"
    write_tsv(res / "crawl" / "series.tsv", pd.DataFrame(
        {"series_key": ["s1", "s2", "s3"], "status": ["ok", "ok", "failed:missing-slice"]}))
    text = _text(res)
    assert "status counts so far" in text and "crawl" in text and "pair " not in text
    assert "dataset" not in text
    assert [line.split()[:5] for line in text.splitlines() if line.startswith("  crawl")] == [
        ["crawl", "2", "0", "1", "0"]]
    assert "WARNING: crawl: 1 of 3 failed" in text


@pytest.mark.parametrize("content", [None, "", "not\ta\tsummary\n", "\x00\xff garbage"])
def test_no_crash_on_missing_or_broken_files(tmp_path, content) -> None:
    res = tmp_path / "results" / "c"
    if content is not None:
        write_text(res / "qc" / "run_summary.tsv", content)
        write_text(res / "merge" / "dataset.parquet", "not parquet")
    out = io.StringIO()
    print_run_summary(res, None, file=out)
    print_run_summary(res, None, failed=True, file=out)
    assert "radflow:" in out.getvalue()


def test_no_results_folder(tmp_path) -> None:
    text = _text(tmp_path / "results" / "none")
    assert "no results yet in" in text


def test_summary_older_than_the_crawl_is_marked(tmp_path) -> None:
    res = _results(tmp_path, GOOD)
    write_tsv(res / "crawl" / "series.tsv", pd.DataFrame({"status": ["ok"]}))
    summary = res / "qc" / "run_summary.tsv"
    os.utime(summary, (summary.stat().st_mtime - 60,) * 2)
    assert "from an earlier run" in _text(res)
    os.utime(summary, (summary.stat().st_mtime + 120,) * 2)
    assert "from an earlier run" not in _text(res)


def test_failed_jobs_are_listed_with_their_error(tmp_path) -> None:
    res = _results(tmp_path, GOOD, dataset_rows=None)
    fmt = "2024-01-01 10:00:00,000 {} {}: {}\n"
    write_text(res / "logs" / "merge.log",
               fmt.format("INFO", "radflow.merge", "started")
               + fmt.format("ERROR", "radflow.logs", "job failed")
               + "Traceback (most recent call last):\n  File \"x.py\", line 1\n"
               + "radflow.errors.MergeError: clinical join rejected: 3 of 8 unmatched\n")
    write_text(res / "logs" / "extract" / "c1" / "s1.log",
               fmt.format("INFO", "radflow.extract", "1 pair extracted"))
    assert failed_job_logs(res) == [("logs/merge.log",
                                     "MergeError: clinical join rejected: 3 of 8 unmatched")]
    text = _text(res, failed=True)
    assert text.splitlines()[0].startswith("radflow: the run stopped with an error")
    assert f"failed job: {res.as_posix()}/logs/merge.log: MergeError: clinical join" in text
    assert "s1.log" not in text
    assert "results in" in text and "merge/dataset.csv" not in text  # no dataset


def test_many_failed_jobs_are_counted_not_listed(tmp_path) -> None:
    res = tmp_path / "results" / "c"
    for i in range(8):
        write_text(res / "logs" / "convert" / f"s{i}.log",
                   "x ERROR radflow.logs: job failed\nradflow.errors.SeriesGeometryError: gap\n")
    text = _text(res, failed=True)
    assert text.count("failed job:") == 5
    assert "... and 3 more failed job logs" in text
