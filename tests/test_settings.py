"""Settings: frozen dataclasses from the validated config; typos are errors."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from radflow.errors import ConfigError
from radflow.settings import (
    CrawlSettings,
    GeometrySettings,
    PairSettings,
    RoiSettings,
    check_retired_keys,
    crawl_settings,
    from_mapping,
)


def test_nested_settings_and_tuples() -> None:
    s = from_mapping(CrawlSettings, {"image_modalities": ["CT"],
                                     "geometry": {"min_slices": 5}}, section="crawl")
    assert s.image_modalities == ("CT",)
    assert s.geometry == GeometrySettings(min_slices=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.image_modalities = ("MR",)  # type: ignore[misc]


def test_unknown_key_is_an_error_naming_the_section() -> None:
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) in 'crawl.geometry': min_slice"):
        from_mapping(CrawlSettings, {"geometry": {"min_slice": 5}}, section="crawl")
    with pytest.raises(ConfigError, match="resample_masks"):
        from_mapping(PairSettings, {"resample_masks": True})


def test_crawl_settings_read_the_shared_geometry_section() -> None:
    s = crawl_settings({"fallback_modalities": ["CT"]}, {"gantry_tilt": "resample"})
    assert s.fallback_modalities == ("CT",)
    assert s.geometry == GeometrySettings(gantry_tilt="resample")
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) in 'geometry': min_slice"):
        crawl_settings({}, {"min_slice": 5})


@pytest.mark.parametrize(("config", "old", "new"), [
    ({"laws": [{"kernel": "L5E5E5"}]}, "laws", "extract.image_types"),
    ({"laws": []}, "laws", "extract.image_types"),
    ({"crawl": {"geometry": {"min_slices": 2}}}, "crawl.geometry",
     r"geometry \(a top-level section"),
    ({"pair": {"fallback_modalities": ["CT"]}}, "pair.fallback_modalities",
     "crawl.fallback_modalities"),
])
def test_retired_keys_name_the_new_key(config: dict[str, object], old: str, new: str) -> None:
    with pytest.raises(ConfigError, match=f"'{old}' was renamed .*; use {new}"):
        check_retired_keys(config)
    if old == "crawl.geometry":
        with pytest.raises(ConfigError, match=r"use geometry \(a top-level section"):
            crawl_settings(config["crawl"], {})  # type: ignore[index,arg-type]


def test_current_keys_pass_the_retired_key_check() -> None:
    check_retired_keys({"geometry": {}, "crawl": {"fallback_modalities": []}, "pair": {},
                        "extract": {"image_types": []}})


@pytest.mark.parametrize(("cls", "values", "message"), [
    (GeometrySettings, {"gantry_tilt": "tilt"},
     "geometry.gantry_tilt must be one of fail, resample"),
    (GeometrySettings, {"uneven_spacing": "x"}, "geometry.uneven_spacing must be one of"),
    (RoiSettings, {"unmapped": "hide"}, "rois.unmapped must be one of keep, drop"),
    (RoiSettings, {"contours_outside_image": "clip"}, "rois.contours_outside_image must be one of"),
])
def test_policies_are_checked_when_built(cls: type, values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_mapping(cls, values)


def test_the_snakefile_rejects_a_retired_key_before_the_schema(tmp_path: Path,
                                                                 repo_root: Path) -> None:
    snakemake = Path(sys.executable).with_name("snakemake")
    run = subprocess.run([str(snakemake), "-n", "-s", str(repo_root / "Snakefile"), "--directory",
                          str(tmp_path), "--config", "laws=[]"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode != 0
    assert "config key 'laws' was renamed in radflow 0.3.0; use extract.image_types" in \
        run.stdout + run.stderr
