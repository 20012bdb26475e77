"""Typed, frozen settings built once from the validated configuration.

The Snakefile validates ``config`` against ``config/schema/config.schema.yaml`` (which also fills
defaults) and hands each rule only its own section through ``params:``. Scripts turn that mapping
into one of these dataclasses with :func:`from_mapping`, which rejects unknown keys, so a typo in
a config key is an error instead of a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_type_hints

from radflow.errors import ConfigError

T = TypeVar("T")


def from_mapping(cls: type[T], values: Mapping[str, Any] | None, *, section: str = "") -> T:
    """Build the frozen dataclass ``cls`` from ``values``; unknown keys are a :class:`ConfigError`.

    Lists become tuples so that the result is hashable and immutable.
    """
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        where = f" in '{section}'" if section else ""
        raise ConfigError(f"unknown setting(s){where}: {', '.join(unknown)}; "
                          f"expected some of: {', '.join(sorted(names))}")
    hints = get_type_hints(cls)
    converted: dict[str, Any] = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
            value = from_mapping(hint, value, section=f"{section}.{name}".strip("."))
        elif isinstance(value, list):
            value = tuple(value)
        converted[name] = value
    return cls(**converted)


@dataclass(frozen=True)
class GeometrySettings:
    """Rules a DICOM series must satisfy to become one regular volume.

    Attributes
    ----------
    slice_spacing_rtol
        Largest allowed relative deviation of any gap between adjacent slice positions (measured
        along the slice normal) from the median gap. 0.01 = 1 %.
    orientation_atol
        Largest allowed absolute difference between ImageOrientationPatient direction cosines of
        the slices of one series.
    min_slices
        Series with fewer slices are excluded (``excluded:too-few-slices``).
    """

    slice_spacing_rtol: float = 0.01
    orientation_atol: float = 1e-4
    min_slices: int = 3


@dataclass(frozen=True)
class CrawlSettings:
    """How the DICOM root and the cohort sheet are read.

    Attributes
    ----------
    image_modalities
        Modalities converted to volumes; image series of other modalities are excluded with
        ``excluded:modality-<name>``.
    """

    image_modalities: tuple[str, ...] = ("CT", "MR", "PT")
    geometry: GeometrySettings = field(default_factory=GeometrySettings)


@dataclass(frozen=True)
class PairSettings:
    """Image/mask pairing rules.

    Attributes
    ----------
    grid_atol_mm
        Image and mask grids count as the same when origins and voxel spacings agree within this
        many mm and direction cosines within ``grid_atol_mm / 100``.
    resample_mask
        When the grids differ: ``True`` resamples the mask onto the image grid with nearest
        neighbour interpolation (recorded in ``pairs.tsv``); ``False`` fails the pair.
    min_voxels
        Masks with fewer voxels of the label fail with ``failed:mask-too-small``.
    """

    grid_atol_mm: float = 1e-3
    resample_mask: bool = False
    min_voxels: int = 1


@dataclass(frozen=True)
class MergeSettings:
    """How feature tables are joined with the clinical table.

    Attributes
    ----------
    max_unmatched_fraction
        The run fails when more than this fraction of the cases, or of the clinical rows, find no
        partner.
    """

    max_unmatched_fraction: float = 0.2
