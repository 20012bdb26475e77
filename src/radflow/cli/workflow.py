"""What ``radflow run`` and ``radflow check`` share: the workflow's location, the split of their
arguments into radflow's own and Snakemake's, the cohort's config and the derived config file.

Paths reach Snakemake only through a config file: ``--configfile`` files and ``--config``
entries are merged (as Snakemake merges them) into one file in ``.radflow/run/`` of the working
directory, named by its content's hash, and only that neutral name is on Snakemake's command
line, which Snakemake copies into ``.snakemake/log/``.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import radflow
from radflow.config_check import SCHEMA, check_config
from radflow.errors import ConfigError
from radflow.io.atomic import write_bytes_if_changed

#: Stage targets accepted anywhere among the arguments (the target rules of the Snakefile and
#: rules/*.smk; README, "Re-running one stage").
STAGES = ("all", "deidentify", "crawl", "convert", "pair", "extract", "qc", "protocol", "merge",
          "reliability", "analyse", "report", "sr")
#: Snakemake options whose values are rule or target names: stage names after them are theirs.
RULE_OPTIONS = frozenset({"--forcerun", "-R", "--until", "-U", "--omit-from", "-O",
                          "--prioritize", "-P", "--allowed-rules", "--cache",
                          "--preemptible-rules"})
#: Snakemake options after which no job runs (no summary is printed after them).
NO_RUN_OPTIONS = frozenset({
    "-n", "--dry-run", "--dryrun", "--lint", "-l", "--list", "--list-rules",
    "--list-target-rules", "--lt", "--list-changes", "--lc", "--list-input-changes", "--li",
    "--list-params-changes", "--lp", "--list-code-changes", "--list-untracked", "--lu",
    "--list-conda-envs", "-S", "--summary", "-D", "--detailed-summary", "--dag", "--rulegraph",
    "--filegraph", "--d3dag", "--unlock", "--cleanup-metadata", "--cm", "--cleanup-shadow",
    "--delete-all-output", "--delete-temp-output", "-t", "--touch", "--report", "--archive",
    "--containerize", "--export-cwl", "--print-compilation", "--generate-unit-tests",
    "--version", "-v", "-h", "--help", "--conda-create-envs-only", "--create-envs-only"})
#: Where the derived config files go, inside the working directory (git-ignored, private).
DERIVED_DIR = Path(".radflow") / "run"
_CONFIG_KEY = re.compile(r"[a-zA-Z_][\w-]*\w$")


@dataclass(frozen=True)
class Invocation:
    """The arguments of ``radflow run``/``check``, split (see :func:`split_args`).

    Attributes
    ----------
    targets
        Stage names, in order.
    configfiles
        ``--configfile`` values.
    config
        ``--config``/``-C`` entries (``KEY=VALUE``).
    profile
        ``--profile`` value (None: the default profile).
    rest
        Every other argument, in order, for Snakemake.
    help
        ``-h``/``--help`` was given.
    """

    targets: tuple[str, ...] = ()
    configfiles: tuple[str, ...] = ()
    config: tuple[str, ...] = ()
    profile: str | None = None
    rest: tuple[str, ...] = ()
    help: bool = False

    def option(self, *names: str) -> str | None:
        """The value of the Snakemake option ``names`` in :attr:`rest` (``-d X``,
        ``--directory=X``), None when absent."""
        for i, tok in enumerate(self.rest):
            name, eq, value = tok.partition("=")
            if name in names:
                if eq:
                    return value
                if i + 1 < len(self.rest):
                    return self.rest[i + 1]
        return None

    @property
    def runs_jobs(self) -> bool:
        """Whether Snakemake runs jobs with these options (not a dry run, lint, unlock, ...)."""
        return not any(tok.partition("=")[0] in NO_RUN_OPTIONS for tok in self.rest)


def split_args(tokens: Sequence[str]) -> Invocation:
    """Split ``radflow run``'s arguments into stage names, radflow's options and Snakemake's.

    A stage name (:data:`STAGES`) is a target wherever it stands, except right after an option
    that takes rule names (``--forcerun crawl``), as in Snakemake. ``--configfile`` takes the
    words after it up to the next option or stage name, ``--config`` the ``KEY=VALUE`` words.

    Raises
    ------
    ConfigError
        ``--profile`` without a value.
    """
    targets: list[str] = []
    files: list[str] = []
    entries: list[str] = []
    rest: list[str] = []
    profile = None
    show_help = False
    mode = ""  # what the words after the last option are: configfile | config | rule | ""
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        name, eq, value = tok.partition("=") if tok.startswith("--") else (tok, "", "")
        if tok in ("-h", "--help"):
            show_help, mode = True, ""
        elif name in ("--configfile", "--configfiles"):
            mode = "configfile"
            files += [value] if eq else []
        elif name in ("--config", "-C"):
            mode = "config"
            entries += [value] if eq else []
        elif name == "--profile":
            if not eq:
                i += 1
                if i == len(tokens) or tokens[i].startswith("-"):
                    raise ConfigError("--profile needs a value: default, slurm or a folder")
                value = tokens[i]
            profile, mode = value, ""
        elif tok.startswith("-") and len(tok) > 1:
            mode = "rule" if name in RULE_OPTIONS else ""
            rest.append(tok)
        elif mode == "configfile" and tok not in STAGES:
            files.append(tok)
        elif mode == "config" and "=" in tok:
            entries.append(tok)
        elif tok in STAGES and mode != "rule":
            targets.append(tok)
            mode = ""
        else:
            rest.append(tok)
        i += 1
    return Invocation(tuple(targets), tuple(files), tuple(entries), profile, tuple(rest),
                      show_help)


def repository(snakefile: str | None = None) -> Path:
    """The folder of the workflow's Snakefile: ``snakefile``'s folder, else the checkout this
    radflow is installed from (``pip install -e .``).

    Raises
    ------
    ConfigError
        When no Snakefile is found.
    """
    if snakefile:
        path = Path(snakefile)
        if not path.is_file():
            raise ConfigError(f"--snakefile {snakefile}: no such file")
        return path.resolve().parent
    repo = Path(radflow.__file__).resolve().parents[2]
    if not (repo / "Snakefile").is_file():
        raise ConfigError("the radflow workflow (its Snakefile) is not beside this radflow "
                          "installation: install radflow from its repository "
                          "(pip install -e .), or pass --snakefile")
    return repo


def profile_dir(repo: Path, profile: str | None) -> Path:
    """The workflow profile folder: ``config/profiles/<profile>`` or the folder ``profile``.

    Raises
    ------
    ConfigError
        When neither exists.
    """
    name = profile or "default"
    shipped = repo / "config" / "profiles" / name
    if "/" not in name and shipped.is_dir():
        return shipped
    if Path(name).expanduser().is_dir():
        return Path(name).expanduser().resolve()
    known = sorted(p.name for p in (repo / "config" / "profiles").iterdir() if p.is_dir())
    raise ConfigError(f"--profile {name}: not a profile of config/profiles/ "
                      f"({', '.join(known)}) nor a folder")


def merge_config(config: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Update ``config`` with ``overrides`` recursively (as Snakemake merges config files)."""
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(config.get(key), dict):
            merge_config(config[key], value)
        else:
            config[key] = dict(value) if isinstance(value, Mapping) else value
    return config


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A YAML (or JSON) config file as a mapping.

    Raises
    ------
    ConfigError
        When the file is missing, unreadable or not a mapping.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            loaded = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path}: expected a mapping of keys, got "
                          f"{type(loaded).__name__}")
    return loaded


def parse_config_entries(entries: Sequence[str]) -> dict[str, Any]:
    """``--config KEY=VALUE`` entries as Snakemake reads them (int, float, True/False, YAML text
    read without type conversion, else the string; an empty value is None).

    Raises
    ------
    ConfigError
        An entry without ``=`` or whose key is not an identifier.
    """
    config: dict[str, Any] = {}
    for entry in entries:
        key, eq, text = entry.partition("=")
        if not eq or not _CONFIG_KEY.match(key):
            raise ConfigError(f"--config {entry!r}: expected KEY=VALUE with an identifier KEY")
        config[key] = None if text == "" else _config_value(text)
    return config


def _config_value(text: str) -> Any:
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    if text in ("True", "False"):
        return text == "True"
    try:
        return yaml.load(text, Loader=yaml.BaseLoader)
    except yaml.YAMLError:
        return text


@dataclass(frozen=True)
class CohortConfig:
    """The user's config (config files + ``--config``) and the full one (with the defaults)."""

    user: dict[str, Any]
    full: dict[str, Any]


def cohort_config(repo: Path, inv: Invocation) -> CohortConfig:
    """Merge ``config/config.yaml``, the ``--configfile`` files and the ``--config`` entries."""
    user: dict[str, Any] = {}
    for path in inv.configfiles:
        merge_config(user, read_config_file(path))
    merge_config(user, parse_config_entries(inv.config))
    full = merge_config(read_config_file(repo / "config" / "config.yaml"), user)
    return CohortConfig(user, full)


def checked_config(repo: Path, config: CohortConfig) -> dict[str, Any]:
    """The full config after the Snakefile's own check (:func:`radflow.config_check.check_config`:
    retired keys, ``--config`` text, schema; defaults filled), as a copy.

    Raises
    ------
    ConfigError
        Naming the key and the rule broken.
    """
    full = copy.deepcopy(config.full)
    check_config(full, repo / SCHEMA)
    return full


def write_derived_config(user: Mapping[str, Any], workdir: Path) -> Path:
    """Write ``user`` to ``<workdir>/.radflow/run/config-<hash>.yaml``; return the path.

    The name holds nothing but a hash of the content, so that the command line Snakemake logs
    names no patient even when the paths inside do.
    """
    data = yaml.safe_dump(dict(user), sort_keys=True, allow_unicode=True).encode("utf-8")
    path = workdir / DERIVED_DIR / f"config-{hashlib.sha256(data).hexdigest()[:12]}.yaml"
    write_bytes_if_changed(path, data)
    return path


def results_folder(full: Mapping[str, Any], workdir: Path) -> Path:
    """``<results_dir>/<cohort>`` of the config, inside ``workdir`` when relative."""
    return workdir / str(full.get("results_dir") or "results") / str(full.get("cohort")
                                                                       or "default")


def snakemake_command(repo: Path, inv: Invocation, derived: Path | None,
                      extra: Sequence[str] = ()) -> list[str]:
    """``python -m snakemake`` with the Snakefile, the stage names first (no option before them
    can take them as its values), the workflow profile, the derived config file, ``extra``,
    then every other argument as given.

    The config file is given as ``--configfile=FILE``: in that form the option takes exactly
    one value, so a word after it stays a target."""
    cmd = [sys.executable, "-m", "snakemake"]
    if inv.option("-s", "--snakefile") is None:
        cmd += ["-s", str(repo / "Snakefile")]
    cmd += list(inv.targets)
    if inv.option("--workflow-profile") is None:
        cmd += ["--workflow-profile", str(profile_dir(repo, inv.profile))]
    if derived is not None:
        cmd.append(f"--configfile={os.path.relpath(derived)}")
    return cmd + list(extra) + list(inv.rest)


def snakemake_env() -> dict[str, str]:
    """The environment for Snakemake: this Python's ``bin`` first on PATH (its jobs' tools)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass(frozen=True)
class Prepared:
    """A subcommand's invocation with its repository, working folder and checked config."""

    inv: Invocation
    repo: Path
    workdir: Path
    config: CohortConfig
    full: dict[str, Any]


def prepare(inv: Invocation) -> Prepared:
    """Find the repository and working folder of ``inv`` and check its config (a config error
    raises :class:`~radflow.errors.ConfigError` with one message, before Snakemake starts)."""
    repo = repository(inv.option("-s", "--snakefile"))
    workdir = workdir_of(inv)
    config = cohort_config(repo, inv)
    return Prepared(inv, repo, workdir, config, checked_config(repo, config))


def workdir_of(inv: Invocation) -> Path:
    """Snakemake's working directory: ``--directory``/``-d``, else the current one."""
    return Path(inv.option("-d", "--directory") or ".")
