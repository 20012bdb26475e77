"""Configuration errors are short (the key, what is wrong, the nearest valid key) and --config text
is read as numbers and booleans where the schema asks for them (radflow.config_check)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from snakemake.cli import parse_config

from radflow.config_check import (
    VERBOSE_ENV,
    check_config,
    check_config_or_exit,
    coerce_config_text,
    load_schema,
)
from radflow.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"


def _defaults() -> dict[str, Any]:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text("utf-8"))


def _with(**sections: Any) -> dict[str, Any]:
    """config/config.yaml updated like Snakemake does (nested mappings merged)."""
    config = _defaults()
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def _message(config: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        check_config(config, SCHEMA)
    return str(info.value)


def test_the_default_config_passes_and_defaults_are_filled() -> None:
    config = _defaults()
    check_config(config, SCHEMA)
    assert config == _defaults()
    sparse: dict[str, Any] = {"geometry": {"min_slices": 5}}
    check_config(sparse, SCHEMA)
    assert sparse["geometry"] == {**_defaults()["geometry"], "min_slices": 5}
    assert sparse["convert"] == _defaults()["convert"] and sparse["strict"] is False
    assert sparse["convert"]["scope"] == "paired" and sparse["convert"]["pet_units"] == "suv-bw"


@pytest.mark.parametrize(("config", "expected"), [
    (_with(dicom_rot="/x"), "unknown key 'dicom_rot' (did you mean 'dicom_root'?)"),
    (_with(geometry={"slice_spacing_rtl": 0.1}),
     "unknown key 'geometry.slice_spacing_rtl' (did you mean 'geometry.slice_spacing_rtol'?)"),
    (_with(min_slices=2), "unknown key 'min_slices' (did you mean 'geometry.min_slices'?)"),
    (_with(geometry={"min_slices": "three"}),
     "'geometry.min_slices' must be of type integer, got 'three'"),
    (_with(strict="maybe"), "'strict' must be of type boolean, got 'maybe'"),
    (_with(convert={"scope": "al"}),
     "'convert.scope' must be one of paired, all, got 'al' (did you mean 'all'?)"),
    (_with(extract={"image_types": [{"filter": "laws", "kernel": "L5E5E5", "pooling": "maxx"}]}),
     "'extract.image_types[0].pooling' must be one of max, mean, got 'maxx' (did you mean 'max'?)"),
    (_with(deid={"safe_private": [[9, "x", "ACME"]]}),
     "'deid.safe_private[0][1]' must be of type integer, got 'x'"),
    (_with(merge={"max_unmatched_fraction": 2}), "'merge.max_unmatched_fraction': 2 is greater"),
    (_with(**parse_config(["cohort=2024"])),
     "'cohort' must be of type string, got 2024 (snakemake --config read a number: quote it, "
     "--config 'cohort=\"2024\"')"),
])
def test_a_schema_violation_is_one_line_naming_the_key(config: dict[str, Any],
                                                       expected: str) -> None:
    message = _message(config)
    first, *rest = message.splitlines()
    assert first.startswith(expected)
    assert len(rest) == 1 and "RADFLOW_VERBOSE=1" in rest[0]
    assert "Failed validating" not in message and "$schema" not in message


def test_many_problems_are_counted_not_listed() -> None:
    config = _with(dicom_rot="x", sheeet="y", clinicl="z", cohort_name="w",
                   geometry={"min_slices": 0})
    lines = _message(config).splitlines()
    assert lines[0] == "5 problems:" and len(lines) == 5
    assert "2 more problem(s) not shown" in lines[-1]


def test_verbose_appends_the_full_report() -> None:
    with pytest.raises(ConfigError) as info:
        check_config(_with(dicom_rot="/x"), SCHEMA, verbose=True)
    assert "Additional properties are not allowed ('dicom_rot' was unexpected)" in str(info.value)


def test_a_retired_key_is_reported_first() -> None:
    assert "'laws' was renamed" in _message(_with(laws=[], dicom_rot="/x"))


def test_config_text_is_read_as_the_type_the_schema_wants() -> None:
    given = parse_config(["strict=true", "deidentify=true",
                          "geometry={slice_spacing_rtol: 0.05, min_slices: 2, gantry_tilt: fail}",
                          "extract={image_types: [{filter: laws, kernel: L5E5E5, energy_delta: "
                          "7, rotation_invariant: false}], threads: 2}",
                          "pair={resample_mask: true}"])
    assert given["geometry"]["slice_spacing_rtol"] == "0.05"   # what snakemake passes
    config = _with(**given)
    check_config(config, SCHEMA)
    assert config["strict"] is True and config["deidentify"] == "true"   # enum keeps text
    assert config["geometry"] == {**_defaults()["geometry"], "slice_spacing_rtol": 0.05,
                                  "min_slices": 2}
    assert config["extract"]["image_types"] == [{"filter": "laws", "kernel": "L5E5E5",
                                                 "energy_delta": 7,
                                                 "rotation_invariant": False}]
    assert config["extract"]["threads"] == 2 and config["pair"]["resample_mask"] is True


def test_text_that_is_not_of_the_wanted_type_is_left_alone() -> None:
    config = {"geometry": {"min_slices": "2.5", "slice_spacing_rtol": "true"}}
    original = copy.deepcopy(config)
    assert coerce_config_text(config, load_schema(SCHEMA)) == []
    assert config["geometry"]["min_slices"] == original["geometry"]["min_slices"]
    assert config["geometry"]["slice_spacing_rtol"] == "true"


def test_check_or_exit_prints_two_lines_and_exits(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    with pytest.raises(SystemExit) as info:
        check_config_or_exit(_with(dicom_rot="/x"), SCHEMA)
    assert info.value.code == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == ("radflow: config error: unknown key 'dicom_rot' "
                      "(did you mean 'dicom_root'?)") and len(err) == 2
    monkeypatch.setenv(VERBOSE_ENV, "1")
    with pytest.raises(ConfigError, match="Additional properties are not allowed"):
        check_config_or_exit(_with(dicom_rot="/x"), SCHEMA)


def _snakemake(tmp_path: Path, config: str, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
    (tmp_path / "cohort.yaml").write_text(config, "utf-8")
    snakemake = Path(sys.executable).with_name("snakemake")
    return subprocess.run([str(snakemake), "-n", "-s", str(REPO / "Snakefile"), "--directory",
                           str(tmp_path), "--configfile", str(tmp_path / "cohort.yaml")],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize(("config", "expected"), [
    ("dicom_rot: /data\n", "unknown key 'dicom_rot' (did you mean 'dicom_root'?)"),
    ("geometry:\n  min_slices: three\n",
     "'geometry.min_slices' must be of type integer, got 'three'"),
])
def test_snakemake_prints_a_few_lines(tmp_path: Path, config: str, expected: str) -> None:
    """What a user sees: Snakemake's own lines (the profile, the extended config file), then
    two lines of radflow text; no traceback, no schema dump."""
    proc = _snakemake(tmp_path, config, env={VERBOSE_ENV: ""})
    assert proc.returncode == 1
    radflow = [line for line in proc.stderr.splitlines() if line.startswith(("radflow:", "  "))]
    assert radflow[0] == f"radflow: config error: {expected}" and len(radflow) == 2
    assert len((proc.stdout + proc.stderr).splitlines()) <= 5
    assert "Traceback" not in proc.stderr and "Failed validating" not in proc.stderr


def test_snakemake_full_report_on_request(tmp_path: Path) -> None:
    proc = _snakemake(tmp_path, "dicom_rot: /data\n", env={VERBOSE_ENV: "1"})
    assert proc.returncode == 1
    assert "Failed validating 'additionalProperties'" in proc.stdout + proc.stderr
