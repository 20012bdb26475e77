"""Failure recovery: a job killed with SIGKILL in the middle of writing leaves nothing a rerun
accepts, and the rerun produces exactly the files of an uninterrupted run.

How the kill is made deterministic without touching library code: the test runs the real workflow
with a test-only ``sitecustomize.py`` on ``PYTHONPATH``. In every Python process of the run it
wraps ``os.replace`` (the last step of every atomic write in :mod:`radflow.io.atomic`): when the
destination matches the chosen pattern, it cuts the temporary file to half its size (the state a
kill during the write leaves on disk), writes a marker file with its process id and the paths, and
sleeps (only the first such process: the pause is claimed with an exclusive file creation). The
test waits for the marker, then SIGKILLs Snakemake's process group and the paused job.
A writer that did not go through a temporary file and ``os.replace`` would never pause, and the
test would fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from workflow_helpers import REPO, snakemake

from radflow.demo.synthetic import Patient, Study, derived_uid, write_series
from radflow.io.nifti import write_nifti

pytestmark = pytest.mark.slow

HOOK = '''
import fnmatch, os, time
_pattern = os.environ.get("RADFLOW_TEST_KILL_AT")
_marker = os.environ.get("RADFLOW_TEST_MARKER")
if _pattern and _marker:
    _replace = os.replace

    def _claim():
        # Exactly one process may pause: with parallel jobs, two writers can reach the pattern
        # at the same moment, and a plain exists() check would let both through (the second's
        # rename of the shared ".part" file then fails inside os.replace, and that job records a
        # failure that has nothing to do with the kill being tested).
        try:
            os.close(os.open(_marker + ".claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def _paused_replace(src, dst, *args, **kwargs):
        if fnmatch.fnmatch(os.fspath(dst), "*" + _pattern) and _claim():
            with open(src, "r+b") as fh:
                fh.truncate(os.path.getsize(src) // 2)
            with open(_marker + ".part", "w") as fh:
                fh.write("\\n".join([str(os.getpid()), os.fspath(src), os.fspath(dst)]))
            os.rename(_marker + ".part", _marker)
            time.sleep(600)
        return _replace(src, dst, *args, **kwargs)

    os.replace = _paused_replace
'''

SHAPE = (6, 20, 24)  # slices, rows, columns


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, list[str]]:
    """Two patients (CT series + NIfTI mask), a sheet, a small params file, a config."""
    base = tmp_path_factory.mktemp("recovery")
    rng = np.random.default_rng(5)
    rows = []
    for i in range(2):
        patient = Patient(f"REC-{i}", f"Recovery^Patient{i}")
        study = Study(derived_uid("rec", i), derived_uid("rec-for", i))
        uid = derived_uid("rec-series", i)
        stored = rng.integers(900, 1200, SHAPE).astype(np.int16)
        write_series(base / "dicom" / f"p{i}", stored, patient=patient, study=study,
                     series_uid=uid, spacing=(0.9, 0.9, 2.0))
        mask = np.zeros(SHAPE, np.uint8)
        mask[1:5, 5:15, 6:18] = 1
        image = sitk.GetImageFromArray(mask)
        image.SetSpacing((0.9, 0.9, 2.0))
        write_nifti(base / f"mask{i}.nii.gz", image)
        rows.append({"subject": patient.patient_id, "image": f"series:{uid}",
                     "mask": f"mask{i}.nii.gz", "label": 1, "roi": "GTV"})
    pd.DataFrame(rows).to_csv(base / "sheet.tsv", sep="\t", index=False)
    params = base / "params.yaml"
    params.write_text("imageType: {Original: {}}\nfeatureClass: {firstorder: [], shape: []}\n"
                      "setting: {binWidth: 25}\n")
    config = base / "config.yaml"
    config.write_text(yaml.safe_dump({
        "cohort": "rec", "dicom_root": str(base / "dicom"), "sheet": str(base / "sheet.tsv"),
        "key_file": str(base / "key"), "extract": {"params": str(params)}}))
    hook = base / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    return base, ["--configfile", str(config)]


#: Keys of JSON records that measure the run, not the data (extraction wall time).
RUN_DEPENDENT_KEYS = {"seconds"}


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in RUN_DEPENDENT_KEYS}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _content(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".json":
        return json.dumps(_without_timings(json.loads(data)), sort_keys=True).encode()
    return data


def _outputs(work: Path) -> dict[str, bytes]:
    """Every file a run leaves below results/ (except logs, benchmark timings and temporary
    files), as bytes; JSON records without :data:`RUN_DEPENDENT_KEYS` (at any depth)."""
    root = work / "results" / "rec"
    return {p.relative_to(root).as_posix(): _content(p) for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".tmp-")
            and p.relative_to(root).parts[0] not in ("logs", "benchmarks")}


@pytest.fixture(scope="module")
def reference(cohort, tmp_path_factory) -> dict[str, bytes]:
    work = tmp_path_factory.mktemp("reference")
    snakemake(work, ["--cores", "2", *cohort[1]])
    outputs = _outputs(work)
    assert "merge/dataset.csv" in outputs and len(pd.read_csv(
        work / "results" / "rec" / "merge" / "dataset.csv")) == 2
    return outputs


def _run_until_paused(work: Path, config: list[str], hook: Path, pattern: str,
                      marker: Path) -> tuple[int, Path, Path]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hook), env.get("PYTHONPATH")]))
    env["RADFLOW_TEST_KILL_AT"] = pattern
    env["RADFLOW_TEST_MARKER"] = str(marker)
    env.pop("RADFLOW_KEY_FILE", None)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
           str(work), "--cores", "2", *config]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while not marker.exists():
            if proc.poll() is not None:
                raise AssertionError(f"the run ended ({proc.returncode}) before writing {pattern}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no write to {pattern} within 300 s")
            time.sleep(0.05)
        pid, src, dst = marker.read_text().splitlines()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)   # Snakemake and the jobs it started
        proc.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError):   # the paused job, if in another group
        os.kill(int(pid), signal.SIGKILL)
    return int(pid), work / src, work / dst   # relative to Snakemake's working directory


@pytest.mark.parametrize("pattern", ["/convert/*.nii.gz", "/merge/dataset.csv"],
                         ids=["convert-volume", "merge-dataset"])
def test_sigkill_mid_write_then_rerun_gives_identical_outputs(cohort, reference, pattern,
                                                              tmp_path) -> None:
    base, config = cohort
    work = tmp_path / "work"
    work.mkdir()
    _, src, dst = _run_until_paused(work, config, base / "hook", pattern, tmp_path / "marker")
    # what the kill left: a half-written temporary file, and no destination file
    assert src.name.startswith(".tmp-") and src.parent == dst.parent
    assert src.is_file() and not dst.exists()
    assert dst.relative_to(work / "results" / "rec").as_posix() in reference
    if pattern.startswith("/convert/"):   # the sidecar is written after the volume: not there
        assert not dst.with_name(dst.name.removesuffix(".nii.gz") + ".json").exists()
    # rerun: release Snakemake's lock (the killed run could not), then run as a user would
    snakemake(work, ["--unlock", *config])
    snakemake(work, ["--cores", "2", *config])
    outputs = _outputs(work)
    assert sorted(outputs) == sorted(reference)
    differ = [name for name in reference if outputs[name] != reference[name]]
    assert differ == []
    # the half-written temporary file is left where it was; no output name can match it
    assert src.is_file()
    assert src.stat().st_size < (work / "results" / "rec" / dst.relative_to(
        work / "results" / "rec")).stat().st_size
    summary = pd.read_csv(work / "results" / "rec" / "qc" / "run_summary.tsv", sep="\t")
    assert set(summary["status"]) == {"ok"}
    sidecars = [json.loads(p.read_text()) for p in
                (work / "results" / "rec" / "convert").rglob("*.json")]
    assert len(sidecars) == 4 and {s["status"] for s in sidecars} == {"ok"}
