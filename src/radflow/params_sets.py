"""Parameter sets per modality: which PyRadiomics params file and which intensity normalisation
an image is extracted with (config ``extract.params`` and ``extract.normalisation``; README,
"Modality defaults").

``extract.params`` is one file for every modality (a string) or a mapping with the keys ``CT``,
``MR``, ``PT`` and ``default``. An image's *modality key* is its modality when that is CT, MR or
PT, else ``default``. In the mapping form an image whose key has no file gets the ``default``
file, and with no default either its pairs are ``excluded:no-params-for-modality``.
``extract.normalisation`` names, per modality key, how intensities are normalised before the
features: ``none``, ``zscore-image`` (PyRadiomics' ``normalize``: mean and SD of the whole
image), ``zscore-body`` (of a body mask) or ``zscore-roi`` (of the ROI); a key it does not list
follows its params file (``normalize: true`` is ``zscore-image``).

The rules (IBSI 1, "Re-segmentation" and "Intensity discretisation": a fixed bin size needs
calibrated units, HU or SUV; raw MR intensities are arbitrary):

* a mapping entry that gives MR a file with a fixed bin width and no normalisation, or MR or
  PT a file with an HU-like re-segmentation range, is refused (:func:`check_params_sets`);
* a single file, or the default, that reaches such an image is used, and its rows carry a QC
  warning (:func:`qc_warnings`), never silently;
* a normalisation setting that contradicts the ``normalize`` of the file it applies to is
  refused.

The files are read with PyYAML only: the Snakefile checks them when it loads, where PyRadiomics is
not imported. :func:`summarise` is the one place outside :mod:`radflow.radiomics_adapter` that
reads PyRadiomics setting names (as :mod:`radflow.plan.resources` does for its cost model).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from radflow.errors import ConfigError
from radflow.settings import (
    PARAMS_KEYS,
    ExtractSettings,
    NormalisationMethod,
    check_choices,
)

#: Modalities with a key of their own in ``extract.params`` / ``extract.normalisation``.
MODALITY_KEYS: tuple[str, ...] = ("CT", "MR", "PT")
#: The key of every other modality (and of images of unknown modality).
DEFAULT_KEY = "default"
#: The params key of a single file (``extract.params`` given as a string).
SINGLE_KEY = "all"
#: Normalisations radflow computes itself before PyRadiomics (:mod:`radflow.extract.normalise`).
RADFLOW_METHODS: tuple[str, ...] = ("zscore-body", "zscore-roi")
#: An absolute re-segmentation range whose lower bound is at or below this value is in HU (fat
#: and below: lung, air); SUV and raw MR signal are never that negative.
HU_LOWER_BOUND = -100.0
#: Reason of the pairs of an image whose modality has no parameter set (kind ``excluded``).
NO_PARAMS = "no-params-for-modality"
#: QC warnings of a parameter set that does not suit the image's modality.
FIXED_BIN_WIDTH_ON_MR = "fixed-bin-width-on-mr"
HU_RESEGMENTATION_ON_NON_CT = "hu-resegmentation-on-non-ct"

_WHY = {
    FIXED_BIN_WIDTH_ON_MR: "a fixed bin width (setting.binCount not set, so binWidth, default 25) "
                           "on MR intensities, which are arbitrary units, without normalisation "
                           "(IBSI 1 recommends a fixed bin number there); set setting.binCount "
                           "or a normalisation (extract.normalisation.MR)",
    HU_RESEGMENTATION_ON_NON_CT: f"an absolute setting.resegmentRange with a lower bound <= "
                                 f"{HU_LOWER_BOUND:g} (HU) on an image that is not CT",
}


def modality_key(modality: str) -> str:
    """The ``extract.params`` / ``extract.normalisation`` key of an image of ``modality``."""
    return modality if modality in MODALITY_KEYS else DEFAULT_KEY


@dataclass(frozen=True)
class ParamsSummary:
    """What of a params file the modality rules look at.

    Attributes
    ----------
    fixed_bin_width
        Some image type is discretised with a fixed bin width (``binCount`` not set for it, so
        PyRadiomics uses ``binWidth``, default 25). radflow's filter image types use the
        ``setting`` section, so a file without ``setting.binCount`` counts.
    resegment_range
        ``setting.resegmentRange`` (None: no re-segmentation).
    resegment_mode
        ``setting.resegmentMode`` (``absolute``, ``relative``, ``sigma``).
    normalize
        ``setting.normalize`` (PyRadiomics' whole-image z-score).
    normalize_scale, remove_outliers
        ``setting.normalizeScale`` (default 1) and ``setting.removeOutliers`` (None): radflow's
        own z-scores (``zscore-body``, ``zscore-roi``) apply them as PyRadiomics does.
    """

    fixed_bin_width: bool
    resegment_range: tuple[float, ...] | None
    resegment_mode: str
    normalize: bool
    normalize_scale: float = 1.0
    remove_outliers: float | None = None

    @property
    def hu_resegmentation(self) -> bool:
        """An absolute re-segmentation range whose lower bound is HU-like (see
        :data:`HU_LOWER_BOUND`)."""
        return (self.resegment_mode == "absolute" and bool(self.resegment_range)
                and self.resegment_range is not None
                and self.resegment_range[0] <= HU_LOWER_BOUND)


def summarise(params: Mapping[str, Any], source: str = "params") -> ParamsSummary:
    """The :class:`ParamsSummary` of a params dict (as read from a native PyRadiomics file).

    Raises
    ------
    ConfigError
        A value these rules read has the wrong type (PyRadiomics' own schema checks the rest
        when the features are extracted).
    """
    setting = params.get("setting") or {}
    types = params.get("imageType") or {"Original": {}}
    if not isinstance(setting, Mapping) or not isinstance(types, Mapping):
        raise ConfigError(f"{source}: 'setting' and 'imageType' must be mappings")
    sections = [setting, *[{**setting, **(kw or {})} for kw in types.values()]]
    fixed = any(s.get("binCount") is None for s in sections)
    try:
        raw = setting.get("resegmentRange")
        reseg = tuple(float(v) for v in raw) if raw else None
        scale = float(setting.get("normalizeScale") or 1)
        outliers = setting.get("removeOutliers")
        outliers = None if outliers is None else float(outliers)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: setting.resegmentRange must be a list of numbers, "
                          "normalizeScale and removeOutliers numbers") from None
    return ParamsSummary(fixed_bin_width=fixed, resegment_range=reseg,
                         resegment_mode=str(setting.get("resegmentMode") or "absolute"),
                         normalize=bool(setting.get("normalize")), normalize_scale=scale,
                         remove_outliers=outliers)


def read_params_file(path: str | Path, name: str) -> dict[str, Any]:
    """A params file (YAML, or JSON by its ``.json`` suffix) as a dict; ``name`` is its config
    key, for messages (e.g. ``extract.params.MR``).

    Raises
    ------
    ConfigError
        Unreadable, not YAML/JSON, or not a mapping.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{name}: cannot read the PyRadiomics params file {path.name} "
                          f"({type(exc).__name__})", reason="params") from exc
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{name}: {path.name} is not a PyRadiomics params file (a mapping with "
                          "setting, imageType, featureClass)", reason="params")
    return dict(data)


def effective_normalisation(configured: str | None, summary: ParamsSummary) -> str:
    """The normalisation an image gets: the configured method, else what its file says."""
    if configured:
        return configured
    return "zscore-image" if summary.normalize else "none"


def effective_params(params: Mapping[str, Any], normalisation: str) -> dict[str, Any]:
    """The params PyRadiomics is given for ``normalisation``: ``zscore-image`` switches on
    PyRadiomics' ``normalize``; the other methods leave the params as they are.

    Raises
    ------
    ConfigError
        The params' ``normalize`` contradicts ``normalisation`` (``none``, ``zscore-body`` or
        ``zscore-roi`` with ``normalize: true``: the image would be normalised twice or against
        the setting).
    """
    setting = dict(params.get("setting") or {})
    if setting.get("normalize") and normalisation != "zscore-image":
        raise ConfigError(f"normalisation {normalisation}: the params file sets normalize: true "
                          "(PyRadiomics' whole-image z-score)")
    if normalisation == "zscore-image" and not setting.get("normalize"):
        setting["normalize"] = True
        return {**params, "setting": setting}
    return dict(params)


def qc_warnings(modality: str, summary: ParamsSummary, normalisation: str) -> tuple[str, ...]:
    """QC warnings of a parameter set used on an image of ``modality`` ("" = unknown).

    ``fixed-bin-width-on-mr``: MR with a fixed bin width and no normalisation.
    ``hu-resegmentation-on-non-ct``: an image known not to be CT with an HU-like
    re-segmentation range (on normalised MR the range is in normalised units, not HU).
    """
    warnings = []
    if modality == "MR" and summary.fixed_bin_width and normalisation == "none":
        warnings.append(FIXED_BIN_WIDTH_ON_MR)
    normalised_mr = modality == "MR" and normalisation != "none"
    if modality not in ("", "CT") and summary.hu_resegmentation and not normalised_mr:
        warnings.append(HU_RESEGMENTATION_ON_NON_CT)
    return tuple(warnings)


def describe_warning(code: str) -> str:
    """What a QC warning of :func:`qc_warnings` means, in words."""
    return _WHY[code]


@dataclass(frozen=True)
class ParamsChoice:
    """The parameter set of one extraction unit (one image), chosen by the Snakefile's plan
    (:meth:`ParamsSets.choose`) and handed to the ``extract_one`` job through ``params:``.

    Attributes
    ----------
    modality
        The image's modality as the crawl recorded it (``""``: unknown, e.g. a sheet file without
        a ``modality`` column).
    key
        The params key whose file is used: ``CT``, ``MR``, ``PT``, ``default``, or ``all`` (a
        single file for every modality); ``""`` when the modality has no parameter set.
    file
        That file as the config names it (relative to the repository), or its file name when the
        config gives an absolute path (which may hold a user's name).
    normalisation
        The normalisation actually applied (never "as the file says": that is resolved).
    ibsi
        radflow's IBSI mode (``extract.ibsi``; :mod:`radflow.ibsi.mode`) is applied around
        PyRadiomics.
    """

    modality: str = ""
    key: str = ""
    file: str = ""
    normalisation: NormalisationMethod = "none"
    ibsi: bool = False

    def __post_init__(self) -> None:
        check_choices(self, "extract parameter set")

    @property
    def name(self) -> str:
        """The ``params_set`` column: ``<key>:<file>``, ``+ibsi`` appended in IBSI mode (``""``
        when there is none)."""
        return f"{self.key}:{self.file}{'+ibsi' if self.ibsi else ''}" if self.key else ""


@dataclass(frozen=True)
class ParamsSets:
    """The configured parameter sets: a file and its summary per key, normalisation per key.

    Attributes
    ----------
    files
        Params key -> resolved path (``""``: none); ``{"all": path}`` for a single file.
    shown
        Params key -> the file as the ``params_set`` column names it (see :class:`ParamsChoice`).
    normalisation
        Modality key -> configured method (keys not listed follow their file).
    summaries
        Params key -> :class:`ParamsSummary` of its file (keys with a file).
    ibsi
        ``extract.ibsi``: every set is applied in radflow's IBSI mode.
    """

    files: Mapping[str, str]
    shown: Mapping[str, str]
    normalisation: Mapping[str, str]
    summaries: Mapping[str, ParamsSummary]
    ibsi: bool = False

    @property
    def single(self) -> bool:
        """``extract.params`` is one file for every modality."""
        return SINGLE_KEY in self.files

    def key_for(self, modality: str) -> str:
        """The params key whose file an image of ``modality`` gets (``""``: none)."""
        if self.single:
            return SINGLE_KEY
        for key in (modality_key(modality), DEFAULT_KEY):
            if self.files.get(key):
                return key
        return ""

    def path(self, modality: str) -> str:
        """The resolved params file of an image of ``modality`` (``""``: none)."""
        key = self.key_for(modality)
        return self.files[key] if key else ""

    def choose(self, modality: str) -> ParamsChoice:
        """The :class:`ParamsChoice` of an image of ``modality``."""
        key = self.key_for(modality)
        if not key:
            return ParamsChoice(modality=modality)
        method = effective_normalisation(self.normalisation.get(modality_key(modality)),
                                         self.summaries[key])
        return ParamsChoice(modality=modality, key=key, file=self.shown[key],
                            normalisation=method, ibsi=self.ibsi)  # type: ignore[arg-type]

    def config_key(self, key: str) -> str:
        """The config key of params key ``key`` (``extract.params`` or ``extract.params.MR``)."""
        return "extract.params" if key == SINGLE_KEY else f"extract.params.{key}"


def _shown(value: str) -> str:
    path = Path(value).expanduser()
    return path.name if path.is_absolute() else value


def params_sets(settings: ExtractSettings, basedir: str | Path, *,
                pet_in_suv: bool = True) -> ParamsSets:
    """Resolve, read and check the configured parameter sets (:func:`check_params_sets`).

    Relative paths are relative to ``basedir`` (the repository root). ``pet_in_suv``: the
    convert stage writes PET in SUV (``convert.pet_units`` is not ``stored``); when it does not,
    an ``extract.params.PT`` file with a fixed bin width (SUV bins on Bq/ml: tens of thousands
    of bins) is refused too.

    Raises
    ------
    ConfigError
        A file does not exist or cannot be read (naming its key, e.g. ``extract.params.MR``),
        or a rule of :func:`check_params_sets` is broken.
    """
    configured = ({SINGLE_KEY: settings.params} if isinstance(settings.params, str)
                  else dict(settings.params))
    files: dict[str, str] = {}
    shown: dict[str, str] = {}
    summaries: dict[str, ParamsSummary] = {}
    for key, value in configured.items():
        name = "extract.params" if key == SINGLE_KEY else f"extract.params.{key}"
        if not value:
            files[key] = ""
            continue
        path = Path(value).expanduser()
        path = path if path.is_absolute() else (Path(basedir) / path).resolve()
        if not path.is_file():
            raise ConfigError(f"{name}: {path} does not exist or is not a file")
        files[key], shown[key] = str(path), _shown(value)
        summaries[key] = summarise(read_params_file(path, name), name)
    sets = ParamsSets(files=MappingProxyType(files), shown=MappingProxyType(shown),
                      normalisation=MappingProxyType(dict(settings.normalisation)),
                      summaries=MappingProxyType(summaries), ibsi=settings.ibsi)
    check_params_sets(sets)
    if not pet_in_suv and files.get("PT") and summaries["PT"].fixed_bin_width:
        raise ConfigError(f"extract.params.PT ({shown['PT']}): a fixed bin width (binWidth) meant "
                          "for SUV, but convert.pet_units is stored (Bq/ml, counts): use "
                          "convert.pet_units suv-bw, or a PT params file with binCount")
    return sets


def check_params_sets(sets: ParamsSets) -> None:
    """Refuse parameter sets that do not suit the modality they are named for.

    * ``extract.params.MR`` with a fixed bin width and no normalisation, or ``extract.params.MR``
      / ``extract.params.PT`` with an HU-like re-segmentation range (:func:`qc_warnings`: a
      single file or the default file gets QC warnings instead, at extraction);
    * ``extract.normalisation.<key>`` that contradicts the ``normalize`` of the file that
      key's images get (``none``, ``zscore-body`` or ``zscore-roi`` with ``normalize: true``).

    Raises
    ------
    ConfigError
        Naming the key and the rule broken.
    """
    for key in (*MODALITY_KEYS, DEFAULT_KEY):
        modality = key if key in MODALITY_KEYS else ""
        used = sets.key_for(modality)
        if not used:
            continue
        summary = sets.summaries[used]
        configured = sets.normalisation.get(key)
        if configured and summary.normalize and configured != "zscore-image":
            raise ConfigError(
                f"extract.normalisation.{key} is {configured}, but {sets.config_key(used)} "
                f"({sets.shown[used]}) sets normalize: true (PyRadiomics' whole-image z-score): "
                "the image would be normalised twice or against the setting; remove normalize "
                "from that file (a copy of it) or set extract.normalisation."
                f"{key}: zscore-image")
        if used != key or sets.single or key == DEFAULT_KEY:
            continue  # a file for any modality: QC warnings at extraction, per image
        warnings = qc_warnings(key, summary, effective_normalisation(configured, summary))
        if warnings:
            raise ConfigError(f"{sets.config_key(key)} ({sets.shown[key]}): "
                              f"{describe_warning(warnings[0])} (README, \"Modality defaults\")")


def unit_choice(sets: ParamsSets, modality: str) -> dict[str, Any]:
    """:meth:`ParamsSets.choose` as the plain mapping Snakemake passes through ``params:``
    (rebuilt in the job with :func:`radflow.settings.from_mapping`); ``ibsi`` only when on, so
    that the jobs' params, and what Snakemake re-runs, do not change otherwise."""
    choice = sets.choose(modality)
    out: dict[str, Any] = {"modality": choice.modality, "key": choice.key, "file": choice.file,
                           "normalisation": choice.normalisation}
    if choice.ibsi:
        out["ibsi"] = True
    return out


__all__ = ["DEFAULT_KEY", "FIXED_BIN_WIDTH_ON_MR", "HU_LOWER_BOUND",
           "HU_RESEGMENTATION_ON_NON_CT", "MODALITY_KEYS", "NO_PARAMS", "PARAMS_KEYS",
           "RADFLOW_METHODS", "SINGLE_KEY", "ParamsChoice", "ParamsSets", "ParamsSummary",
           "check_params_sets", "describe_warning", "effective_normalisation",
           "effective_params", "modality_key", "params_sets", "qc_warnings", "read_params_file",
           "summarise", "unit_choice"]
