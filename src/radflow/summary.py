"""The end-of-run summary: where a cohort's results are and how every stage ended.

Printed by the Snakefile's ``onsuccess``/``onerror`` handlers (:func:`print_run_summary`), by
``radflow run`` after Snakemake returns and by ``radflow status``. It reads what the run left in
``<results_dir>/<cohort>/``:

- ``qc/run_summary.tsv`` (rule ``qc``): the count of every status per stage, shown as one line
  per stage with the most common ``excluded:``/``failed:``/``skipped:`` statuses;
- when that file is missing (a run of the crawl stage only, say): the crawl's ``series.tsv``
  and the pair stage's ``pairs.tsv``, whichever exist;
- ``merge/dataset.parquet``: the dataset's size (its Parquet footer only);
- ``report/index.html``: when the report stage wrote it, its path is the last line;
- on failure, the logs under ``logs/`` of jobs that failed (:func:`radflow.logs.script_logging`
  writes ``job failed`` and the traceback), each with its exception's last line.

It warns (``WARNING:`` lines) when the merged dataset has no row, and when more than
``merge.max_failed_fraction`` of the items a stage tried (``ok`` + ``failed``) failed. It never
raises on a missing or unreadable file: a summary must not turn a finished run into an error.
Everything printed names files inside the results folder and pseudonymous statuses only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd

from radflow.plan.jobs import read_plan
from radflow.records import read_table
from radflow.records.status import EXCLUDED, FAILED, OK, SKIPPED, Status
from radflow.records.tables import read_series_table
from radflow.settings import MergeSettings, from_mapping

SUMMARY = "qc/run_summary.tsv"
DATASET = "merge/dataset.parquet"
#: The report stage's page (README, "Report"): named last when it is there.
REPORT = "report/index.html"
#: The marker :func:`radflow.logs.script_logging` writes into the log of a job that failed.
FAILED_JOB_MARK = "radflow.logs: job failed"
#: At most this many failed jobs are listed; at most this many non-ok statuses per stage.
MAX_FAILED_LOGS = 5
TOP_STATUSES = 3
KINDS = (OK, EXCLUDED, FAILED, SKIPPED)


@dataclass(frozen=True)
class StageCounts:
    """The statuses of one stage: count per kind and the most common non-ok statuses."""

    stage: str
    counts: Mapping[str, int]
    top: tuple[tuple[str, int], ...]

    @property
    def failed_fraction(self) -> float:
        """Failed among the items the stage tried (``ok`` + ``failed``); 0 when none."""
        tried = self.counts.get(OK, 0) + self.counts.get(FAILED, 0)
        return self.counts.get(FAILED, 0) / tried if tried else 0.0


def stage_counts(summary: pd.DataFrame) -> list[StageCounts]:
    """Group a run summary (columns ``stage``, ``status``, ``count``) by stage, in file order."""
    stages: dict[str, dict[str, int]] = {}
    for rec in summary.itertuples(index=False):
        stages.setdefault(str(rec.stage), {})[str(rec.status)] = int(rec.count)
    result = []
    for stage, statuses in stages.items():
        counts = dict.fromkeys(KINDS, 0)
        for status, n in statuses.items():
            kind = _kind(status)
            counts[kind] = counts.get(kind, 0) + n
        non_ok = sorted(((s, n) for s, n in statuses.items() if _kind(s) != OK),
                        key=lambda item: (-item[1], item[0]))
        result.append(StageCounts(stage, counts, tuple(non_ok[:TOP_STATUSES])))
    return result


def _kind(status: str) -> str:
    try:
        return Status.parse(status).kind
    except ValueError:  # a status this version does not know: count it, never crash
        return status.partition(":")[0]


def partial_summary(results: Path) -> pd.DataFrame | None:
    """Status counts from the crawl's and the pair stage's tables, when the run summary is
    missing; None when neither table exists."""
    rows = []
    for stage, table in (("crawl", "crawl/series.tsv"), ("pair", "pair/pairs.tsv")):
        try:
            statuses = (read_series_table(results / table, ["status"]) if stage == "crawl"
                        else read_table(results / table))["status"]
        except (OSError, KeyError, ValueError):
            continue
        rows += [{"stage": stage, "status": s, "count": int(n)}
                 for s, n in sorted(statuses.value_counts().items())]
    return pd.DataFrame(rows, columns=["stage", "status", "count"]) if rows else None


def dataset_shape(results: Path) -> tuple[int, int] | None:
    """(rows, columns) of the merged dataset from its Parquet footer; None when absent."""
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(results / DATASET).metadata
    except (OSError, ValueError):
        return None
    return int(meta.num_rows), int(meta.num_columns)


def failed_job_logs(results: Path) -> list[tuple[str, str]]:
    """(log path inside the results folder, last line of its error) of every job whose log says
    it failed; a rerun that succeeds overwrites its log, so only current failures are listed."""
    found = []
    logs = results / "logs"
    for path in sorted(logs.rglob("*.log")) if logs.is_dir() else []:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if FAILED_JOB_MARK in text:
            lines = [line for line in text.splitlines() if line.strip()]
            error = lines[-1].strip() if lines else ""
            # "radflow.errors.MergeError: ..." -> "MergeError: ..."
            name, sep, message = error.partition(": ")
            found.append((path.relative_to(results).as_posix(),
                          f"{name.rsplit('.', 1)[-1]}{sep}{message}"[:200]))
    return found


def _is_stale(results: Path) -> bool:
    """The run summary is older than a table it was computed from (a later crawl or pair)."""
    try:
        written = (results / SUMMARY).stat().st_mtime
    except OSError:
        return False
    for table in ("crawl/series.tsv", "pair/pairs.tsv"):
        try:
            if (results / table).stat().st_mtime > written:
                return True
        except OSError:
            continue
    return False


def format_table(stages: list[StageCounts]) -> list[str]:
    """One line per stage: the count of each status kind and the most common non-ok statuses."""
    width = max(len(s.stage) for s in stages)
    lines = [f"  {'stage':<{width}} " + " ".join(f"{k:>8}" for k in KINDS)
             + "  most common other statuses"]
    for s in stages:
        top = ", ".join(f"{status} x{n}" for status, n in s.top)
        lines.append(f"  {s.stage:<{width}} " + " ".join(f"{s.counts.get(k, 0):>8}" for k in KINDS)
                     + (f"  {top}" if top else ""))
    return lines


def summary_lines(results_dir: str | os.PathLike[str], max_failed_fraction: float = 0.2, *,
                  failed: bool = False, convert_scope: str | None = None) -> list[str]:
    """The summary's text, line by line (see module docstring).

    Parameters
    ----------
    results_dir
        A cohort's results folder (``<results_dir>/<cohort>``).
    max_failed_fraction
        ``merge.max_failed_fraction``: warn when more of a stage's tried items failed.
    failed
        The run stopped with an error: list the failed jobs' logs first.
    convert_scope
        ``convert.scope``: when given, say what it left out (``NOTE:`` lines,
        :func:`radflow.plan.jobs.scope_notes`), e.g. an image-only tree under ``paired``.
    """
    results = Path(results_dir)
    where = results.as_posix().rstrip("/") + "/"
    lines: list[str] = []
    if failed:
        lines.append("radflow: the run stopped with an error (see above); completed jobs are "
                     "kept, and running the same command again retries the rest.")
        logs = failed_job_logs(results)
        for log, error in logs[:MAX_FAILED_LOGS]:
            lines.append(f"  failed job: {where}{log}: {error}")
        if len(logs) > MAX_FAILED_LOGS:
            lines.append(f"  ... and {len(logs) - MAX_FAILED_LOGS} more failed job logs "
                         f"under {where}logs/")
    if not results.is_dir():
        lines.append(f"radflow: no results yet in {where}")
        return lines
    shape = dataset_shape(results)
    dataset = (f"; dataset merge/dataset.csv: {shape[0]} rows, {shape[1]} columns"
               if shape else "")
    lines.append(f"radflow: results in {where}{dataset}")
    summary = _read_summary(results)
    complete = summary is not None
    if summary is not None:
        note = " (from an earlier run: the crawl or pair tables changed since)" \
            if _is_stale(results) else ""
        lines.append(f"status counts ({SUMMARY}){note}:")
    else:
        summary = partial_summary(results)
        if summary is None:
            lines.append("no status counts yet (no crawl/series.tsv)")
            return lines
        lines.append(f"status counts so far ({SUMMARY} is written once every stage ran):")
    stages = stage_counts(summary)
    if stages:
        lines += format_table(stages)
    lines += _warnings(stages, shape, max_failed_fraction)
    lines += [f"NOTE: {note}" for note in _scope_notes(results, convert_scope)]
    if complete and shape is None:
        lines.append("WARNING: no merged dataset yet (merge/dataset.parquet): the merge has "
                     "not finished.")
    if (results / REPORT).is_file():
        lines.append(f"report: {where}{REPORT} (open it in a web browser)")
    return lines


def _scope_notes(results: Path, scope: str | None) -> tuple[str, ...]:
    """The plan's notes on ``convert.scope`` (none when the crawl tables are missing)."""
    series, pair_plan = results / "crawl" / "series.tsv", results / "crawl" / "pair_plan.tsv"
    if scope is None or not (series.is_file() and pair_plan.is_file()):
        return ()
    try:
        return read_plan(str(series), str(pair_plan), scope).notes
    except (OSError, ValueError, KeyError):
        return ()


def _read_summary(results: Path) -> pd.DataFrame | None:
    try:
        summary = read_table(results / SUMMARY)
    except (OSError, ValueError):
        return None
    if not {"stage", "status", "count"} <= set(summary.columns):
        return None
    return summary


def _warnings(stages: list[StageCounts], shape: tuple[int, int] | None,
              max_failed_fraction: float) -> list[str]:
    lines = []
    if shape is not None and shape[0] == 0:
        lines.append("WARNING: the merged dataset has 0 rows: no pair was extracted "
                     "(see the statuses above).")
    for s in stages:
        tried = s.counts.get(OK, 0) + s.counts.get(FAILED, 0)
        if s.failed_fraction > max_failed_fraction:
            lines.append(f"WARNING: {s.stage}: {s.counts.get(FAILED, 0)} of {tried} failed "
                         f"({s.failed_fraction:.0%}, more than merge.max_failed_fraction = "
                         f"{max_failed_fraction:.0%}).")
    return lines


def print_run_summary(results_dir: str | os.PathLike[str],
                      merge_settings: Mapping[str, Any] | None = None, *, failed: bool = False,
                      convert_scope: str | None = None, file: IO[str] | None = None) -> None:
    """Print the end-of-run summary of the cohort results in ``results_dir``.

    Called by the Snakefile's ``onsuccess`` (``failed=False``) and ``onerror`` (``failed=True``)
    handlers with the config's ``merge`` section, which holds ``max_failed_fraction``. Never
    raises on missing or unreadable files.
    """
    settings = from_mapping(MergeSettings, merge_settings, section="merge")
    out = file or sys.stdout
    print("", file=out)
    for line in summary_lines(results_dir, settings.max_failed_fraction, failed=failed,
                              convert_scope=convert_scope):
        print(line, file=out)
    out.flush()


__all__ = ["StageCounts", "dataset_shape", "failed_job_logs", "format_table", "partial_summary",
           "print_run_summary", "stage_counts", "summary_lines"]
