"""The one module that talks to PyRadiomics (``radiomics``, distribution ``pyradiomics-bhklab``).

PyRadiomics' camelCase settings, ``**kwargs`` bags, params schema (pykwalify), feature naming
(``<imageType>_<class>_<Feature>``) and logging stay here; the rest of radflow sees plain dicts,
:class:`ImageTypeSpec` and long :class:`pandas.DataFrame` tables.

Logging: PyRadiomics attaches a stderr handler to the ``radiomics`` logger at import. This module
replaces it with a :class:`logging.NullHandler` (PyRadiomics' ``_applyParams`` reads
``handlers[0]`` of that logger) and sets the ``radiomics`` logger to WARNING, so PyRadiomics
messages propagate to the root logger (configured by the application) exactly once, and only
warnings and errors by default (lower the ``radiomics`` logger's level to see more).

Custom image types (radflow filters such as Laws) plug into PyRadiomics' own image-type protocol
through :func:`register_image_types`: a generator ``get<Type>Image(image, mask, **kwargs)`` that
yields ``(filtered_image, name, kwargs)``, exactly like ``imageoperations.getLoGImage``. They are
never written in the params file (its schema rejects unknown image types).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import importlib.metadata
import json
import logging
import re
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import pykwalify.core
import pykwalify.errors
import radiomics
import SimpleITK as sitk
import yaml
from radiomics import featureextractor, imageoperations

import radflow
from radflow.errors import ConfigError, ExtractionError, RadflowError

logger = logging.getLogger(__name__)

#: Columns of :func:`compute_features`' table, in order.
FEATURE_COLUMNS: tuple[str, ...] = ("image_type", "feature_class", "feature", "value")

# Names of PyRadiomics' own image types (``log-sigma-1-0-mm-3D``, ``wavelet2-LLH``, ``lbp-2D``...).
_RESERVED_NAMES = frozenset({"original", "square", "squareroot", "logarithm", "exponential",
                             "gradient"})
_RESERVED_PREFIXES = ("log-sigma-", "wavelet", "lbp-")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")  # no "_": it separates name parts

# Validated params by their JSON text (see _validate).
_VALIDATED: dict[str, dict[str, Any]] = {}

# Settings radflow sets per pair: not allowed in the params file.
_PER_PAIR_SETTINGS = ("label",)

# PyRadiomics ValueError messages -> short failure reasons (first match wins).
_REASONS: tuple[tuple[str, str], ...] = (
    ("no labels found", "empty-mask"),
    ("not present in mask", "label-absent"),
    ("geometry mismatch", "geometry-mismatch"),
    ("datatype or size mismatch", "geometry-mismatch"),
    ("larger than image space", "roi-outside-image"),
    ("only contains 1 segmented voxel", "roi-too-small"),
    ("too few dimensions", "roi-too-small"),
    ("roi is too small", "roi-too-small"),
    ("resegmentation excluded too many voxels", "resegmentation-empty"),
)


def _neutralise_radiomics_logging() -> None:
    """Detach PyRadiomics' import-time stderr handler; let its records reach the root logger."""
    rlog = logging.getLogger("radiomics")
    own = getattr(radiomics, "handler", None)
    for handler in list(rlog.handlers):
        if handler is own:
            rlog.removeHandler(handler)
    if not any(isinstance(h, logging.NullHandler) for h in rlog.handlers):
        # PyRadiomics' _applyParams hands handlers[0] to pykwalify when no handler exists;
        # a NullHandler there emits nothing, records still propagate to the root logger.
        rlog.addHandler(logging.NullHandler())
    rlog.setLevel(logging.WARNING)
    rlog.propagate = True


_neutralise_radiomics_logging()


@dataclass(frozen=True)
class ImageTypeSpec:
    """A custom (radflow-computed) image type on which PyRadiomics computes its features.

    Attributes
    ----------
    name
        Image-type prefix of the feature names (``<name>_<class>_<feature>``), e.g.
        ``laws-L5E5E5-ri-max-e7``. Letters, digits and ``-`` only; PyRadiomics' own names
        (``original``, ``log-sigma-*``, ``wavelet*``, ...) are reserved.
    make
        Filter: takes the pre-processed image (after PyRadiomics' normalisation/resampling, like
        the input of its LoG and wavelet filters) and returns the filtered scalar image with the
        same size, spacing, origin and direction.
    settings
        PyRadiomics settings for this image type only (e.g. ``{"binWidth": 5}``), validated
        against the params schema; they override the params file's ``setting`` section, exactly
        like ``imageType: {LoG: {binWidth: 5}}`` does for LoG.
    options
        The filter's own options (e.g. a :class:`radflow.filters.laws.LawsSettings` as a dict).
        They are not used here but enter :func:`params_hash`, so that a changed filter option
        (one the name does not show, such as the boundary mode) changes the hash.
    """

    name: str
    make: Callable[[sitk.Image], sitk.Image]
    settings: Mapping[str, Any] = field(default_factory=dict, hash=False)
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ConfigError(f"custom image type name {self.name!r}: use letters, digits and "
                              "'-' only (no '_', which separates feature-name parts)")
        lowered = self.name.lower()
        if lowered in _RESERVED_NAMES or lowered.startswith(_RESERVED_PREFIXES):
            raise ConfigError(f"custom image type name {self.name!r} is reserved for a "
                              "PyRadiomics image type")
        if not callable(self.make):
            raise ConfigError(f"custom image type {self.name!r}: 'make' is not callable")
        settings = _validate({"setting": dict(self.settings)},
                             f"settings of custom image type {self.name!r}")
        object.__setattr__(self, "settings", MappingProxyType(settings.get("setting") or {}))


def load_params(path: str | Path) -> dict[str, Any]:
    """Read a native PyRadiomics params file (YAML, or JSON if ``*.json``) and validate it.

    Validation uses PyRadiomics' own schema (``radiomics/schemas/paramSchema.yaml`` and its
    functions), as ``RadiomicsFeatureExtractor`` does; ``setting.label`` is rejected (radflow
    passes the label of each pair). Returns the validated params dict.

    Raises
    ------
    ConfigError
        Unreadable file, invalid YAML/JSON, or a key/value the schema rejects (the message names
        the file and the offending key, e.g. ``setting.binWidth``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read PyRadiomics params file ({exc})",
                          reason="params") from exc
    is_json = path.suffix.lower() == ".json"
    try:
        data = json.loads(text) if is_json else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if is_json else "YAML"
        raise ConfigError(f"{path}: not valid {kind}: {exc}", reason="params") from exc
    return _validate(data, str(path))


def params_hash(params: Mapping[str, Any],
                extra_image_types: Sequence[ImageTypeSpec] = ()) -> str:
    """SHA-256 (hex) of the canonical JSON of the effective extraction settings.

    Effective = PyRadiomics' extractor defaults overlaid with the file's ``setting`` and
    ``voxelSetting``, the enabled image types (``Original`` when none) with their settings and the
    enabled feature classes (all when none; each feature list sorted, ``null`` = ``[]`` = all).
    Equivalent files (reordered keys, comments, YAML vs JSON, explicit defaults) hash the same.
    Custom image types add their name and settings (their filter code is identified by the name).
    """
    payload: dict[str, Any] = {"pyradiomics": _effective(_validate(params, "params"))}
    if extra_image_types:
        payload["custom_image_types"] = [
            {"name": s.name, "settings": dict(s.settings), "options": dict(s.options)}
            for s in sorted(extra_image_types, key=lambda s: s.name)]
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def versions() -> dict[str, str]:
    """``radflow_version``, ``pyradiomics_dist`` (the installed distribution providing the
    imported ``radiomics`` module), ``pyradiomics_version``, ``simpleitk_version``,
    ``numpy_version``: recorded with every feature value."""
    return dict(_versions())


@functools.cache
def _versions() -> dict[str, str]:
    dist = _radiomics_distribution()
    return {"radflow_version": radflow.__version__, "pyradiomics_dist": dist,
            "pyradiomics_version": importlib.metadata.version(dist),
            "simpleitk_version": sitk.Version.VersionString(), "numpy_version": np.__version__}


@contextlib.contextmanager
def register_image_types(extractor: featureextractor.RadiomicsFeatureExtractor,
                         specs: Sequence[ImageTypeSpec]) -> Iterator[None]:
    """Make ``extractor`` compute its enabled feature classes on each custom image type.

    For each spec, a generator following PyRadiomics' image-type protocol
    (``get<Type>Image(image, mask, **kwargs)`` yielding ``(spec.make(image), spec.name, kwargs)``)
    is installed in ``radiomics.imageoperations`` under a unique private key, and enabled on
    ``extractor`` with ``spec.settings`` as its image-type settings. ``extractor.execute`` then
    treats it like LoG or Wavelet: filtered after normalisation/resampling, cropped to the ROI,
    all enabled non-shape classes computed, features named ``<name>_<class>_<feature>``.
    Everything is removed again when the block exits.

    Raises :class:`ConfigError` when two specs share a name.
    """
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"custom image type name(s) used twice: {', '.join(duplicates)}")
    keys: list[str] = []
    try:
        for spec in specs:
            key = f"Radflow[{spec.name}]{uuid.uuid4().hex}"
            setattr(imageoperations, f"get{key}Image", _image_type_generator(spec))
            keys.append(key)
            extractor.enabledImagetypes[key] = dict(spec.settings)
        yield
    finally:
        for key in keys:
            extractor.enabledImagetypes.pop(key, None)
            delattr(imageoperations, f"get{key}Image")


def compute_features(image: sitk.Image, mask: sitk.Image, params: Mapping[str, Any], *,
                     label: int, extra_image_types: Sequence[ImageTypeSpec] = ()
                     ) -> pd.DataFrame:
    """Compute PyRadiomics features of one ROI (segment-based, diagnostics excluded).

    Parameters
    ----------
    image
        Image volume (x, y, z), any scalar pixel type.
    mask
        Label map on the same grid (PyRadiomics' ``correctMask``/``geometryTolerance`` settings
        apply); the ROI is ``mask == label``.
    params
        PyRadiomics params (as from :func:`load_params`; validated again here).
    label
        Label value of the ROI (> 0).
    extra_image_types
        Custom image types computed besides the params' image types (see
        :func:`register_image_types`).

    Returns
    -------
    pandas.DataFrame, shape (n_features, 4)
        Columns :data:`FEATURE_COLUMNS`; ``value`` float64 (NaN where PyRadiomics returns NaN).
        Rows sorted by image type (``original`` first), feature class, feature.

    Raises
    ------
    ExtractionError
        PyRadiomics or a custom filter failed; the message names the label, ``reason`` is short
        (``label-absent``, ``empty-mask``, ``roi-too-small``, ``geometry-mismatch``, ...).
    ConfigError
        Invalid params or custom image types.
    """
    effective = _effective(_validate(params, "params"))
    if isinstance(label, bool) or not isinstance(label, int | np.integer) or label <= 0:
        raise ExtractionError(f"label {label!r}: must be a positive integer",
                              reason="invalid-label")
    label = int(label)
    extractor = featureextractor.RadiomicsFeatureExtractor()
    extractor.settings = effective["setting"]
    extractor.enabledImagetypes = effective["imageType"]
    extractor.enabledFeatures = effective["featureClass"]
    with register_image_types(extractor, extra_image_types):
        try:
            result = extractor.execute(image, mask, label=label)
        except RadflowError as exc:
            raise ExtractionError(f"label {label}: {exc}", reason=exc.reason) from exc
        except Exception as exc:  # PyRadiomics raises ValueError, RuntimeError, AssertionError...
            raise ExtractionError(f"label {label}: PyRadiomics failed: {_one_line(exc)}",
                                  reason=_reason_for(exc)) from exc
    return _to_table(result)


def _validate(params: Any, source: str) -> dict[str, Any]:
    """Validate ``params`` with PyRadiomics' schema; return a deep copy of the validated dict.

    pykwalify re-reads the schema on every call (~0.1 s), so results are cached by the params'
    JSON text (key order kept); params that are not plain JSON data are validated uncached.
    """
    if not isinstance(params, Mapping):
        raise ConfigError(f"{source}: PyRadiomics params must be a mapping with keys 'setting', "
                          f"'imageType', 'featureClass', 'voxelSetting'; got "
                          f"{type(params).__name__}", reason="params")
    try:
        text = json.dumps(params)
    except (TypeError, ValueError):
        return _validate_uncached(params, source)
    validated = _VALIDATED.get(text)
    if validated is None:
        validated = _validate_uncached(json.loads(text), source)
        if len(_VALIDATED) >= 64:
            _VALIDATED.clear()
        _VALIDATED[text] = validated
    return copy.deepcopy(validated)


def _validate_uncached(params: Mapping[str, Any], source: str) -> dict[str, Any]:
    schema_file, schema_funcs = radiomics.getParameterValidationFiles()
    with warnings.catch_warnings():  # pykwalify loads the schema functions with load_module()
        warnings.filterwarnings("ignore", "the load_module", DeprecationWarning)
        core = pykwalify.core.Core(source_data=copy.deepcopy(dict(params)),
                                   schema_files=[schema_file], extensions=[schema_funcs])
    try:
        validated = core.validate(raise_exception=True)
    except pykwalify.errors.PyKwalifyException as exc:
        problems = [_describe(e) for e in getattr(core, "validation_errors_exceptions", [])]
        detail = "; ".join(problems) or _one_line(exc)
        raise ConfigError(f"{source}: invalid PyRadiomics parameter(s): {detail}",
                          reason="params") from exc
    except (ValueError, TypeError) as exc:  # raised by PyRadiomics' schema functions
        raise ConfigError(f"{source}: invalid PyRadiomics parameter: {_one_line(exc)}",
                          reason="params") from exc
    sections = [("setting", validated.get("setting") or {})]
    sections += [(f"imageType.{name}", kw or {})
                 for name, kw in (validated.get("imageType") or {}).items()]
    for where, section in sections:
        for key in _PER_PAIR_SETTINGS:
            if key in section:
                raise ConfigError(f"{source}: '{where}.{key}' is not allowed: radflow passes the "
                                  "label of each image/mask pair", reason="params")
    return validated


def _describe(entry: Any) -> str:
    """``setting.foo: Key 'foo' was not defined`` from a pykwalify error entry."""
    path = str(getattr(entry, "path", "") or "").strip("/").replace("/", ".")
    key = getattr(entry, "key", None)
    where = ".".join(p for p in (path, str(key) if key is not None else "") if p) or "(top level)"
    message = str(entry).split(". Path:")[0].split(". Value path:")[0]
    return f"{where}: {message}"


def _effective(params: Mapping[str, Any]) -> dict[str, Any]:
    """Effective settings, image types and feature classes, as ``RadiomicsFeatureExtractor``
    derives them from a params dict (``_applyParams``), plus radflow's fixed choices
    (``additionalInfo`` off: diagnostics are not kept; ``label`` is per pair)."""
    settings = featureextractor.RadiomicsFeatureExtractor().settings  # extractor defaults
    settings.update(params.get("setting") or {})
    settings.update(params.get("voxelSetting") or {})
    settings["additionalInfo"] = False
    settings.pop("label", None)
    image_types = {name: dict(kw or {}) for name, kw in (params.get("imageType") or {}).items()}
    classes = params.get("featureClass") or dict.fromkeys(radiomics.getFeatureClasses())
    features = {name: sorted(set(names or [])) for name, names in classes.items()}
    return {"setting": settings, "imageType": image_types or {"Original": {}},
            "featureClass": features}


def _image_type_generator(spec: ImageTypeSpec) -> Callable[..., Iterator[tuple]]:
    """PyRadiomics image-type generator for ``spec`` (see ``imageoperations.getLoGImage``)."""

    def generate(inputImage: sitk.Image, inputMask: sitk.Image,  # noqa: N803 (PyRadiomics API)
                 **kwargs: Any) -> Iterator[tuple[sitk.Image, str, dict[str, Any]]]:
        try:
            filtered = spec.make(inputImage)
        except RadflowError as exc:
            raise ExtractionError(f"image type {spec.name}: {exc}", reason=exc.reason) from exc
        except Exception as exc:
            raise ExtractionError(f"image type {spec.name}: filter failed: {_one_line(exc)}",
                                  reason="filter-failed") from exc
        _check_same_grid(filtered, inputImage, spec.name)
        yield filtered, spec.name, kwargs

    return generate


def _check_same_grid(filtered: Any, reference: sitk.Image, name: str) -> None:
    """Raise :class:`ExtractionError` unless ``filtered`` is scalar and on ``reference``'s grid."""
    same = (isinstance(filtered, sitk.Image) and filtered.GetSize() == reference.GetSize()
            and filtered.GetNumberOfComponentsPerPixel() == 1
            and all(np.allclose(getattr(filtered, g)(), getattr(reference, g)(), rtol=0, atol=1e-6)
                    for g in ("GetSpacing", "GetOrigin", "GetDirection")))
    if not same:
        raise ExtractionError(f"image type {name}: the filter did not return a scalar SimpleITK "
                              "image on the input grid (size, spacing, origin, direction)",
                              reason="filter-geometry")


def _to_table(result: Mapping[str, Any]) -> pd.DataFrame:
    """Long table from PyRadiomics' ``{"<type>_<class>_<feature>": value}`` result."""
    rows = []
    for key, value in result.items():
        if key.startswith("diagnostics_"):
            continue
        parts = key.split("_", 2)
        if len(parts) != 3 or not all(parts):
            raise ExtractionError(f"unexpected PyRadiomics feature name {key!r}",
                                  reason="feature-name")
        arr = np.asarray(value, dtype=np.float64)
        if arr.size != 1:
            raise ExtractionError(f"feature {key}: expected one value, got shape {arr.shape}",
                                  reason="feature-value")
        rows.append((*parts, float(arr.reshape(()))))
    table = pd.DataFrame(rows, columns=list(FEATURE_COLUMNS)).astype(
        {"image_type": "str", "feature_class": "str", "feature": "str", "value": "float64"})
    return (table.assign(_rank=table["image_type"] != "original")
            .sort_values(["_rank", "image_type", "feature_class", "feature"], kind="stable")
            .drop(columns="_rank").reset_index(drop=True))


def _reason_for(exc: BaseException) -> str:
    text = str(exc).lower()
    for needle, reason in _REASONS:
        if needle in text:
            return reason
    return "pyradiomics-error"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300]


def _radiomics_distribution() -> str:
    """Name of the installed distribution whose files include the imported ``radiomics``."""
    module_file = Path(radiomics.__file__).resolve()
    candidates = importlib.metadata.packages_distributions().get("radiomics", [])
    for name in dict.fromkeys(candidates):
        dist = importlib.metadata.distribution(name)
        for entry in dist.files or ():
            if (entry.as_posix() == "radiomics/__init__.py"
                    and Path(str(dist.locate_file(entry))).resolve() == module_file):
                return str(dist.metadata["Name"])
    if len(set(candidates)) == 1:
        return str(candidates[0])
    raise ExtractionError(f"cannot tell which distribution provides 'radiomics' "
                          f"(candidates: {sorted(set(candidates))})", reason="pyradiomics-dist")
