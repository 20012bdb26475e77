"""radflow.reliability.controls: READII-style negative controls, voxel by voxel."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import SimpleITK as sitk

from radflow.errors import ConfigError, PairingError
from radflow.reliability.controls import (
    CONTROL_KINDS,
    CONTROL_REGIONS,
    NegativeControlSettings,
    control_name,
    negative_control,
    negative_controls,
)
from radflow.settings import from_mapping


def _pair(dtype: type = np.int16) -> tuple[sitk.Image, sitk.Image]:
    """12 × 10 × 8 image with distinct structure inside and outside a box ROI (label 2) and a
    second label (1) that is not the ROI."""
    rng = np.random.default_rng(0)
    values = rng.integers(-500, 500, (8, 10, 12)).astype(dtype)
    values[2:6, 3:7, 4:9] = rng.integers(1000, 1200, (4, 4, 5)).astype(dtype)
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.5, 0.6, 2.0))
    image.SetOrigin((1.0, 2.0, 3.0))
    labels = np.zeros(values.shape, np.uint8)
    labels[2:6, 3:7, 4:9] = 2
    labels[0, 0, :3] = 1
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(image)
    return image, mask


def _region(mask: sitk.Image, region: str) -> np.ndarray:
    roi = sitk.GetArrayFromImage(mask) == 2
    return {"roi": roi, "non-roi": ~roi, "full": np.ones_like(roi)}[region]


@pytest.mark.parametrize("region", CONTROL_REGIONS)
@pytest.mark.parametrize("kind", CONTROL_KINDS)
@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_control_definitions(kind: str, region: str, dtype: type) -> None:
    image, mask = _pair(dtype)
    out = negative_control(image, mask, kind, region, np.random.default_rng(1), label=2)
    before, after = sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(out)
    where = _region(mask, region)
    assert out.GetPixelID() == image.GetPixelID()
    assert (out.GetOrigin(), out.GetSpacing()) == (image.GetOrigin(), image.GetSpacing())
    assert np.array_equal(after[~where], before[~where])  # outside the region: untouched
    old, new = before[where], after[where]
    assert not np.array_equal(old, new)
    if kind == "shuffled":
        assert np.array_equal(np.sort(old), np.sort(new))
    elif kind == "randomised-sampled":
        assert np.isin(new, old).all()
        assert len(np.unique(new)) < len(np.unique(old))  # with replacement: repeats, gaps
    else:
        assert old.min() <= new.min() and new.max() <= old.max()
        if np.issubdtype(dtype, np.integer):
            assert len(np.unique(new)) > 0.5 * min(new.size, old.max() - old.min())
        else:
            assert not np.isin(new, old).any()  # continuous values, none copied


def test_randomised_integers_reach_both_ends() -> None:
    values = np.zeros((4, 4, 4), np.uint8)
    values[1:3, 1:3, 1:3] = [[[3, 4], [4, 4]], [[4, 4], [4, 5]]]
    image = sitk.GetImageFromArray(values)
    mask = sitk.GetImageFromArray((values > 0).astype(np.uint8))
    seen: set[int] = set()
    for seed in range(20):
        out = negative_control(image, mask, "randomised", "roi", np.random.default_rng(seed))
        seen |= set(sitk.GetArrayFromImage(out)[values > 0].tolist())
    assert seen == {3, 4, 5}


def test_controls_generator_is_deterministic_and_named() -> None:
    image, mask = _pair()
    settings = from_mapping(NegativeControlSettings,
                            {"kinds": ["shuffled", "randomised-sampled"],
                             "regions": ["non-roi", "roi"]}, section="negative_controls")
    made = negative_controls(image, mask, settings, pair_id="pair-1", label=2)
    assert inspect.isgenerator(made)
    first = list(made)
    again = list(negative_controls(image, mask, settings, pair_id="pair-1", label=2))
    other = list(negative_controls(image, mask, settings, pair_id="pair-2", label=2))
    assert [c.name for c in first] == ["shuffled-non-roi", "shuffled-roi",
                                       "randomised-sampled-non-roi", "randomised-sampled-roi"]
    for a, b, c in zip(first, again, other, strict=True):
        assert np.array_equal(sitk.GetArrayFromImage(a.image), sitk.GetArrayFromImage(b.image))
        assert not np.array_equal(sitk.GetArrayFromImage(a.image),
                                  sitk.GetArrayFromImage(c.image))
    assert NegativeControlSettings().names()[0] == control_name("shuffled", "roi")


def test_control_errors() -> None:
    image, mask = _pair()
    with pytest.raises(ConfigError):
        negative_control(image, mask, "blurred", "roi", np.random.default_rng(0))  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        negative_control(image, mask, "shuffled", "non_roi", np.random.default_rng(0))  # type: ignore[arg-type]
    with pytest.raises(PairingError) as info:
        negative_control(image, mask, "shuffled", "roi", np.random.default_rng(0), label=7)
    assert info.value.reason == "empty-mask"
    full = sitk.GetImageFromArray(np.full((3, 3, 3), 2, np.uint8))
    small = sitk.GetImageFromArray(np.zeros((3, 3, 3), np.int16))
    with pytest.raises(PairingError) as info:
        negative_control(small, full, "shuffled", "non-roi", np.random.default_rng(0), label=2)
    assert info.value.reason == "empty-region"
    for values in ({"kinds": ["shuffled", "shuffled"]}, {"regions": ["outside"]}, {"kinds": []}):
        with pytest.raises(ConfigError):
            from_mapping(NegativeControlSettings, values, section="negative_controls")
