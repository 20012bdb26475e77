"""radflow's own feature families in the extract stage: semantic size and density (``recist``,
``size``, ``density``, ``suv``), fractal dimensions (``fractal``) and Minkowski functionals
(``minkowski``), configured in ``extract.families`` (README, "Semantic size, fractal dimension
and Minkowski functionals").

The computations live in :mod:`radflow.features`; this module builds their settings from the
config (:func:`feature_families`), runs them on one pair (:func:`family_features`) and turns
their results into feature rows (with IBSI codes from :func:`radflow.ibsi.ibsi_code`, the one
table ``ibsi/codes.tsv``), the pair's side record (landmarks, Minkowski curves;
:class:`radflow.records.side.PairSide`) and QC notes.

What they measure on: the image as converted (the acquisition grid, modality units: HU, SUV),
not PyRadiomics' pre-processed image (no resampling, no radflow or PyRadiomics normalisation,
no resegmentation), and the binary mask ``mask == label``. RECIST is defined on the acquisition
plane, so the image must not be resampled; the grey-level families follow for consistency.
Image type: ``original`` only (filtered images are computed inside PyRadiomics' pipeline on its
resampled, cropped image; running a filter again on the whole acquisition grid would cost
more than the families themselves).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import SimpleITK as sitk

from radflow.errors import ConfigError, ExtractionError, RadflowError
from radflow.features.fractal import FractalSettings, fractal_features
from radflow.features.minkowski import MinkowskiSettings, minkowski_features
from radflow.features.semantic import Landmarks, SemanticSettings, semantic_features
from radflow.ibsi import ibsi_code, with_ibsi_codes
from radflow.records.side import CurvePoint, Landmark, PairSide
from radflow.settings import from_mapping

#: The one image type of the families' rows.
IMAGE_TYPE = "original"
#: The families in ``extract.families`` and the ``feature_class`` values of their rows.
FAMILIES: tuple[str, ...] = ("semantic", "fractal", "minkowski")
FEATURE_CLASSES: tuple[str, ...] = ("recist", "size", "density", "suv", "fractal", "minkowski")
#: QC note of a pair whose ROI is too small for two box sizes (its fractal features are NaN).
FRACTAL_TOO_SMALL = "fractal-roi-too-small"

#: One feature row of a family: (image_type, feature_class, feature, ibsi_code, value).
FamilyRow = tuple[str, str, str, str, float]


@dataclass(frozen=True)
class FeatureFamilies:
    """The enabled families and their settings (None: off).

    Attributes
    ----------
    semantic, fractal, minkowski
        The settings of :mod:`radflow.features.semantic` (``components`` ``all`` or
        ``largest``: the table holds one value per pair and feature), ``fractal`` and
        ``minkowski``; None when the family is off.
    """

    semantic: SemanticSettings | None = None
    fractal: FractalSettings | None = None
    minkowski: MinkowskiSettings | None = None

    @property
    def enabled(self) -> bool:
        """At least one family is on."""
        return any(getattr(self, name) is not None for name in FAMILIES)

    def provenance(self) -> dict[str, dict[str, Any]]:
        """The enabled families' settings (and methods), for the params hash."""
        out: dict[str, dict[str, Any]] = {}
        if self.semantic is not None:
            out["semantic"] = dataclasses.asdict(self.semantic)
        if self.fractal is not None:
            out["fractal"] = self.fractal.provenance()
        if self.minkowski is not None:
            out["minkowski"] = self.minkowski.provenance()
        return out


def feature_families(config: Mapping[str, Any] | None, *,
                     section: str = "extract.families") -> FeatureFamilies:
    """The families of the config's ``extract.families`` section.

    Parameters
    ----------
    config
        ``{semantic | fractal | minkowski: {enabled: bool, <settings>...}}``; a family not
        listed, or without ``enabled``, is on with its default settings. None or ``{}``: all
        three on.

    Raises
    ------
    ConfigError
        An unknown family or setting (naming ``<section>.<family>``), an invalid value,
        ``semantic.components: each``.
    """
    config = dict(config or {})
    unknown = sorted(set(config) - set(FAMILIES))
    if unknown:
        raise ConfigError(f"{section}: unknown famil{'y' if len(unknown) == 1 else 'ies'} "
                          f"{', '.join(unknown)}; expected some of {', '.join(FAMILIES)}")
    classes = {"semantic": SemanticSettings, "fractal": FractalSettings,
               "minkowski": MinkowskiSettings}
    built: dict[str, Any] = {}
    for name, cls in classes.items():
        options = dict(config.get(name) or {})
        enabled = options.pop("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{section}.{name}.enabled must be true or false, got {enabled!r}")
        if enabled:
            built[name] = from_mapping(cls, options, section=f"{section}.{name}")
    semantic = built.get("semantic")
    if semantic is not None and semantic.components == "each":
        raise ConfigError(f"{section}.semantic.components: 'each' gives one value per component; "
                          "the feature table holds one per pair: use all or largest")
    return FeatureFamilies(**built)


@dataclass(frozen=True)
class FamilyOutput:
    """What the families measured on one pair.

    Attributes
    ----------
    rows
        Feature rows (:data:`FamilyRow`), semantic families first, then fractal, minkowski.
    landmarks, curves
        For the pair's side record.
    qc
        QC notes (:data:`FRACTAL_TOO_SMALL`).
    """

    rows: list[FamilyRow] = field(default_factory=list)
    landmarks: tuple[Landmark, ...] = ()
    curves: tuple[CurvePoint, ...] = ()
    qc: tuple[str, ...] = ()

    def side(self, pair_id: str, case_id: str, image_key: str) -> PairSide:
        """The pair's side record."""
        return PairSide(pair_id=pair_id, case_id=case_id, image_key=image_key,
                        landmarks=self.landmarks, curves=self.curves)


def family_features(image: sitk.Image, mask: sitk.Image, label: int,
                    families: FeatureFamilies, *, modality: str = "") -> FamilyOutput:
    """Run the enabled families on the ROI ``mask == label`` of ``image``.

    Parameters
    ----------
    image
        The image as converted (acquisition grid, modality units).
    mask
        The pair's label map on the image grid.
    label
        The ROI's label.
    families
        Which families, with which settings.
    modality
        The image's modality; ``PT`` adds the ``suv`` family.

    Raises
    ------
    ExtractionError
        A family failed: the reason of its input check (``grid-mismatch``, ``invalid-mask``,
        ``empty-mask``) or ``family-error``; the message names the family and the label.
    """
    if not families.enabled:
        return FamilyOutput()
    binary = sitk.BinaryThreshold(mask, float(label), float(label), 1, 0)
    rows: list[FamilyRow] = []
    landmarks: tuple[Landmark, ...] = ()
    curves: tuple[CurvePoint, ...] = ()
    qc: list[str] = []
    if families.semantic is not None:
        result = _run("semantic", label, semantic_features, image, binary, families.semantic,
                      modality=modality)
        rows += [_row(f"{IMAGE_TYPE}_{name}", value) for name, value in result.features.items()]
        landmarks = _landmarks(result.landmarks)
    if families.fractal is not None:
        values = _run("fractal", label, fractal_features, image, binary, families.fractal,
                      image_type=IMAGE_TYPE)
        rows += [_row(name, value) for name, value in values.items()]
        if any(math.isnan(v) for v in values.values()):
            qc.append(FRACTAL_TOO_SMALL)
    if families.minkowski is not None:
        mink = _run("minkowski", label, minkowski_features, image, binary, families.minkowski,
                    image_type=IMAGE_TYPE)
        rows += [_row(name, value) for name, value in mink.features.items()]
        curves = tuple(CurvePoint(IMAGE_TYPE, level, *point)
                       for level, point in enumerate(mink.curves))
    return FamilyOutput(rows=rows, landmarks=landmarks, curves=curves, qc=tuple(qc))


def ibsi_family_rows(rows: list[FamilyRow]) -> list[FamilyRow]:
    """The families' rows in IBSI mode (``extract.ibsi``): :func:`radflow.ibsi.ibsi_adjust`
    applied and the codes given again (the ``size`` axis lengths with the ROI's voxel count,
    as the conformance script does on the digital phantom)."""
    return with_ibsi_codes([(t, c, f, v) for t, c, f, _, v in rows], ibsi_mode=True)


def _run(family: str, label: int, function: Any, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)`` with its failures as :class:`ExtractionError`."""
    try:
        return function(*args, **kwargs)
    except RadflowError as exc:
        raise ExtractionError(f"label {label}: {family} features: {exc}",
                              reason=exc.reason) from exc
    except Exception as exc:  # a computation that fails on one pair must not stop the unit
        raise ExtractionError(f"label {label}: {family} features failed: "
                              f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}",
                              reason="family-error") from exc


def _row(name: str, value: float) -> FamilyRow:
    """``<image_type>_<class>_<feature>`` and its value as a row."""
    image_type, feature_class, feature = name.split("_", 2)
    return (image_type, feature_class, feature, ibsi_code(feature_class, feature), float(value))


def _landmarks(found: Landmarks) -> tuple[Landmark, ...]:
    """The semantic family's landmarks as side-record entries."""
    out = [Landmark("long_axis", found.slice_index, found.long_axis),
           Landmark("short_axis", found.slice_index, found.short_axis),
           Landmark("diameter_3d", None, found.diameter_3d)]
    if found.suv_peak_centre is not None:
        out.append(Landmark("suv_peak_centre", None, (found.suv_peak_centre,)))
    return tuple(out)


__all__ = ["FAMILIES", "FEATURE_CLASSES", "FRACTAL_TOO_SMALL", "IMAGE_TYPE",
           "FamilyOutput", "FamilyRow", "FeatureFamilies", "family_features", "feature_families",
           "ibsi_family_rows"]
