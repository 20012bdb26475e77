"""PyRadiomics features of one ROI, and custom (radflow-computed) image types such as Laws."""

from __future__ import annotations

import contextlib
import math
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import SimpleITK as sitk
from radiomics import featureextractor, getFeatureClasses, imageoperations

from radflow.errors import ConfigError, ExtractionError, RadflowError
from radflow.radiomics_adapter.params import _effective, _one_line, _validate

if TYPE_CHECKING:
    import pandas as pd

#: Columns of :func:`compute_features`' table, in order.
FEATURE_COLUMNS: tuple[str, ...] = ("image_type", "feature_class", "feature", "value")

#: One feature value: (image_type, feature_class, feature, value), as in :data:`FEATURE_COLUMNS`.
FeatureRow = tuple[str, str, str, float]
#: Where fixed-bin-size bins start (:func:`feature_rows`): a value, ``"minimum"`` or None.
BinOrigin = float | Literal["minimum"] | None

# Names of PyRadiomics' own image types (``log-sigma-1-0-mm-3D``, ``wavelet2-LLH``, ``lbp-2D``...).
_RESERVED_NAMES = frozenset({"original", "square", "squareroot", "logarithm", "exponential",
                             "gradient"})
_RESERVED_PREFIXES = ("log-sigma-", "wavelet", "lbp-")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")  # no "_": it separates name parts

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
                     label: int, extra_image_types: Sequence[ImageTypeSpec] = (),
                     bin_origin: BinOrigin = None) -> pd.DataFrame:
    """Compute PyRadiomics features of one ROI (segment-based, diagnostics excluded).

    :func:`feature_rows` as a table (see there for the parameters and exceptions).

    Returns
    -------
    pandas.DataFrame, shape (n_features, 4)
        Columns :data:`FEATURE_COLUMNS`; ``value`` float64 (NaN where PyRadiomics returns NaN).
        Rows sorted by image type (``original`` first), feature class, feature.
    """
    import pandas as pd  # only here: extraction jobs write their rows without pandas

    rows = feature_rows(image, mask, params, label=label, extra_image_types=extra_image_types,
                        bin_origin=bin_origin)
    return pd.DataFrame(rows, columns=list(FEATURE_COLUMNS)).astype(
        {"image_type": "str", "feature_class": "str", "feature": "str", "value": "float64"})


def feature_rows(image: sitk.Image, mask: sitk.Image, params: Mapping[str, Any], *,
                 label: int, extra_image_types: Sequence[ImageTypeSpec] = (),
                 bin_origin: BinOrigin = None) -> list[FeatureRow]:
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
    bin_origin
        Fixed bin size (``binWidth``) bins start here (IBSI 1: the re-segmentation range's lower
        bound) or, with ``"minimum"``, at the ROI's lowest intensity, instead of at the multiple
        of ``binWidth`` below the ROI minimum with bin 1 there (PyRadiomics); see
        :func:`ibsi_bin_edges`. None: PyRadiomics' binning. No effect with ``binCount``. A value
        applies to the ``original`` image only: the other image types (filter responses, square,
        gradient, radflow's filters) are in other units, and their bins start at their ROI
        minimum (IBSI's origin without a re-segmentation range).
        ``value`` a Python float (NaN where PyRadiomics returns NaN). Sorted by image type
        (``original`` first), feature class, feature.

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
    with register_image_types(extractor, extra_image_types), _binning(extractor, bin_origin):
        try:
            result = extractor.execute(image, mask, label=label)
        except RadflowError as exc:
            raise ExtractionError(f"label {label}: {exc}", reason=exc.reason) from exc
        except Exception as exc:  # PyRadiomics raises ValueError, RuntimeError, AssertionError...
            raise ExtractionError(f"label {label}: PyRadiomics failed: {_one_line(exc)}",
                                  reason=_reason_for(exc)) from exc
    return _to_rows(result)


@contextlib.contextmanager
def _binning(extractor: featureextractor.RadiomicsFeatureExtractor, origin: BinOrigin
             ) -> Iterator[None]:
    """PyRadiomics' fixed-bin-size edges start at ``origin`` inside the block (see
    :func:`feature_rows`; a value for the ``original`` image only, the ROI minimum for the other
    image types); PyRadiomics looks ``getBinEdges`` up at each call, and computes the features
    of one image type in one ``computeFeatures`` call, which names it."""
    if origin is None:
        yield
        return
    own = imageoperations.getBinEdges
    own_compute = extractor.computeFeatures
    current = ["original"]

    def compute(image: sitk.Image, mask: sitk.Image, imageTypeName: str,  # noqa: N803
                **kwargs: Any) -> Any:
        current[0] = imageTypeName
        return own_compute(image, mask, imageTypeName, **kwargs)

    def edges(parameterValues: np.ndarray, **kwargs: Any) -> np.ndarray:  # noqa: N803
        if kwargs.get("binCount") is not None:
            return own(parameterValues, **kwargs)
        start = origin if current[0] == "original" else "minimum"
        return ibsi_bin_edges(parameterValues, float(kwargs.get("binWidth", 25)), start)

    imageoperations.getBinEdges = edges
    extractor.computeFeatures = compute
    try:
        yield
    finally:
        imageoperations.getBinEdges = own
        del extractor.computeFeatures  # the class's method again


def ibsi_bin_edges(values: np.ndarray, width: float, origin: float | Literal["minimum"]
                   ) -> np.ndarray:
    """Bin edges of IBSI 1 fixed bin size discretisation: ``origin + k * width``, k = 0, 1, ...

    ``numpy.digitize`` with them gives ``floor((x - origin) / width) + 1``, the IBSI discretised
    intensity. ``origin`` ``"minimum"``: the lowest of ``values``.

    Raises
    ------
    ExtractionError
        A value lies below ``origin`` (``below-bin-origin``).
    """
    lowest, highest = float(np.min(values)), float(np.max(values))
    start = lowest if origin == "minimum" else float(origin)
    if lowest < start:
        raise ExtractionError(f"intensity {lowest:g} lies below the first bin ({start:g}); "
                              "re-segment the ROI from the bin origin", reason="below-bin-origin")
    return start + width * np.arange(math.floor((highest - start) / width) + 2)


def feature_names(*, deprecated: bool = True) -> dict[str, list[str]]:
    """Every feature PyRadiomics can compute: ``{feature_class: [feature, ...]}`` (sorted).

    ``deprecated=False`` leaves out the features PyRadiomics marks deprecated (not enabled by
    default; some of them raise instead of returning a value when enabled).
    """
    return {cls: sorted(name for name, old in klass.getFeatureNames().items()
                        if deprecated or not old)
            for cls, klass in sorted(getFeatureClasses().items())}


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


def _to_rows(result: Mapping[str, Any]) -> list[FeatureRow]:
    """Sorted feature rows from PyRadiomics' ``{"<type>_<class>_<feature>": value}`` result."""
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
        rows.append((parts[0], parts[1], parts[2], float(arr.reshape(()))))
    return sorted(rows, key=lambda r: (r[0] != "original", r[0], r[1], r[2]))


def _reason_for(exc: BaseException) -> str:
    text = str(exc).lower()
    for needle, reason in _REASONS:
        if needle in text:
            return reason
    return "pyradiomics-error"
