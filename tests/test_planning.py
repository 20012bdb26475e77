"""Issue 11: the crawl's plan is read once per Snakemake process, never once per job.

The input functions of the per-item rules call :func:`radflow.plan.read_plan` for every job;
it must read the tables only when they change (memoised on path, inode, size and modification
time), and answer each job from dict indexes that agree with the tables.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from radflow import plan as rw
from radflow.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _bench_planning():
    spec = importlib.util.spec_from_file_location("bench_planning", REPO / "bench" / "planning.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _series_row(case: str, key: str, role: str, source: str = "dicom",
                status: str = "ok") -> dict[str, str]:
    return {"case_id": case, "series_key": key, "source": source, "role": role, "status": status}


def _pair_row(pid: str, case: str, image: str, mask: str, status: str = "ok",
              image_status: str = "ok", mask_status: str = "ok") -> dict[str, str]:
    return {"pair_id": pid, "case_id": case, "image_key": image, "mask_key": mask,
            "status": status, "image_status": image_status, "mask_status": mask_status}


def _write(tmp_path: Path, series: list[dict], pairs: list[dict]) -> tuple[str, str]:
    pd.DataFrame(series).to_csv(tmp_path / "series.tsv", sep="\t", index=False)
    pd.DataFrame(pairs).to_csv(tmp_path / "pair_plan.tsv", sep="\t", index=False)
    return str(tmp_path / "series.tsv"), str(tmp_path / "pair_plan.tsv")


def _reads(trace: Path) -> int:
    return len(trace.read_text(encoding="utf-8").splitlines()) if trace.exists() else 0


def test_plan_is_read_once_per_version_of_the_tables(tmp_path, monkeypatch) -> None:
    trace = tmp_path / "reads.txt"
    monkeypatch.setenv(rw.PLAN_TRACE_ENV, str(trace))
    series, pairs = _write(tmp_path, [_series_row("c1", "sA", "image"),
                                      _series_row("c1", "sM", "mask", source="file")],
                           [_pair_row("p1", "c1", "sA", "sM")])
    first = rw.read_plan(series, pairs, "paired")
    assert rw.read_plan(series, pairs, "paired") is first
    assert _reads(trace) == 1

    # A changed table (other size) is read again, and the plan follows it.
    _write(tmp_path, [_series_row("c1", "sA", "image"),
                      _series_row("c1", "sM", "mask", source="file"),
                      _series_row("c2", "sB", "image"), _series_row("c2", "sN", "mask")],
           [_pair_row("p1", "c1", "sA", "sM"), _pair_row("p2", "c2", "sB", "sN")])
    second = rw.read_plan(series, pairs, "paired")
    assert _reads(trace) == 2 and second is not first
    assert rw.unit_pair_ids(second, "sB") == ["p2"]
    with pytest.raises(ConfigError, match="sB"):
        rw.unit_pair_ids(first, "sB")

    # Same size, new modification time: read again.
    st = os.stat(pairs)
    os.utime(pairs, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    third = rw.read_plan(series, pairs, "paired")
    assert _reads(trace) == 3 and third is not second
    assert rw.read_plan(series, pairs, "paired") is third
    # Same files, another scope: a plan of its own.
    assert rw.read_plan(series, pairs, "all") is not third
    assert _reads(trace) == 4


def test_replaced_table_of_same_size_and_time_is_read_again(tmp_path, monkeypatch) -> None:
    """An atomic replacement (new inode) is a new version even with the same size and mtime."""
    trace = tmp_path / "reads.txt"
    monkeypatch.setenv(rw.PLAN_TRACE_ENV, str(trace))
    series, pairs = _write(tmp_path, [_series_row("c1", "sA", "image"),
                                      _series_row("c1", "sM", "mask", source="file")],
                           [_pair_row("p1", "c1", "sA", "sM")])
    first = rw.read_plan(series, pairs, "paired")
    st = os.stat(pairs)
    text = Path(pairs).read_text(encoding="utf-8").replace("p1", "p2")
    Path(pairs + ".new").write_text(text, encoding="utf-8")
    os.utime(pairs + ".new", ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(pairs + ".new", pairs)
    second = rw.read_plan(series, pairs, "paired")
    assert _reads(trace) == 2
    assert list(second.pair_rows) == ["p2"] and list(first.pair_rows) == ["p1"]


def _reference(series_tsv: str, pairs_tsv: str, results: str, private: str,
               scope: str) -> dict[str, object]:
    """Every lookup answered from the tables with pandas (what read_plan's indexes replace)."""
    plan = rw.read_plan(series_tsv, pairs_tsv, scope)
    conv, pairs = plan.convert, plan.pairs
    out: dict[str, object] = {}
    for key in conv["series_key"]:
        row = conv.loc[conv["series_key"] == key].iloc[0]
        inputs = {"source": f"{private}/sources/{key}.json"}
        if row["image_key"]:
            image = conv.loc[conv["series_key"] == row["image_key"]]
            inputs["image"] = ("missing" if image.empty else
                               rw.sidecar_path(results, image.iloc[0]["case_id"],
                                               image.iloc[0]["series_key"]))
        out[f"convert {key}"] = inputs
    converted = set(conv["series_key"])
    for pid in pairs["pair_id"]:
        row = pairs.loc[pairs["pair_id"] == pid].iloc[0]
        out[f"pair {pid}"] = {
            which: rw.sidecar_path(results, row["case_id"], row[f"{which}_key"])
            for which in ("image", "mask")
            if row[f"{which}_status"] == "ok" and row[f"{which}_key"] in converted}
    units = rw.extract_units(plan)
    for unit in units["unit"]:
        out[f"unit {unit}"] = units.loc[units["unit"] == unit, "pair_id"].tolist()
    first = units.drop_duplicates("unit")
    out["unit files"] = [f"{results}/extract/{c}/{u}.parquet"
                         for c, u in zip(first["case_id"], first["unit"], strict=True)]
    out["sidecars"] = [rw.sidecar_path(results, c, k)
                       for c, k in zip(conv["case_id"], conv["series_key"], strict=True)]
    return out


def _indexed(series_tsv: str, pairs_tsv: str, results: str, private: str,
             scope: str) -> dict[str, object]:
    plan = rw.read_plan(series_tsv, pairs_tsv, scope)
    out: dict[str, object] = {}
    for key in plan.convert["series_key"]:
        try:
            out[f"convert {key}"] = rw.convert_inputs(plan, results, private, key)
        except ConfigError as exc:
            assert f"mask {key}: its image" in str(exc)
            out[f"convert {key}"] = {"source": f"{private}/sources/{key}.json",
                                     "image": "missing"}
    for pid in plan.pairs["pair_id"]:
        out[f"pair {pid}"] = rw.pair_sidecars(plan, results, pid)
    for unit in plan.units:
        out[f"unit {unit}"] = rw.unit_pair_ids(plan, unit)
    out["unit files"] = rw.unit_files(plan, f"{results}/extract/{{case_id}}/{{unit}}.parquet")
    out["sidecars"] = rw.all_sidecars(plan, results)
    return out


@pytest.mark.parametrize("scope", ["paired", "all"])
def test_indexes_answer_like_the_tables(tmp_path, scope) -> None:
    """DICOM images and masks, RTSTRUCT/SEG built on an image, sheet files, failed sources and
    pairs, an unpaired image, a pair without an image, several pairs per image."""
    series = [
        _series_row("c1", "sA", "image"), _series_row("c1", "sR", "mask"),  # RTSTRUCT on sA
        _series_row("c1", "sF", "mask", source="file"),
        _series_row("c2", "sB", "image"), _series_row("c2", "sX", "image"),  # sX unpaired
        _series_row("c2", "sS", "mask"),  # SEG whose pair failed
        _series_row("c3", "sC", "image", status="failed:geometry"),
        _series_row("c3", "sG", "mask", source="file"),
        _series_row("c4", "sH", "mask", source="file"),
    ]
    pairs = [
        _pair_row("p3", "c1", "sA", "sR"), _pair_row("p1", "c1", "sA", "sR"),
        _pair_row("p2", "c1", "sA", "sF"),
        _pair_row("p4", "c2", "sB", "sS", status="failed:no-overlap"),
        _pair_row("p5", "c3", "sC", "sG", status="failed:image-geometry",
                  image_status="failed:geometry"),
        _pair_row("p9", "c4", "", "sH", status="failed:image-missing",
                  image_status="failed:series-not-found"),
    ]
    series_tsv, pairs_tsv = _write(tmp_path, series, pairs)
    expected = _reference(series_tsv, pairs_tsv, "R", "P", scope)
    assert _indexed(series_tsv, pairs_tsv, "R", "P", scope) == expected
    assert expected["convert sR"] == {"source": "P/sources/sR.json",
                                      "image": "R/convert/c1/sA.json"}
    assert expected["unit sA"] == ["p1", "p2", "p3"]
    assert ("convert sX" in expected) == (scope == "all")


def test_missing_pair_and_unit_keep_their_messages(tmp_path) -> None:
    series_tsv, pairs_tsv = _write(tmp_path, [_series_row("c1", "sA", "image"),
                                              _series_row("c1", "sR", "mask")],
                                   [_pair_row("p1", "c1", "sA", "sR")])
    plan = rw.read_plan(series_tsv, pairs_tsv, "paired")
    with pytest.raises(ConfigError, match=r"pair pZ is not in the crawl's pair_plan\.tsv"):
        rw.pair_sidecars(plan, "R", "pZ")
    with pytest.raises(ConfigError,
                       match=r"extraction unit sZ is not in the crawl's pair_plan\.tsv"):
        rw.unit_pair_ids(plan, "sZ")
    assert rw.convert_inputs(plan, "R", "P", "sZ") == {"source": "P/sources/sZ.json"}


@pytest.mark.slow
def test_a_dry_run_reads_the_plan_once_per_process(tmp_path) -> None:
    """A real ``snakemake -n`` after the crawl: one plan read per process at 10 and 40 sources
    (before issue 11: one per job, 23 and 83); 2n + 4 jobs with the qc rule."""
    planning = _bench_planning()
    reads = {}
    for n in (10, 40):
        root = tmp_path / f"n{n}"
        root.mkdir()
        config = planning.make_cohort(root, n)
        planning.crawl(root, config)
        trace = root / "plan_reads.txt"
        env = dict(os.environ, **{rw.PLAN_TRACE_ENV: str(trace)})
        _, proc = planning.snakemake(root, ["-n", "--quiet", "rules", *config], env=env)
        assert planning.job_total(proc.stdout + proc.stderr) == 2 * n + 4
        reads[n] = Counter(line.split("\t")[0]
                           for line in trace.read_text(encoding="utf-8").splitlines())
    assert {n: sorted(c.values()) for n, c in reads.items()} == {10: [1], 40: [1]}
