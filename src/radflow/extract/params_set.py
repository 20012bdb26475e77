"""The parameter set one extraction unit (one image) is run with: the PyRadiomics params of the
image's modality as PyRadiomics gets them (``zscore-image`` switched on), their hash, the QC
warnings of that set on that modality, and radflow's own normalisation of each pair's image
(``zscore-roi``, ``zscore-body``; :mod:`radflow.extract.normalise`).

The choice itself (which file, which normalisation, IBSI mode or not) is made when the workflow
is planned (:class:`radflow.params_sets.ParamsChoice`); this module only applies it. In IBSI mode
(``extract.ibsi``) the set runs through :class:`radflow.ibsi.mode.IbsiMode`, the code path of the
IBSI conformance script (:func:`pyradiomics_rows`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from radflow.errors import ConfigError
from radflow.extract.normalise import body_mask, zscore
from radflow.ibsi import ibsi_code
from radflow.ibsi.mode import IbsiMode, ibsi_mode
from radflow.ibsi.preset import CodedRow
from radflow.params_sets import (
    RADFLOW_METHODS,
    SINGLE_KEY,
    ParamsChoice,
    describe_warning,
    effective_normalisation,
    effective_params,
    qc_warnings,
    summarise,
)
from radflow.radiomics_adapter import ImageTypeSpec, feature_rows, load_params, params_hash

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnitParams:
    """A parameter set ready for extraction.

    Attributes
    ----------
    choice
        Which set this is (modality, params key and file, normalisation): the ``params_set``
        and ``normalisation`` columns.
    params
        The PyRadiomics params as PyRadiomics gets them (in IBSI mode: before
        :func:`radflow.ibsi.ibsi_preset`, which ``ibsi.params`` has applied).
    hash
        :func:`radflow.radiomics_adapter.params_hash` of ``params``, the filter image types,
        radflow's own normalisation and feature families, and the IBSI mode when on (the
        ``params_hash`` column).
    qc
        QC warnings of this set on the image's modality (:func:`radflow.params_sets.qc_warnings`)
        and, in IBSI mode, the deviations that remain (``ibsi-deviation-<key>``).
    scale, outliers
        ``normalizeScale`` and ``removeOutliers`` of the file (radflow's own z-scores use them).
    ibsi
        The IBSI mode of ``params`` (``choice.ibsi``), or None.
    """

    choice: ParamsChoice
    params: Mapping[str, Any]
    hash: str
    qc: tuple[str, ...]
    scale: float = 1.0
    outliers: float | None = None
    ibsi: IbsiMode | None = None

    @property
    def qc_text(self) -> str:
        """The ``qc`` column: the warnings, comma-separated (``""`` when none)."""
        return ",".join(self.qc)


def unit_params(params_path: str | Path, choice: ParamsChoice | None,
                extra_image_types: Sequence[ImageTypeSpec] = (),
                families: Mapping[str, Any] | None = None) -> UnitParams:
    """Read, validate and prepare the params file of a unit.

    Parameters
    ----------
    params_path
        The native PyRadiomics params file.
    choice
        The planned choice; None (the Python API with a bare file): the file for an image of
        unknown modality, normalised as the file says (``params_set`` ``all:<file name>``).
    extra_image_types
        radflow's filter image types (they enter the hash).
    families
        The settings of radflow's own feature families that are on
        (:meth:`radflow.extract.families.FeatureFamilies.provenance`; they enter the hash).

    Raises
    ------
    ConfigError
        Invalid params file, or a normalisation that contradicts the file's ``normalize``.
    """
    params_path = Path(params_path)
    raw = load_params(params_path)
    summary = summarise(raw, params_path.name)
    if choice is None:
        choice = ParamsChoice(key=SINGLE_KEY, file=params_path.name,
                              normalisation=effective_normalisation(None, summary))  # type: ignore[arg-type]
    try:
        params = effective_params(raw, choice.normalisation)
    except ConfigError as exc:
        raise ConfigError(f"parameter set {choice.name}: {exc}", reason="params") from exc
    method = choice.normalisation
    preprocessing: dict[str, Any] = {"normalisation": method} if method in RADFLOW_METHODS else {}
    qc = qc_warnings(choice.modality, summary, method)
    for code in qc:
        logger.warning("parameter set %s on a %s image: QC %s: %s", choice.name, choice.modality,
                       code, describe_warning(code))
    mode = None
    if choice.ibsi:
        # IBSI rounds interpolated CT intensities (integer HU); a radflow z-score is not HU
        mode = ibsi_mode(params, round_intensities=choice.modality == "CT"
                         and method not in RADFLOW_METHODS)
        preprocessing["ibsi"] = mode.provenance()
        qc = (*qc, *mode.qc)
        for deviation in mode.deviations:
            logger.warning("parameter set %s in IBSI mode: deviation %s remains (%s): %s",
                           choice.name, deviation.key, deviation.affects, deviation.cause)
    return UnitParams(choice=choice, params=params,
                      hash=params_hash(params, extra_image_types,
                                       preprocessing=preprocessing or None, families=families),
                      qc=qc, scale=summary.normalize_scale, outliers=summary.remove_outliers,
                      ibsi=mode)


def pyradiomics_rows(image: sitk.Image, mask: sitk.Image, unit: UnitParams, *, label: int,
                     extra_image_types: Sequence[ImageTypeSpec] = ()) -> list[CodedRow]:
    """PyRadiomics' rows of one pair with their ``ibsi_code``: the step the extract stage and
    :class:`radflow.extract.in_memory.InMemoryExtractor` share.

    Without IBSI mode: :func:`radflow.radiomics_adapter.feature_rows` of ``unit.params`` (the
    values PyRadiomics' own command line gives), coded by :func:`radflow.ibsi.ibsi_code` (no
    code for the features that need a correction). In IBSI mode:
    :meth:`radflow.ibsi.mode.IbsiMode.run` (IBSI resampling, PyRadiomics with the IBSI preset
    and bin origin, corrections, codes), the conformance script's code path.

    Parameters
    ----------
    image
        The pair's image, normalised by radflow where the set says so.
    mask, label
        The label map and the ROI's label.
    unit
        The unit's parameter set.
    extra_image_types
        radflow's filter image types.

    Raises
    ------
    ExtractionError, ConfigError
        As :func:`radflow.radiomics_adapter.feature_rows`.
    """
    if unit.ibsi is not None:
        return unit.ibsi.run(image, mask, label=label, extra_image_types=extra_image_types)
    setting = unit.params.get("setting") or {}
    return [(t, c, f, ibsi_code(c, f, settings=setting), v) for t, c, f, v in
            feature_rows(image, mask, unit.params, label=label,
                         extra_image_types=extra_image_types)]


class Normaliser:
    """radflow's normalisation of each pair's image (nothing for ``none`` / ``zscore-image``,
    which PyRadiomics does); the body mask of an image is computed once."""

    def __init__(self, unit: UnitParams) -> None:
        self._unit = unit
        self._bodies: dict[str, np.ndarray] = {}

    def apply(self, image: sitk.Image, image_path: str, mask: sitk.Image, label: int
              ) -> sitk.Image:
        """``image`` normalised for the pair with ``mask`` and ``label``.

        Raises
        ------
        ExtractionError
            The region's statistics are unusable (see :func:`radflow.extract.normalise.zscore`).
        """
        method = self._unit.choice.normalisation
        if method not in RADFLOW_METHODS:
            return image
        if method == "zscore-roi":
            region, what = sitk.GetArrayViewFromImage(mask) == label, f"ROI label {label}"
        else:
            if image_path not in self._bodies:
                self._bodies = {image_path: body_mask(image)}  # one image per unit
            region, what = self._bodies[image_path], "body mask"
        return zscore(image, region, scale=self._unit.scale, outliers=self._unit.outliers,
                      what=what)


__all__ = ["Normaliser", "UnitParams", "pyradiomics_rows", "unit_params"]
