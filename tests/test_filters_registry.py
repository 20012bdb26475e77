"""The filter registry: every filter builds from a config mapping through the one settings path."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk

from radflow.errors import ConfigError
from radflow.filters.laws import LawsSettings
from radflow.filters.log import LogSettings
from radflow.filters.mean import MeanSettings
from radflow.filters.registry import FILTERS, build_filter
from radflow.filters.wavelet import WaveletSettings
from radflow.radiomics_adapter import ImageTypeSpec

CASES: list[tuple[dict[str, Any], object, str]] = [
    ({"filter": "laws", "kernel": "l5e5e5", "rotation_invariant": True, "energy_delta": 7},
     LawsSettings("L5E5E5", True, "max", 7), "laws-L5E5E5-ri-max-e7"),
    ({"filter": "mean", "support": 5}, MeanSettings(5), "mean-s5"),
    ({"filter": "mean", "support": 3, "dimensions": "2d"}, MeanSettings(3, dimensions="2d"),
     "mean-s3-2d"),
    ({"filter": "log", "sigma_mm": 1.5}, LogSettings(1.5), "ibsi-log-s1-5mm"),
    ({"filter": "log", "sigma_mm": 3, "truncate": 3.0}, LogSettings(3.0, 3.0), "ibsi-log-s3mm"),
    ({"filter": "wavelet", "wavelet": "db3", "band": "hhh", "level": 2,
      "rotation_invariant": True}, WaveletSettings("db3", "HHH", 2, True),
     "ibsi-wavelet-db3-HHH-l2-ri-mean"),
    ({"filter": "wavelet", "wavelet": "bior1.3", "band": "LH", "dimensions": "2d"},
     WaveletSettings("bior1.3", "LH", dimensions="2d"), "ibsi-wavelet-bior1-3-LH-l1"),
]


def test_every_filter_is_registered_and_tested() -> None:
    assert set(FILTERS) == {"laws", "mean", "log", "wavelet"}
    assert {c[0]["filter"] for c in CASES} == set(FILTERS)


@pytest.mark.parametrize(("values", "settings", "name"), CASES)
def test_filters_build_from_a_mapping(values: dict[str, Any], settings: object, name: str) -> None:
    built = build_filter(values, section="extract.image_types[0]")
    assert built.settings == settings
    assert built.name == name
    # a valid PyRadiomics custom image type name (not reserved, no "_")
    ImageTypeSpec(name=built.name, make=lambda image: image)


def test_built_filter_filters_an_image() -> None:
    image = sitk.GetImageFromArray(np.arange(7 * 8 * 9, dtype=np.float64).reshape(7, 8, 9))
    out = build_filter({"filter": "mean", "support": 1}, section="x").image(image)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(out), sitk.GetArrayFromImage(image))


@pytest.mark.parametrize(("values", "message"), [
    ({"filter": "gabor", "sigma_mm": 1}, r"extract.image_types\[2\].filter: 'gabor' is not a "
                                          "known filter; expected one of laws, log, mean, wavelet"),
    ({"support": 3}, r"extract.image_types\[2\].filter: None"),
    ({"filter": "mean", "support": 3, "sigma_mm": 1},
     r"unknown setting\(s\) in 'extract.image_types\[2\]': sigma_mm"),
    ({"filter": "log"}, r"missing setting\(s\) in 'extract.image_types\[2\]': sigma_mm"),
    ({"filter": "log", "sigma_mm": -1}, r"extract.image_types\[2\].sigma_mm: -1"),
    ({"filter": "wavelet", "wavelet": "nope", "band": "LLH"},
     r"extract.image_types\[2\].wavelet: 'nope'"),
    ({"filter": "laws", "kernel": "L5E5", "dimensions": "3d"},
     r"extract.image_types\[2\].kernel: 'L5E5' is not allowed"),
    ("laws", r"extract.image_types\[2\]: expected a mapping"),
])
def test_bad_entries_name_the_key(values: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_filter(values, section="extract.image_types[2]")
