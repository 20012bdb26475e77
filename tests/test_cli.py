"""The ``radflow`` command: run (argument split, derived config, Snakemake's command line),
check, status, and plain help text."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest
import yaml
from workflow_helpers import REPO, find_planted, snakemake

from radflow.cli import build_parser, main
from radflow.cli import workflow as wf
from radflow.demo import make_demo_cohort
from radflow.demo.masks import DICOM_MASK_PATIENTS
from radflow.errors import ConfigError
from radflow.io.atomic import write_tsv

# --- argument split --------------------------------------------------------------------------


@pytest.mark.parametrize(("tokens", "targets", "files", "entries", "profile", "rest"), [
    # the crash this fixes: Snakemake's --configfile takes every word after it
    (["--configfile", "a.yaml", "convert"], ["convert"], ["a.yaml"], [], None, []),
    (["convert", "--configfile", "a.yaml", "b.yaml", "--cores", "4"],
     ["convert"], ["a.yaml", "b.yaml"], [], None, ["--cores", "4"]),
    (["--configfile=a.yaml", "pair", "extract"], ["pair", "extract"], ["a.yaml"], [], None, []),
    (["--config", "cohort=x", "dicom_root=/data/Doe John", "extract", "-n"],
     ["extract"], [], ["cohort=x", "dicom_root=/data/Doe John"], None, ["-n"]),
    (["-C", "strict=true", "--config=cohort=y"], [], [], ["strict=true", "cohort=y"], None, []),
    (["--profile", "slurm", "-q", "convert", "--jobs", "5"],
     ["convert"], [], [], "slurm", ["-q", "--jobs", "5"]),
    (["--profile=cfg/p", "merge"], ["merge"], [], [], "cfg/p", []),
    # options that take rule names keep the stage names after them, as in Snakemake
    (["merge", "--forcerun", "crawl"], ["merge"], [], [], None, ["--forcerun", "crawl"]),
    (["-R", "crawl", "extract", "--cores", "2", "pair"],
     ["pair"], [], [], None, ["-R", "crawl", "extract", "--cores", "2"]),
    (["--until", "convert"], [], [], [], None, ["--until", "convert"]),
    # a file target and option values stay where they are
    (["results/c/merge/dataset.csv", "--cores", "3"], [], [], [], None,
     ["results/c/merge/dataset.csv", "--cores", "3"]),
    (["--set-resources", "crawl:mem_mb=9000", "crawl"], ["crawl"], [], [], None,
     ["--set-resources", "crawl:mem_mb=9000"]),
])
def test_split_args(tokens, targets, files, entries, profile, rest) -> None:
    inv = wf.split_args(tokens)
    assert list(inv.targets) == targets
    assert list(inv.configfiles) == files
    assert list(inv.config) == entries
    assert inv.profile == profile
    assert list(inv.rest) == rest
    assert not inv.help


def test_split_args_help_and_errors() -> None:
    assert wf.split_args(["convert", "--help"]).help
    assert wf.split_args(["-h"]).help
    with pytest.raises(ConfigError, match="--profile needs a value"):
        wf.split_args(["--profile"])
    with pytest.raises(ConfigError, match="--profile needs a value"):
        wf.split_args(["--profile", "--cores", "2"])


@pytest.mark.parametrize(("rest", "runs"), [
    ([], True), (["--cores", "2"], True), (["-n"], False), (["--dry-run"], False),
    (["--lint"], False), (["--unlock"], False), (["--list-rules"], False),
    (["--summary"], False), (["--forcerun", "crawl"], True)])
def test_runs_jobs(rest, runs) -> None:
    assert wf.Invocation(rest=tuple(rest)).runs_jobs == runs


def test_option_values() -> None:
    inv = wf.Invocation(rest=("-d", "work", "--snakefile=S", "--cores", "2"))
    assert inv.option("-d", "--directory") == "work"
    assert inv.option("-s", "--snakefile") == "S"
    assert inv.option("--jobs") is None
    assert wf.workdir_of(inv) == Path("work")
    assert wf.workdir_of(wf.Invocation()) == Path(".")


# --- config ----------------------------------------------------------------------------------

CONFIG_ENTRIES = [
    ("key=3", 3), ("key=0.25", 0.25), ("key=True", True), ("key=False", False),
    ("key=true", "true"), ("key=text", "text"), ("key=/data/a b/c", "/data/a b/c"),
    ("key=", None), ("key={a: 1, b: [x, y]}", {"a": "1", "b": ["x", "y"]}), ("key=a=b", "a=b"),
    ("dicom_root=/data/lung", "/data/lung"), ("max-x=1e3", 1000.0),
]
BAD_ENTRIES = ["novalue", "1k=2", "=3", "a.b=1", "k=1"]  # Snakemake's keys have 2+ characters


@pytest.mark.parametrize(("entry", "value"), CONFIG_ENTRIES)
def test_config_entries_read_as_snakemake_reads_them(entry, value) -> None:
    assert wf.parse_config_entries([entry]) == {entry.split("=")[0]: value}


@pytest.mark.parametrize("entry", BAD_ENTRIES)
def test_bad_config_entries(entry) -> None:
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        wf.parse_config_entries([entry])


@pytest.mark.slow  # importing snakemake.cli takes seconds
def test_config_entries_agree_with_snakemake() -> None:
    from snakemake.cli import parse_config

    for entry, _ in CONFIG_ENTRIES:
        assert wf.parse_config_entries([entry]) == parse_config([entry]), entry
    for entry in BAD_ENTRIES:
        with pytest.raises(ValueError):
            parse_config([entry])


def test_cohort_config_merges_like_snakemake(tmp_path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("cohort: a\nmerge: {max_failed_fraction: 0.5}\n"
                     "crawl: {include_derived: true}\n")
    second.write_text("merge: {max_unmatched_fraction: 0.1}\n")
    inv = wf.Invocation(configfiles=(str(first), str(second)), config=("cohort=b", "strict=True"))
    config = wf.cohort_config(REPO, inv)
    assert config.user == {"cohort": "b", "strict": True, "crawl": {"include_derived": True},
                           "merge": {"max_failed_fraction": 0.5, "max_unmatched_fraction": 0.1}}
    defaults = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert config.full["merge"] == config.user["merge"]
    assert config.full["crawl"] == {**defaults["crawl"], "include_derived": True}
    assert config.full["geometry"] == defaults["geometry"]
    assert wf.results_folder(config.full, Path("w")) == Path("w/results/b")


@pytest.mark.parametrize("content", ["- a\n- b\n", "a: [\n"])
def test_bad_config_file(tmp_path, content) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=r"c\.yaml"):
        wf.read_config_file(path)
    with pytest.raises(ConfigError, match=r"missing\.yaml"):
        wf.read_config_file(tmp_path / "missing.yaml")


def test_derived_config_has_a_neutral_name_and_private_mode(tmp_path) -> None:
    user = {"dicom_root": "/archive/Kowalski_Anna", "cohort": "x"}
    path = wf.write_derived_config(user, tmp_path)
    assert re.fullmatch(r"config-[0-9a-f]{12}\.yaml", path.name)
    assert path.parent == tmp_path / ".radflow" / "run"
    assert "Kowalski" not in path.as_posix().replace(str(tmp_path), "")
    assert yaml.safe_load(path.read_text()) == user
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    assert wf.write_derived_config(dict(reversed(user.items())), tmp_path) == path
    assert wf.write_derived_config({**user, "cohort": "y"}, tmp_path) != path


def test_profiles(tmp_path) -> None:
    assert wf.profile_dir(REPO, None) == REPO / "config" / "profiles" / "default"
    assert wf.profile_dir(REPO, "slurm") == REPO / "config" / "profiles" / "slurm"
    assert wf.profile_dir(REPO, str(tmp_path)) == tmp_path.resolve()
    with pytest.raises(ConfigError, match="default, slurm"):
        wf.profile_dir(REPO, "nonesuch")


def test_snakemake_command_puts_targets_first_and_paths_in_a_file(tmp_path) -> None:
    inv = wf.split_args(["--configfile", "c.yaml", "convert", "--cores", "2",
                         "--config", "dicom_root=/archive/Kowalski_Anna"])
    derived = tmp_path / ".radflow" / "run" / "config-0123456789ab.yaml"
    cmd = wf.snakemake_command(REPO, inv, derived, ["--no-hooks"])
    assert cmd[:3] == [sys.executable, "-m", "snakemake"]
    assert cmd[3:6] == ["-s", str(REPO / "Snakefile"), "convert"]
    assert cmd[cmd.index("--workflow-profile") + 1] == str(REPO / "config/profiles/default")
    configfile = [c for c in cmd if c.startswith("--configfile")]
    assert len(configfile) == 1 and configfile[0].startswith("--configfile=")
    assert configfile[0].endswith("config-0123456789ab.yaml")
    assert cmd[-3:] == ["--no-hooks", "--cores", "2"]
    assert not any("Kowalski" in c or c == "--config" for c in cmd)
    mine = wf.split_args(["-s", "other/Snakefile", "--workflow-profile", "p"])
    cmd = wf.snakemake_command(REPO, mine, None)
    assert cmd.count("-s") == 1 and cmd.count("--workflow-profile") == 1
    assert not any(c.startswith("--configfile") for c in cmd)


def test_the_workflow_is_found() -> None:
    assert wf.repository() == REPO
    assert wf.repository(str(REPO / "Snakefile")) == REPO
    with pytest.raises(ConfigError, match="no such file"):
        wf.repository("nowhere/Snakefile")


class _FakeSnakemake:
    """Stands in for subprocess.Popen in radflow.cli.run: records the command, exits with
    ``code``."""

    calls: ClassVar[list[list[str]]] = []
    code = 0

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        _FakeSnakemake.calls.append(cmd)
        assert Path(env["PATH"].split(":")[0]) == Path(sys.executable).parent

    def wait(self) -> int:
        return _FakeSnakemake.code


@pytest.mark.parametrize(("extra", "code", "summary"), [
    ([], 0, "radflow: no results yet in"), ([], 1, "the run stopped with an error"),
    (["-n"], 0, None),
    (["--lint"], 0, None)])
def test_run_command_and_summary(tmp_path, monkeypatch, capsys, extra, code, summary) -> None:
    import radflow.cli.run as run_module

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run_module.subprocess, "Popen", _FakeSnakemake)
    _FakeSnakemake.calls, _FakeSnakemake.code = [], code
    (tmp_path / "dicom").mkdir()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"cohort: lung\nmerge: {{max_failed_fraction: 0.5}}\ndicom_root: {tmp_path}\n")
    assert main(["run", "--configfile", str(cfg), "convert", "--cores", "3", *extra,
                 "--config", "strict=True"]) == code
    (cmd,) = _FakeSnakemake.calls
    assert cmd[3:6] == ["-s", str(REPO / "Snakefile"), "convert"]
    assert cmd[-3 - len(extra):] == ["--no-hooks", "--cores", "3", *extra]
    (configfile,) = [c for c in cmd if c.startswith("--configfile=")]
    derived = yaml.safe_load(Path(configfile.split("=", 1)[1]).read_text())
    assert derived == {"cohort": "lung", "dicom_root": str(tmp_path), "strict": True,
                       "merge": {"max_failed_fraction": 0.5}}
    out = capsys.readouterr().out
    if summary is None:
        assert "radflow:" not in out
    else:
        assert summary in out and "results/lung/" in out


def test_run_stops_on_a_config_error_before_snakemake(tmp_path, monkeypatch, capsys) -> None:
    import radflow.cli.run as run_module

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run_module.subprocess, "Popen", _FakeSnakemake)
    _FakeSnakemake.calls = []
    assert main(["run", "--config", "dicom_rot=/x", "crawl"]) == 2
    assert _FakeSnakemake.calls == []
    assert "did you mean 'dicom_root'" in capsys.readouterr().err


# --- help ------------------------------------------------------------------------------------

RST = re.compile(r"``|:func:|:class:|:mod:|:attr:|:data:")


@pytest.mark.parametrize("command", [[], ["run"], ["check"], ["status"], ["demo"], ["filter"]])
def test_help_is_plain_text(command, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: radflow")
    assert not RST.search(text), text
    if not command:
        for sub in ("run", "check", "status", "demo", "filter"):
            assert re.search(rf"^\s+{sub}\s", text, re.M), sub


def test_run_help_after_a_stage(capsys) -> None:
    assert main(["run", "convert", "--help"]) == 0
    assert "Stage names" in capsys.readouterr().out


def test_unknown_arguments_of_other_commands_are_errors(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["status", "--cores", "2"])
    assert "unrecognized arguments: --cores" in capsys.readouterr().err


def test_every_subcommand_is_registered() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {"run", "check", "status", "demo", "filter"}


# --- status ----------------------------------------------------------------------------------

def test_status_of_a_results_folder(tmp_path, capsys, monkeypatch) -> None:
    res = tmp_path / "results" / "lung"
    write_tsv(res / "qc" / "run_summary.tsv", pd.DataFrame(
        [("crawl", "ok", 4), ("convert", "ok", 2), ("convert", "failed:missing-slice", 2)],
        columns=["stage", "status", "count"]))
    monkeypatch.chdir(tmp_path)
    assert main(["status", "results/lung"]) == 0
    out = capsys.readouterr().out
    assert "results in results/lung/" in out and "WARNING: convert: 2 of 4 failed" in out
    # the only cohort under ./results is found without naming it
    assert main(["status"]) == 0
    assert "results in results/lung/" in capsys.readouterr().out
    # the config file gives the folder and the limit
    cfg = tmp_path / "lung.yaml"
    cfg.write_text("cohort: lung\nmerge: {max_failed_fraction: 0.6}\n")
    assert main(["status", "--configfile", str(cfg)]) == 0
    assert "WARNING: convert" not in capsys.readouterr().out
    (tmp_path / "results" / "other").mkdir()
    assert main(["status"]) == 0  # lung is the only cohort with a run summary
    assert main(["status", "results/none"]) == 1
    assert "no results yet" in capsys.readouterr().out


def test_status_without_results(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["status"]) == 1
    assert "name a cohort's results folder" in capsys.readouterr().out


# --- check and run on a cohort (Snakemake) -----------------------------------------------------

#: Folders of the working directory that hold input paths by design: radflow's private folder
#: (source paths, the derived config files) and Snakemake's records of each job's input files
#: (metadata) and of the files a dry run looked at (iocache). README, "Keys and privacy".
PRIVATE = [".radflow", ".snakemake/metadata", ".snakemake/iocache"]


def _radflow(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(wf.snakemake_env())
    env.pop("RADFLOW_KEY_FILE", None)
    command = Path(sys.executable).parent / "radflow"  # the console script: radflow.cli:main
    return subprocess.run([str(command), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """A demo cohort under a folder named after a patient, and its config file."""
    base = tmp_path_factory.mktemp("cli")
    demo = make_demo_cohort(base / "Kowalski_Anna" / "demo", n_patients=4)
    cfg = base / "cohort.yaml"
    cfg.write_text(yaml.safe_dump({"cohort": "c", "dicom_root": str(demo.dicom_root),
                                   "sheet": str(demo.sheet), "clinical": str(demo.clinical)}))
    work = base / "work"
    work.mkdir()
    return demo, cfg, work


@pytest.mark.slow
def test_check_reports_the_cohort_and_writes_no_result(cohort) -> None:
    demo, cfg, work = cohort
    proc = _radflow(["check", "--configfile", str(cfg), "--config", "cohort=checked"], work)
    out = proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "config: valid" in out
    n_patients = 4 + len(DICOM_MASK_PATIENTS)
    assert re.search(rf"^crawl: {n_patients} patients, \d+ series", out, re.M), out
    clinical = pd.read_csv(demo.clinical)
    assert f"clinical: {len(clinical)} rows, {len(clinical) - 1} match" in out  # one unmatched
    assert re.search(r"^a run now would run \d+ jobs: crawl 1", out, re.M), out
    assert "results: results/checked/" in out
    assert not (work / "results").exists() and not (work / ".radflow" / "private").exists()
    assert not (work / ".radflow" / "key").exists()  # no key made for a check
    assert find_planted(work, demo.planted_phi, skip=PRIVATE) == []
    assert not [v for v in demo.planted_phi if len(v) >= 3 and v in out + proc.stderr]


@pytest.mark.slow
def test_check_names_a_bad_key(cohort) -> None:
    _, cfg, work = cohort
    proc = _radflow(["check", "--configfile", str(cfg), "--config", "crawl={include_derivd: 1}"],
                    work)
    assert proc.returncode == 2
    assert "crawl.include_derivd" in proc.stderr and "include_derived" in proc.stderr


@pytest.mark.slow
def test_run_a_stage_after_the_configfile_and_summary(cohort) -> None:
    demo, cfg, work = cohort
    proc = _radflow(["run", "--configfile", str(cfg), "crawl", "--cores", "1"], work)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "results in results/c/" in proc.stdout
    assert re.search(r"^  crawl\s+\d+", proc.stdout, re.M), proc.stdout
    assert (work / "results" / "c" / "crawl" / "series.tsv").is_file()
    assert not (work / "results" / "c" / "convert").exists()  # the stage only
    logs = list((work / ".snakemake" / "log").glob("*.log"))
    assert logs and "--configfile=.radflow/run/config-" in logs[0].read_text()
    assert find_planted(work, demo.planted_phi, skip=PRIVATE) == []
    assert any((work / ".snakemake" / "log").iterdir())
    # a dry run prints no summary; plain Snakemake's dry run does not run the hooks either
    dry = _radflow(["run", "--configfile", str(cfg), "-n"], work)
    assert dry.returncode == 0 and "results in" not in dry.stdout + dry.stderr
    plain = snakemake(work, ["-n", "--configfile", str(cfg)])
    assert "results in" not in plain.stdout + plain.stderr


@pytest.mark.slow
def test_a_failed_job_is_named_in_the_summary(tmp_path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text("subject\timage\tmask\nP1\tmissing.nii.gz\tmissing_mask.nii.gz\n")
    (tmp_path / "cfg.yaml").write_text(f"cohort: broken\nsheet: {sheet}\n"
                                       "geometry: {min_slices: 3}\n")
    proc = snakemake(work, ["crawl", "--cores", "1", "--configfile",
                            str(tmp_path / "cfg.yaml"), "--config", "rois={include: ['[']}"],
                     check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "radflow: the run stopped with an error" in out, out[-3000:]
    assert re.search(r"failed job: results/broken/logs/crawl\.log: \w+Error: ", out), out[-3000:]


# --- demo ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("verbose", "shown"), [([], False), (["-v"], True)])
def test_demo_is_quiet_unless_verbose(tmp_path, caplog, verbose, shown) -> None:
    import logging

    highdicom = logging.getLogger("highdicom")
    level = highdicom.level
    caplog.set_level(logging.INFO)
    try:
        assert main([*verbose, "demo", str(tmp_path / "demo"), "--patients", "4"]) == 0
    finally:
        highdicom.setLevel(level)
    names = {r.name.split(".")[0] for r in caplog.records}
    assert "radflow" in names  # the one line saying where the demo is
    assert ("highdicom" in names) == shown
