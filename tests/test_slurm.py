"""The workflow on a real SLURM cluster, through Snakemake's SLURM executor plugin (issue #7).

``tests/cluster/start_slurm.sh`` installs Debian's SLURM (with slurmdbd and a private MariaDB for
job accounting), starts a single-node cluster bound to localhost and waits until the node is
idle; ``tests/cluster/stop_slurm.sh`` stops it. The tests run the real Snakefile on a freshly
generated demo cohort (4 patients; a PyRadiomics params file with Original features only, to keep
jobs short) with ``--workflow-profile config/profiles/slurm``, the partition set on the command
line, and check:

* a stage for a new cohort (``snakemake extract --config cohort=...``) runs only up to
  extraction; killing the controlling ``snakemake`` mid-run (SIGKILL: its jobs keep running on the
  cluster) and invoking it again (after ``--unlock`` when Snakemake reports the killed run's
  lock) resumes without redoing finished work and completes; ``snakemake`` (all) then runs only
  ``pair`` and ``merge``;
* every job ran through ``sbatch``: each submitted job id is in the accounting (``sacct``) as
  COMPLETED, with the rule in its comment, and the job steps (one ``srun`` per Snakemake job, also
  inside grouped jobs) add up to the number of jobs Snakemake ran;
* the outputs equal those of a local run; nothing is written outside ``results/``,
  ``.snakemake/`` and ``.radflow/`` of the working directory (the input tree is untouched);
* a job that fails on the cluster is reported with its log and its SLURM log;
* adding patients to a finished cohort runs only the new patients' jobs plus the aggregates;
  changing the PyRadiomics params re-runs only extraction and merge.

Runs with ``make test-slurm`` (which sets ``RADFLOW_SLURM_TEST=1`` and wraps pytest in
``timeout -s KILL``; ``.ci/run`` calls it). Skips when not root or when the Debian packages cannot
be installed, unless ``RADFLOW_REQUIRE_SLURM=1`` (CI), which turns those skips into failures.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_helpers import REPO, job_counts, snakemake

from radflow.demo import make_demo_cohort
from radflow.plan import extract_units, read_plan

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("RADFLOW_SLURM_TEST"),
                       reason="the real-SLURM test runs with `make test-slurm` "
                              "(RADFLOW_SLURM_TEST=1); it installs and starts SLURM daemons"),
]

CLUSTER = REPO / "tests" / "cluster"
PROFILE = REPO / "config" / "profiles" / "slurm"
PARTITION = "radflow"
N_PATIENTS = 4
COHORT = "lung"
#: Options every SLURM run of the tests adds to the profile: the partition, the test node's
#: CPUs (the profile's `cores: 4` would ask for more than this 2-CPU node has) and a short first
#: status check (the plugin waits 40 s by default).
SLURM_ARGS = ["--workflow-profile", str(PROFILE), "--default-resources",
              f"slurm_partition={PARTITION}", "--cores", "2",
              "--slurm-init-seconds-before-status-checks", "2"]
RUN_TIMEOUT = 420
PARAMS = ("imageType: {Original: {}}\n"
          "featureClass: {shape: [], firstorder: [], glcm: []}\n"
          "setting: {binWidth: 25}\n")

_SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+)")
_RUN_ID = re.compile(r"SLURM run ID: (\S+)")
_JOB_HEADER = re.compile(r"^\s*(localrule|rule|checkpoint) (\w+):\s*$", re.MULTILINE)


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("RADFLOW_REQUIRE_SLURM") == "1":
        pytest.fail(f"RADFLOW_REQUIRE_SLURM=1 but: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def slurm_cluster():
    """Start the single-node test cluster (skip when impossible); stop it afterwards."""
    if os.geteuid() != 0:
        _skip_or_fail("not root: the SLURM test installs Debian packages and starts daemons")
    started = time.monotonic()
    proc = subprocess.run([str(CLUSTER / "start_slurm.sh")], capture_output=True, text=True,
                          timeout=600, check=False)
    if proc.returncode == 77:
        _skip_or_fail(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip()
                      else "start_slurm.sh cannot run here")
    if proc.returncode != 0:
        subprocess.run([str(CLUSTER / "stop_slurm.sh")], check=False)
        pytest.fail(f"start_slurm.sh failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
    print(f"\n[slurm] cluster up in {time.monotonic() - started:.0f} s", file=sys.stderr)
    yield
    subprocess.run([str(CLUSTER / "stop_slurm.sh")], check=False, timeout=120)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """A 4-patient demo, an Original-only params file, a key; the cohort's config file."""
    base = tmp_path_factory.mktemp("slurm")
    demo = make_demo_cohort(base / "demo", n_patients=N_PATIENTS)
    params = base / "params.yaml"
    params.write_text(PARAMS)
    cfg = base / "cohort.yaml"
    cfg.write_text(yaml.safe_dump({
        "dicom_root": str(demo.dicom_root), "sheet": str(demo.sheet),
        "clinical": str(demo.clinical), "clinical_id": "patient_id",
        "key_file": str(base / "key"), "extract": {"params": str(params)}}))
    return {"base": base, "demo": demo, "params": params,
            "config": ["--configfile", str(cfg), "--config", f"cohort={COHORT}"]}


@pytest.fixture(scope="module")
def local_reference(cohort):
    """The same cohort run locally (2 cores): the outputs the cluster run must reproduce."""
    work = cohort["base"] / "local"
    work.mkdir()
    started = time.monotonic()
    snakemake(work, ["--cores", "2", *cohort["config"]], timeout=RUN_TIMEOUT)
    print(f"\n[slurm] local reference run: {time.monotonic() - started:.0f} s", file=sys.stderr)
    return work / "results" / COHORT


def _save_log(cohort, name: str, text: str) -> None:
    """Keep a run's log beside the cohort (pytest's tmp folder) for a post-mortem."""
    (cohort["base"] / f"{name}.log").write_text(text)


def _tree_state(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("RADFLOW_KEY_FILE", None)
    return env


def _executed(log: str) -> Counter[str]:
    """Jobs a Snakemake log shows as run or submitted ({rule: count}; group members included)."""
    return Counter(m.group(2) for m in _JOB_HEADER.finditer(log))


def _remote(counts: Counter[str]) -> int:
    """Jobs that run on the cluster: all but the target rules without an action."""
    return sum(n for rule, n in counts.items() if rule not in {"all", "convert", "extract"})


def _squeue(run_id: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "--name", run_id, "-o", "%i"], capture_output=True,
                         text=True, check=False).stdout
    return out.split()


def _sacct(run_ids: list[str], expected: set[str], timeout: float = 60) -> pd.DataFrame:
    """The accounting records (jobs and steps) of the given runs, once all ``expected`` job ids
    have a final state (slurmctld passes records to slurmdbd asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(
            ["sacct", "--parsable2", "--noheader", "--starttime", "now-1days",
             "--name", ",".join(run_ids), "--format=JobID,JobName,State,Comment,ExitCode"],
            capture_output=True, text=True, check=False).stdout
        rows = [line.split("|", 4) for line in out.splitlines() if line.strip()]
        table = pd.DataFrame(rows, columns=["job_id", "name", "state", "comment", "exit_code"])
        jobs = table[table["job_id"].str.fullmatch(r"\d+")]
        final = jobs[~jobs["state"].isin(["PENDING", "RUNNING", "COMPLETING"])]
        if expected <= set(final["job_id"]) or time.monotonic() > deadline:
            return table
        time.sleep(1)


@pytest.fixture(scope="module")
def cluster_runs(slurm_cluster, cohort):
    """Run stage ``extract`` for the new cohort, kill the controller mid-run, resume, then run
    the whole workflow; return the working directory, the results folder, the logs of the three
    invocations and the state of the input tree before them."""
    work = cohort["base"] / "cluster"
    work.mkdir()
    demo_before = _tree_state(cohort["demo"].root)
    results = work / "results" / COHORT
    logs: dict[str, str] = {}
    timing: dict[str, float] = {}

    # 1. The stage `extract` for a new cohort, in the background; SIGKILL the controller while
    #    the grouped convert/pair job runs (its SLURM jobs continue without it).
    log_path = cohort["base"] / "killed.log"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
           str(work), "extract", *SLURM_ARGS, *cohort["config"]]
    started = time.monotonic()
    with open(log_path, "w") as log_fh:
        proc = subprocess.Popen(cmd, stdout=log_fh, stderr=subprocess.STDOUT, env=_env())
        try:
            deadline = time.monotonic() + RUN_TIMEOUT
            while not any((results / "convert").rglob("*.json")):
                assert proc.poll() is None, "snakemake ended before the convert jobs ran"
                assert time.monotonic() < deadline, "no convert output in time"
                time.sleep(0.5)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
    logs["killed"] = log_path.read_text()
    timing["killed"] = time.monotonic() - started
    killed_id = _RUN_ID.search(logs["killed"]).group(1)
    deadline = time.monotonic() + 300
    while _squeue(killed_id):  # the orphaned jobs finish on their own
        assert time.monotonic() < deadline, "orphaned SLURM jobs did not finish"
        time.sleep(1)
    timing["orphans_done"] = time.monotonic() - started

    # 2. The same command again. Snakemake refuses when the killed run's lock covers files this
    #    run needs ("Directory cannot be locked"): then `--unlock` and once more.
    started = time.monotonic()
    resumed = snakemake(work, ["extract", *SLURM_ARGS, *cohort["config"]], check=False,
                        timeout=RUN_TIMEOUT)
    if resumed.returncode != 0 and "cannot be locked" in resumed.stdout + resumed.stderr:
        _save_log(cohort, "locked", resumed.stdout + resumed.stderr)
        snakemake(work, ["--unlock", *cohort["config"]])
        resumed = snakemake(work, ["extract", *SLURM_ARGS, *cohort["config"]], check=False,
                            timeout=RUN_TIMEOUT)
    logs["resumed"] = resumed.stdout + resumed.stderr
    _save_log(cohort, "resumed", logs["resumed"])
    assert resumed.returncode == 0, logs["resumed"][-6000:]
    timing["resumed"] = time.monotonic() - started

    # 3. The whole workflow.
    started = time.monotonic()
    full = snakemake(work, [*SLURM_ARGS, *cohort["config"]], timeout=RUN_TIMEOUT)
    logs["all"] = full.stdout + full.stderr
    _save_log(cohort, "all", logs["all"])
    timing["all"] = time.monotonic() - started
    print(f"\n[slurm] timings (s): {', '.join(f'{k} {v:.0f}' for k, v in timing.items())}",
          file=sys.stderr)
    return {"work": work, "results": results, "logs": logs, "demo_before": demo_before}


def _plan(results: Path) -> tuple[set[str], set[str], set[str]]:
    """(series keys to convert, pair ids, extraction units) of the crawl's plan: what the jobs
    are made of (one extract job per image)."""
    crawled = results / "crawl"
    plan = read_plan(str(crawled / "series.tsv"), str(crawled / "pair_plan.tsv"), "paired")
    return (set(plan.convert["series_key"]), set(plan.pairs["pair_id"]),
            set(extract_units(plan)["unit"]))


def test_stage_for_a_new_cohort_runs_only_up_to_extraction(cluster_runs, cohort) -> None:
    sources, pairs, units = _plan(cluster_runs["results"])
    n_sources, n_pairs = len(sources), len(pairs)
    logs = cluster_runs["logs"]
    killed, resumed = _executed(logs["killed"]), _executed(logs["resumed"])
    # The killed run had submitted the crawl and the grouped convert/pair job.
    assert killed == {"crawl": 1, "convert_one": n_sources, "pair_one": n_pairs}, killed
    # Resumed: only what was left (the orphaned group job finished convert and pair).
    assert resumed == {"extract_one": len(units), "extract": 1}, resumed
    assert len(list((cluster_runs["results"] / "extract").glob("*/*.parquet"))) == len(units)
    # `snakemake` (all) afterwards: only the aggregates.
    assert _executed(logs["all"]) == {"pair": 1, "qc": 1, "merge": 1, "all": 1}


def test_killed_controller_resumes_and_completes(cluster_runs) -> None:
    logs = cluster_runs["logs"]
    assert "Nothing to be done" not in logs["resumed"]
    assert "Finished jobid" in logs["resumed"]
    assert (cluster_runs["results"] / "merge" / "dataset.csv").is_file()


def test_every_job_went_through_sbatch(cluster_runs) -> None:
    logs = [cluster_runs["logs"][k] for k in ("killed", "resumed", "all")]
    run_ids = [_RUN_ID.search(log).group(1) for log in logs]
    submitted = {jid for log in logs for jid in _SUBMITTED.findall(log)}
    table = _sacct(run_ids, submitted)
    jobs = table[table["job_id"].str.fullmatch(r"\d+")].set_index("job_id")
    assert submitted == set(jobs.index), "every submitted job is in the SLURM accounting"
    assert (jobs["state"] == "COMPLETED").all(), jobs[["state", "comment"]]
    comments = Counter(re.sub(r"_wildcards_.*", "", c) for c in jobs["comment"])
    assert comments == {"rule_crawl": 1, "rule_prep_convert_one_pair_one": 1,
                        "rule_extract_one": len(_SUBMITTED.findall(logs[1])),
                        "rule_pair": 1, "rule_qc": 1, "rule_merge": 1}, comments
    # One srun step per Snakemake job: the steps of all jobs (the grouped one included) add up
    # to the jobs Snakemake ran, so no job ran on the controlling host.
    steps = table[table["job_id"].str.fullmatch(r"\d+\.\d+")]
    assert len(steps) == sum(_remote(_executed(log)) for log in logs)
    assert (steps["state"] == "COMPLETED").all()


def test_outputs_equal_a_local_run(cluster_runs, local_reference) -> None:
    res = cluster_runs["results"]
    for name in ("features.parquet", "dataset.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(res / "merge" / name),
                                      pd.read_parquet(local_reference / "merge" / name))
    for name in ("merge/dataset.csv", "merge/features_wide.csv", "crawl/series.tsv",
                 "pair/pairs.tsv", "qc/run_summary.tsv"):
        assert (res / name).read_bytes() == (local_reference / name).read_bytes(), name


def test_writes_only_results_and_snakemake_state(cluster_runs, cohort) -> None:
    work = cluster_runs["work"]
    assert {p.name for p in work.iterdir()} <= {"results", ".snakemake", ".radflow"}
    assert _tree_state(cohort["demo"].root) == cluster_runs["demo_before"], "inputs untouched"
    assert {p.name for p in (work / "results").iterdir()} == {COHORT}


def test_failed_job_is_reported_with_its_logs(cluster_runs, cohort) -> None:
    """A clinical table that matches no patient makes the merge job itself fail (MergeError),
    after the qc job wrote the join report."""
    work = cluster_runs["work"]
    bad = cohort["base"] / "clinical_unmatched.csv"
    bad.write_text("patient_id,age\nNOBODY-1,50\nNOBODY-2,60\n")
    proc = snakemake(work, [*SLURM_ARGS, *cohort["config"], f"clinical={bad}"], check=False,
                     timeout=RUN_TIMEOUT)
    out = proc.stdout + proc.stderr
    _save_log(cohort, "failed", out)
    assert proc.returncode != 0
    # Only the qc and merge jobs ran (the rest of the log is the failed job's logs, which the
    # profile's show-failed-logs prints).
    assert _executed(out.split("Error in rule")[0]) == {"qc": 1, "merge": 1}
    assert len(_SUBMITTED.findall(out)) == 2
    job_id = _SUBMITTED.findall(out)[-1]
    assert f"SLURM-job '{job_id}' failed" in out
    assert "Error in rule merge" in out
    assert f"results/{COHORT}/logs/merge.log" in out
    slurm_log = work / ".snakemake" / "slurm_logs" / "rule_merge" / f"{job_id}.log"
    assert str(slurm_log) in out and slurm_log.is_file(), "the failed job's SLURM log is kept"
    assert "MergeError" in (work / "results" / COHORT / "logs" / "merge.log").read_text()
    table = _sacct([_RUN_ID.search(out).group(1)], {job_id})
    assert table.set_index("job_id").loc[job_id, "state"] == "FAILED"


def test_adding_patients_runs_only_their_jobs(cluster_runs, cohort) -> None:
    work, demo, results = cluster_runs["work"], cohort["demo"], cluster_runs["results"]
    sources_before, pairs_before, units_before = _plan(results)
    make_demo_cohort(demo.root, n_patients=N_PATIENTS + 1)
    run = snakemake(work, [*SLURM_ARGS, *cohort["config"]], timeout=RUN_TIMEOUT)
    _save_log(cohort, "added", run.stdout + run.stderr)
    sources_after, pairs_after, units_after = _plan(results)
    new_sources, new_pairs = sources_after - sources_before, pairs_after - pairs_before
    new_units = units_after - units_before
    assert new_sources and new_pairs and sources_before < sources_after
    assert _executed(run.stdout + run.stderr) == {
        "crawl": 1, "convert_one": len(new_sources), "pair_one": len(new_pairs), "pair": 1,
        "extract_one": len(new_units), "qc": 1, "merge": 1, "all": 1}
    pairs = pd.read_csv(results / "pair" / "pairs.tsv", sep="\t", dtype=str)
    dataset = pd.read_csv(results / "merge" / "dataset.csv", dtype=str)
    assert set(dataset["pair_id"]) == set(pairs.loc[pairs["status"] == "ok", "pair_id"])
    assert new_pairs <= set(dataset["pair_id"])


def test_params_change_reruns_only_extract_and_merge(cluster_runs, cohort) -> None:
    work = cluster_runs["work"]
    n_units = len(_plan(cluster_runs["results"])[2])
    assert job_counts(snakemake(work, ["-n", *SLURM_ARGS, *cohort["config"]]).stdout) == {}
    cohort["params"].write_text(PARAMS + "# changed\n")
    dry = snakemake(work, ["-n", *SLURM_ARGS, *cohort["config"]])
    assert job_counts(dry.stdout) == {"extract_one": n_units, "qc": 1, "merge": 1,
                                      "all": 1}

