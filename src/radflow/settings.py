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

#: What to do with a series that breaks a geometry rule that resampling can repair.
GEOMETRY_POLICIES = ("fail", "resample")


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
        Series with fewer slices fail (``failed:too-few-slices``: not a volume).
    gantry_tilt
        ``"fail"`` (default): slices shifted in-plane along the stack (tilted gantry, sheared
        stack) fail with ``failed:gantry-tilt``. ``"resample"``: they are resampled onto an
        orthogonal grid (linear interpolation), recorded in the sidecar and in ``series.tsv``.
    uneven_spacing
        ``"fail"`` (default): uneven slice gaps fail with ``failed:uneven-spacing``.
        ``"resample"``: the slices are resampled to equidistant positions (linear
        interpolation along the normal), recorded as for ``gantry_tilt``. A gap of about k times
        the usual spacing (k >= 2) is a missing slice and always fails.
    """

    slice_spacing_rtol: float = 0.01
    orientation_atol: float = 1e-4
    min_slices: int = 3
    gantry_tilt: str = "fail"
    uneven_spacing: str = "fail"

    def __post_init__(self) -> None:
        for name in ("gantry_tilt", "uneven_spacing"):
            if getattr(self, name) not in GEOMETRY_POLICIES:
                raise ConfigError(f"crawl.geometry.{name} must be one of "
                                  f"{', '.join(GEOMETRY_POLICIES)}, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class CrawlSettings:
    """How the DICOM root and the cohort sheet are read.

    Attributes
    ----------
    image_modalities
        Modalities converted to volumes; image series of other modalities are excluded with
        ``excluded:modality-<name>``.
    include_derived
        ``False`` (default): images whose ImageType value 1 is DERIVED are excluded
        (``excluded:derived``), as are Secondary Capture objects
        (``excluded:secondary-capture``). ``True`` converts them like any other image.
    """

    image_modalities: tuple[str, ...] = ("CT", "MR", "PT")
    include_derived: bool = False
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
    fallback_modalities
        When a SEG/RTSTRUCT's references match no image series, the fallbacks (same frame of
        reference, then nearest common folder) consider only image series of these modalities
        (empty: every image modality). Used by the crawl.
    """

    grid_atol_mm: float = 1e-3
    resample_mask: bool = False
    min_voxels: int = 1
    fallback_modalities: tuple[str, ...] = ()


#: ``rois.unmapped`` values: what happens to ROI names no ``rois.map`` entry matches.
UNMAPPED_POLICIES = ("keep", "drop")
#: ``rois.contours_outside_image`` values.
OUTSIDE_POLICIES = ("fail", "skip")


@dataclass(frozen=True)
class RoiSettings:
    """ROI name rules and how SEG/RTSTRUCT masks are read (config section ``rois``).

    Names are matched case-insensitively against whole names (``re.fullmatch``) after cleaning
    (:func:`radflow.text.clean_text`); see :mod:`radflow.rois`.

    Attributes
    ----------
    include
        Regular expressions; when not empty, an ROI name must match one of them.
    exclude
        Regular expressions; an ROI name matching one is excluded (checked first).
    map
        Canonical name -> regular expression (or list of them), e.g. ``GTV: "GTV.*|gtv_primary"``.
        The first entry (in file order) whose expression matches gives the canonical name.
        Stored as ``((canonical, (regex, ...)), ...)``.
    unmapped
        ``"keep"``: an ROI no map entry matches keeps its cleaned source name; ``"drop"``: it
        is not paired (``excluded:roi-unmapped``). Either way it is listed as unmatched in
        ``pair/roi_names.tsv``.
    fractional_threshold
        FRACTIONAL SEG segments: a voxel is inside when its fraction is >= this value.
    contours_outside_image
        ``"fail"``: an RTSTRUCT contour (or SEG voxel) outside the image fails the ROI's pair
        (``failed:roi-outside-image``); ``"skip"``: it is left out and counted in ``mask_qc``.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    map: tuple[tuple[str, tuple[str, ...]], ...] = ()
    unmapped: str = "keep"
    fractional_threshold: float = 0.5
    contours_outside_image: str = "fail"

    def __post_init__(self) -> None:
        raw: Any = self.map
        items = raw.items() if isinstance(raw, Mapping) else raw
        normalised = tuple((str(canonical), (patterns,) if isinstance(patterns, str)
                            else tuple(str(p) for p in patterns))
                           for canonical, patterns in items)
        object.__setattr__(self, "map", normalised)
        for name, allowed in (("unmapped", UNMAPPED_POLICIES),
                              ("contours_outside_image", OUTSIDE_POLICIES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"rois.{name} must be one of {', '.join(allowed)}, "
                                  f"got {getattr(self, name)!r}")
        if not 0 < self.fractional_threshold <= 1:
            raise ConfigError("rois.fractional_threshold must be in (0, 1], got "
                              f"{self.fractional_threshold!r}")


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
