"""PyRadiomics params files: reading, validation with PyRadiomics' own schema, the effective
settings the extractor derives from them, their hash, and the versions recorded with features."""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.metadata
import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pykwalify.core
import pykwalify.errors
import radiomics
import SimpleITK as sitk
import yaml
from radiomics import featureextractor

import radflow
from radflow.errors import ConfigError, ExtractionError

if TYPE_CHECKING:
    from radflow.radiomics_adapter.features import ImageTypeSpec

# Validated params by their JSON text (see _validate).
_VALIDATED: dict[str, dict[str, Any]] = {}

# Settings radflow sets per pair: not allowed in the params file.
_PER_PAIR_SETTINGS = ("label",)


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
                extra_image_types: Sequence[ImageTypeSpec] = (), *,
                preprocessing: Mapping[str, Any] | None = None,
                families: Mapping[str, Any] | None = None) -> str:
    """SHA-256 (hex) of the canonical JSON of the effective extraction settings.

    Effective = PyRadiomics' extractor defaults overlaid with the file's ``setting`` and
    ``voxelSetting``, the enabled image types (``Original`` when none) with their settings and the
    enabled feature classes (all when none; each feature list sorted, ``null`` = ``[]`` = all).
    Equivalent files (reordered keys, comments, YAML vs JSON, explicit defaults) hash the same.
    Custom image types add their name and settings (their filter code is identified by the name).
    ``preprocessing`` (what radflow does to the image before PyRadiomics, e.g.
    ``{"normalisation": "zscore-roi"}``) is added when given, so it changes the hash; so are
    ``families`` (the settings of radflow's own feature families that are on,
    :meth:`radflow.extract.families.FeatureFamilies.provenance`).
    """
    payload: dict[str, Any] = {"pyradiomics": _effective(_validate(params, "params"))}
    if extra_image_types:
        payload["custom_image_types"] = [
            {"name": s.name, "settings": dict(s.settings), "options": dict(s.options)}
            for s in sorted(extra_image_types, key=lambda s: s.name)]
    if preprocessing:
        payload["radflow_preprocessing"] = dict(preprocessing)
    if families:
        payload["radflow_families"] = dict(families)
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


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300]


#: Distributions known to provide ``radiomics``, tried before scanning every installed one.
_KNOWN_DISTRIBUTIONS = ("pyradiomics-bhklab", "pyradiomics")


def _radiomics_distribution() -> str:
    """Name of the installed distribution whose files include the imported ``radiomics``.

    The known names are checked first (a few ms); only when none of them provides the imported
    module are all installed distributions scanned (``packages_distributions``, ~0.1 s).
    """
    module_file = Path(radiomics.__file__).resolve()
    for name in _KNOWN_DISTRIBUTIONS:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if _provides(dist, module_file):
            return str(dist.metadata["Name"])
    candidates = importlib.metadata.packages_distributions().get("radiomics", [])
    for name in dict.fromkeys(candidates):
        if _provides(importlib.metadata.distribution(name), module_file):
            return str(importlib.metadata.distribution(name).metadata["Name"])
    if len(set(candidates)) == 1:
        return str(candidates[0])
    raise ExtractionError(f"cannot tell which distribution provides 'radiomics' "
                          f"(candidates: {sorted(set(candidates))})", reason="pyradiomics-dist")


def _provides(dist: importlib.metadata.Distribution, module_file: Path) -> bool:
    """Whether ``dist``'s recorded files include ``module_file`` (``radiomics/__init__.py``)."""
    return any(entry.as_posix() == "radiomics/__init__.py"
               and Path(str(dist.locate_file(entry))).resolve() == module_file
               for entry in dist.files or ())
