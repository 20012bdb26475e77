"""Typed, frozen settings built once from the validated configuration.

The Snakefile checks ``config`` once (:func:`radflow.config_check.check_config`: retired keys
first, :func:`check_retired_keys`, whose error names the new key; then the schema
``config/schema/config.schema.yaml``, which also fills defaults) and hands each rule only its own
section (plus the shared ``geometry`` section, read by name by the crawl and convert rules)
through ``params:``. Scripts turn that mapping into one of
these dataclasses with :func:`from_mapping`, the one path for every setting (de-identification
and filter image types included): it rejects unknown keys and missing required ones, so a typo in
a config key is an error instead of a silently ignored setting. Policies are ``Literal`` types,
checked once when the dataclass is built (:func:`check_choices`); code downstream trusts them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from radflow.errors import ConfigError

T = TypeVar("T")

#: What to do with a series that breaks a geometry rule that resampling can repair.
GeometryPolicy = Literal["fail", "resample"]
GEOMETRY_POLICIES: tuple[str, ...] = get_args(GeometryPolicy)

#: Config keys retired by the 0.3.0 redesign -> the key that replaced them (README, Changelog).
RETIRED_KEYS: dict[tuple[str, ...], str] = {
    ("laws",): "extract.image_types (entries {filter: laws, kernel: ..., ...})",
    ("crawl", "geometry"): "geometry (a top-level section, read by the crawl and convert rules)",
    ("pair", "fallback_modalities"): "crawl.fallback_modalities",
}


def check_retired_keys(config: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` naming the new key when ``config`` uses a retired key.

    Called by :func:`radflow.config_check.check_config` before schema validation (the schema
    would only say "unknown key").
    """
    for path, new in RETIRED_KEYS.items():
        node: Any = config
        for part in path:
            if not isinstance(node, Mapping) or part not in node:
                break
            node = node[part]
        else:
            raise ConfigError(f"config key '{'.'.join(path)}' was renamed in radflow 0.3.0; "
                              f"use {new} (README, Changelog)")


def check_choices(settings: object, section: str) -> None:
    """Check every ``Literal``-typed field of the dataclass ``settings`` (its policies).

    Called by ``__post_init__``, so a settings object never holds a value outside its
    ``Literal``; code downstream does not check again.

    Raises
    ------
    ConfigError
        Naming ``<section>.<field>`` and the allowed values.
    """
    hints = get_type_hints(type(settings))
    for f in dataclasses.fields(settings):  # type: ignore[arg-type]
        hint = hints[f.name]
        if get_origin(hint) is not Literal:
            continue
        allowed = get_args(hint)
        value = getattr(settings, f.name)
        if value not in allowed:
            raise ConfigError(f"{section}.{f.name} must be one of "
                              f"{', '.join(map(str, allowed))}, got {value!r}")


def from_mapping(cls: type[T], values: Mapping[str, Any] | None, *, section: str = "") -> T:
    """Build the frozen dataclass ``cls`` from ``values``; unknown keys are a :class:`ConfigError`.

    Lists become tuples so that the result is hashable and immutable; a missing setting without
    a default is a :class:`ConfigError` too.
    """
    values = dict(values or {})
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    names = {f.name for f in fields}
    where = f" in '{section}'" if section else ""
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown setting(s){where}: {', '.join(unknown)}; "
                          f"expected some of: {', '.join(sorted(names))}")
    missing = [f.name for f in fields if f.name not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"missing setting(s){where}: {', '.join(missing)}")
    hints = get_type_hints(cls)
    converted: dict[str, Any] = {}
    for name, value in values.items():
        hint = hints[name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
            value = from_mapping(hint, value, section=f"{section}.{name}".strip("."))
        elif isinstance(value, list):
            value = _frozen(value)
        converted[name] = value
    return cls(**converted)


def _frozen(value: Any) -> Any:
    """Lists (also nested ones) as tuples."""
    return tuple(_frozen(v) for v in value) if isinstance(value, (list, tuple)) else value


@dataclass(frozen=True)
class GeometrySettings:
    """Rules a DICOM series must satisfy to become one regular volume (config section
    ``geometry``, shared by the crawl and convert rules).

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
    gantry_tilt: GeometryPolicy = "fail"
    uneven_spacing: GeometryPolicy = "fail"

    def __post_init__(self) -> None:
        check_choices(self, "geometry")


#: ``crawl.duplicate_copies`` values: what happens to re-exported copies of a series (images of
#: one patient with identical pixel data under other UIDs; :mod:`radflow.crawl.copies`).
DuplicateCopiesPolicy = Literal["keep-first", "keep-both"]
DUPLICATE_COPIES_POLICIES: tuple[str, ...] = get_args(DuplicateCopiesPolicy)


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
    fallback_modalities
        When a SEG/RTSTRUCT's references match no image series, the fallbacks (same frame of
        reference, then nearest common folder) consider only image series of these modalities
        (empty: every image modality).
    geometry
        The shared ``geometry`` section (not a key of ``crawl``: :func:`crawl_settings` builds it).
    duplicate_copies
        Image series of one patient with identical pixel data (the same images exported twice,
        e.g. once through a PACS that assigns new UIDs). ``"keep-first"`` (default): the copy
        whose ``series_key`` sorts first stays ``ok``, the others are
        ``excluded:duplicate-of-<series_key>``; ``"keep-both"``: all stay ``ok``. Either way
        each copy gets the QC warning ``duplicate-copy-of-<series_key>`` naming the others.
    """

    image_modalities: tuple[str, ...] = ("CT", "MR", "PT")
    include_derived: bool = False
    fallback_modalities: tuple[str, ...] = ()
    geometry: GeometrySettings = field(default_factory=GeometrySettings)
    duplicate_copies: DuplicateCopiesPolicy = "keep-first"

    def __post_init__(self) -> None:
        check_choices(self, "crawl")


def crawl_settings(crawl: Mapping[str, Any] | None,
                   geometry: Mapping[str, Any] | None) -> CrawlSettings:
    """:class:`CrawlSettings` from the config's ``crawl`` and shared ``geometry`` sections."""
    if crawl and "geometry" in crawl:
        check_retired_keys({"crawl": crawl})
    built = from_mapping(CrawlSettings, crawl, section="crawl")
    return dataclasses.replace(built, geometry=from_mapping(GeometrySettings, geometry,
                                                            section="geometry"))


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


#: ``rois.unmapped`` values: what happens to ROI names no ``rois.map`` entry matches.
UnmappedPolicy = Literal["keep", "drop"]
UNMAPPED_POLICIES: tuple[str, ...] = get_args(UnmappedPolicy)
#: ``rois.contours_outside_image`` values.
OutsidePolicy = Literal["fail", "skip"]
OUTSIDE_POLICIES: tuple[str, ...] = get_args(OutsidePolicy)


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
    unmapped: UnmappedPolicy = "keep"
    fractional_threshold: float = 0.5
    contours_outside_image: OutsidePolicy = "fail"

    def __post_init__(self) -> None:
        raw: Any = self.map
        items = raw.items() if isinstance(raw, Mapping) else raw
        normalised = tuple((str(canonical), (patterns,) if isinstance(patterns, str)
                            else tuple(str(p) for p in patterns))
                           for canonical, patterns in items)
        object.__setattr__(self, "map", normalised)
        check_choices(self, "rois")
        if not 0 < self.fractional_threshold <= 1:
            raise ConfigError("rois.fractional_threshold must be in (0, 1], got "
                              f"{self.fractional_threshold!r}")


@dataclass(frozen=True)
class MergeSettings:
    """How feature tables are joined with the clinical table.

    Attributes
    ----------
    max_unmatched_fraction
        The run fails when more than this fraction of the imaged cases have no clinical row.
        Clinical rows without imaging (a registry larger than the imaging cohort) are listed
        in the join report, not bounded.
    max_failed_fraction
        The end-of-run summary (:mod:`radflow.summary`) warns when more than this fraction of
        the items a stage tried (``ok`` + ``failed``; excluded and skipped ones not counted)
        failed: series in crawl and convert, pairs in pair and extract. A warning only; with
        ``strict: true`` any failure fails the run.
    """

    max_unmatched_fraction: float = 0.2
    max_failed_fraction: float = 0.2
