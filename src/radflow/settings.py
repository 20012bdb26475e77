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


#: ``convert.scope`` values: which ok series the convert stage converts.
ConvertScope = Literal["paired", "all"]
#: ``convert.pet_units`` values: what PET (modality PT) voxels hold after conversion
#: (:mod:`radflow.dicom.suv`; ``stored`` keeps the stored values, not recommended).
PetUnits = Literal["suv-bw", "suv-lbm", "suv-bsa", "stored"]


@dataclass(frozen=True)
class ConvertSettings:
    """How series become volumes (config section ``convert``; the shared ``geometry`` section is
    read separately).

    Attributes
    ----------
    scope
        ``"paired"``: convert the series a pair uses; ``"all"``: every ok image series (read by
        the workflow's plan, :func:`radflow.plan.jobs.read_plan`).
    mr_bias_correction
        ``True``: MR image series get N4 bias-field correction (SimpleITK, fixed settings,
        recorded in the sidecar's ``bias_correction``; :mod:`radflow.convert.bias`) and are
        written as float32. ``False`` (default): MR values are written as stored x rescale.
    pet_units
        PET image series: ``"suv-bw"`` (default) body-weight SUV, ``"suv-lbm"`` lean-body-mass
        SUV (SUL, Janmahasatian 2005), ``"suv-bsa"`` body-surface-area SUV (Du Bois 1916),
        computed from the DICOM header as the QIBA vendor-neutral pseudo-code does and written
        as float32 (:mod:`radflow.dicom.suv`); ``"stored"`` keeps the stored values (Bq/ml,
        counts, ...: not comparable between patients, not recommended).
    """

    scope: ConvertScope = "paired"
    mr_bias_correction: bool = False
    pet_units: PetUnits = "suv-bw"

    def __post_init__(self) -> None:
        check_choices(self, "convert")


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


#: ``extract.normalisation`` methods: how the intensities of an image are normalised before
#: PyRadiomics (:mod:`radflow.params_sets`; README, "Modality defaults").
NormalisationMethod = Literal["none", "zscore-image", "zscore-body", "zscore-roi"]
NORMALISATION_METHODS: tuple[str, ...] = get_args(NormalisationMethod)
#: Keys of the ``extract.params`` and ``extract.normalisation`` mappings.
PARAMS_KEYS: tuple[str, ...] = ("CT", "MR", "PT", "default")


@dataclass(frozen=True)
class ExtractSettings:
    """Feature extraction (config section ``extract``; :mod:`radflow.params_sets` chooses each
    image's parameter set from it).

    Attributes
    ----------
    params
        One PyRadiomics params file for every modality (a path), or one per modality key
        (:data:`PARAMS_KEYS`), stored as ``((key, path), ...)``; ``""`` = no file for that key.
        Paths as written in the config (relative ones are relative to the repository root).
    normalisation
        ``((key, method), ...)``: the normalisation (:data:`NORMALISATION_METHODS`) of the images
        of a modality key; a key not listed follows its params file (PyRadiomics' ``normalize``).
    threads, mem_mb, runtime
        The ``extract_one`` rule's threads and smallest memory / run-time requests.
    image_types
        radflow's filter image types (:func:`radflow.extract.image_types`).
    families
        radflow's own feature families, ``{semantic | fractal | minkowski: {enabled, ...}}``
        as in the config; built by :func:`radflow.extract.families.feature_families` (whose
        settings classes live with the computations in :mod:`radflow.features`, which this
        module does not import: the Snakefile builds these settings at every start).
    ibsi
        radflow's IBSI mode around PyRadiomics for every parameter set (:mod:`radflow.ibsi.mode`;
        README, "IBSI mode"); off: PyRadiomics' values as its own CLI gives them.
    """

    params: str | tuple[tuple[str, str], ...]
    normalisation: tuple[tuple[str, str], ...] = ()
    threads: int = 1
    mem_mb: int = 1000
    runtime: int = 10
    image_types: tuple[Any, ...] = ()
    families: Mapping[str, Any] = field(default_factory=dict, hash=False)
    ibsi: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.ibsi, bool):
            raise ConfigError(f"extract.ibsi must be true or false, got {self.ibsi!r}")
        if isinstance(self.params, str):
            if not self.params:
                raise ConfigError("extract.params: give a params file or a mapping "
                                  f"{{{', '.join(PARAMS_KEYS)}}}")
        else:
            object.__setattr__(self, "params", _keyed(self.params, "extract.params", None))
        object.__setattr__(self, "normalisation", _keyed(self.normalisation,
                                                         "extract.normalisation",
                                                         NORMALISATION_METHODS))


def _keyed(value: Any, section: str, allowed: tuple[str, ...] | None
           ) -> tuple[tuple[str, str], ...]:
    """A ``{key: text}`` mapping (or its pairs) with keys of :data:`PARAMS_KEYS` as sorted pairs;
    ``allowed`` values only, when given."""
    items = value.items() if isinstance(value, Mapping) else value
    pairs = tuple((str(k), "" if v is None else v) for k, v in items)
    for key, text in pairs:
        if key not in PARAMS_KEYS:
            raise ConfigError(f"{section}: unknown key {key!r}; expected some of "
                              f"{', '.join(PARAMS_KEYS)} (modality keys are upper case)")
        if not isinstance(text, str) or (allowed is not None and text not in allowed):
            wanted = f"one of {', '.join(allowed)}" if allowed else "a file path or \"\""
            raise ConfigError(f"{section}.{key} must be {wanted}, got {text!r}")
    return tuple(sorted(pairs, key=lambda p: PARAMS_KEYS.index(p[0])))


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


#: ``protocol.on_fail`` values: what a failed protocol gate does to a pair.
ProtocolOnFail = Literal["flag", "exclude"]


@dataclass(frozen=True)
class ProtocolSettings:
    """Acquisition-protocol QC gates (config section ``protocol``; README, "Protocol QC gates").

    Attributes
    ----------
    profile
        A profile YAML (a path, relative to the repository root unless absolute) or the name of
        a shipped profile in ``config/protocols`` (``lung-screening-ldct``); ``""`` (default):
        no gate. The config is per cohort, so is the profile.
    on_fail
        ``"flag"`` (default): a pair that fails the gate keeps its features and is marked in
        the dataset's ``protocol_status`` / ``protocol_failed`` columns. ``"exclude"``: it
        becomes ``excluded:protocol-failed`` and leaves the dataset (``strict: true`` does the
        same).
    """

    profile: str = ""
    on_fail: ProtocolOnFail = "flag"

    def __post_init__(self) -> None:
        check_choices(self, "protocol")
