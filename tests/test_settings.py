"""Settings: frozen dataclasses from the validated config; typos are errors."""

from __future__ import annotations

import dataclasses

import pytest

from radflow.errors import ConfigError
from radflow.settings import CrawlSettings, GeometrySettings, PairSettings, from_mapping


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
