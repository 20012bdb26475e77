"""radflow's IBSI mode on one PyRadiomics parameter set: the one code path that both the extract
stage (``extract.ibsi: true``) and the conformance script (:mod:`radflow.ibsi.conformance`, via
:func:`radflow.ibsi.phantoms.radflow_features`) run.

:func:`ibsi_mode` turns a params dict into an :class:`IbsiMode`:

* the params PyRadiomics gets: :func:`radflow.ibsi.ibsi_preset` with radflow's resampling and
  binning (``voxelArrayShift: 0``, ``symmetricalGLCM: true``, no ``weightingNorm``,
  ``resegmentShape: false``; PyRadiomics' ``resampledPixelSpacing`` / ``interpolator`` removed);
* the IBSI interpolation of the original params' ``resampledPixelSpacing`` / ``interpolator``
  (:func:`radflow.ibsi.resample.resample_spec`), applied by :meth:`IbsiMode.prepare`
  (:func:`radflow.ibsi.resample.resample_ibsi`) before PyRadiomics;
* where the fixed-bin-size bins start (:func:`radflow.ibsi.ibsi_bin_origin`), for
  :func:`radflow.radiomics_adapter.feature_rows`' ``bin_origin``;
* the :class:`~radflow.ibsi.preset.Deviation`\\ s that remain (only ``filters`` can: LoG or
  wavelet image types in the params).

:meth:`IbsiMode.rows` runs PyRadiomics on an image and mask prepared that way and corrects and
codes its rows (:func:`radflow.ibsi.with_ibsi_codes`: excess kurtosis, axis lengths with the
voxel count of the grid PyRadiomics measured on); :meth:`IbsiMode.run` is both steps.

This module imports PyRadiomics (through :mod:`radflow.radiomics_adapter`); ``radflow.ibsi``
does not import it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import SimpleITK as sitk

from radflow.ibsi.preset import CodedRow, Deviation, ibsi_bin_origin, ibsi_preset, with_ibsi_codes
from radflow.ibsi.resample import ResampleSpec, resample_ibsi, resample_spec
from radflow.radiomics_adapter import ImageTypeSpec, feature_rows
from radflow.radiomics_adapter.features import BinOrigin

#: Prefix of the ``qc`` codes of the deviations that remain (``ibsi-deviation-filters``).
DEVIATION_QC = "ibsi-deviation"
#: PyRadiomics' default ``padDistance``.
PAD_DISTANCE = 5
_UNSET: Any = object()


@dataclass(frozen=True)
class IbsiMode:
    """How radflow's IBSI mode runs one PyRadiomics parameter set (module docstring).

    Attributes
    ----------
    params
        The params PyRadiomics gets (:func:`radflow.ibsi.ibsi_preset` applied).
    resample
        radflow's IBSI interpolation before PyRadiomics, or None (the params do not resample).
    bin_origin
        ``bin_origin`` of :func:`radflow.radiomics_adapter.feature_rows`.
    deviations
        What stays different from IBSI 1 with these params.
    """

    params: Mapping[str, Any]
    resample: ResampleSpec | None
    bin_origin: BinOrigin
    deviations: tuple[Deviation, ...] = ()

    @property
    def setting(self) -> Mapping[str, Any]:
        """The ``setting`` section PyRadiomics gets (what the IBSI codes are decided on)."""
        return self.params.get("setting") or {}

    @property
    def qc(self) -> tuple[str, ...]:
        """The deviations as ``qc`` codes: ``ibsi-deviation-<key>``."""
        return tuple(f"{DEVIATION_QC}-{d.key}" for d in self.deviations)

    def provenance(self) -> dict[str, Any]:
        """What the mode does besides the params, for the params hash."""
        return {"resample": asdict(self.resample) if self.resample else None,
                "bin_origin": self.bin_origin, "adjust": ["excess-kurtosis",
                                                          "sample-covariance"]}

    def prepare(self, image: sitk.Image, mask: sitk.Image, *, label: int
                ) -> tuple[sitk.Image, sitk.Image]:
        """``image`` and ``mask`` on the IBSI grid (:func:`radflow.ibsi.resample.resample_ibsi`),
        or as given when the params do not resample.

        As PyRadiomics' own resampling, only the ROI's bounding box and ``padDistance`` voxels
        (default 5) around it are kept, so that filters and memory see what they see with
        PyRadiomics; the points kept are those of the whole image's IBSI grid."""
        if self.resample is None:
            return image, mask
        pad = int(self.setting.get("padDistance", PAD_DISTANCE))
        return resample_ibsi(image, mask, self.resample, label=label, pad=pad)

    def rows(self, image: sitk.Image, mask: sitk.Image, *, label: int,
             extra_image_types: Sequence[ImageTypeSpec] = (), bin_origin: BinOrigin = _UNSET
             ) -> list[CodedRow]:
        """PyRadiomics' rows of a prepared image and mask, corrected and coded.

        Parameters
        ----------
        image, mask
            As :meth:`prepare` returns them (the ROI is ``mask == label``).
        extra_image_types
            radflow's filter image types.
        bin_origin
            Instead of :attr:`bin_origin` (the conformance script's IBSI re-segmentation by a
            range and outliers at once, which PyRadiomics' params cannot express).

        Returns
        -------
        list of (image_type, feature_class, feature, ibsi_code, value)
            Sorted as :func:`radflow.radiomics_adapter.feature_rows`.

        Raises
        ------
        ExtractionError, ConfigError
            As :func:`radflow.radiomics_adapter.feature_rows`.
        """
        origin = self.bin_origin if bin_origin is _UNSET else bin_origin
        rows = feature_rows(image, mask, self.params, label=label,
                            extra_image_types=extra_image_types, bin_origin=origin)
        return with_ibsi_codes(rows, settings=self.setting, ibsi_mode=True,
                               voxel_volume=math.prod(image.GetSpacing()))

    def run(self, image: sitk.Image, mask: sitk.Image, *, label: int,
            extra_image_types: Sequence[ImageTypeSpec] = ()) -> list[CodedRow]:
        """:meth:`prepare` then :meth:`rows`: what the extract stage does for one pair."""
        image, mask = self.prepare(image, mask, label=label)
        return self.rows(image, mask, label=label, extra_image_types=extra_image_types)


def ibsi_mode(params: Mapping[str, Any], *, round_intensities: bool = False) -> IbsiMode:
    """The :class:`IbsiMode` of PyRadiomics params (module docstring).

    Parameters
    ----------
    params
        PyRadiomics params (``setting``, ``imageType``, ``featureClass``); not modified.
    round_intensities
        Round the interpolated intensities to integers (IBSI: CT, Hounsfield units).

    Raises
    ------
    ConfigError
        An ``interpolator`` or ``resampledPixelSpacing`` radflow's IBSI resampling does not
        support.
    """
    spec = resample_spec(params.get("setting"), round_intensities=round_intensities)
    adjusted, deviations = ibsi_preset(params, radflow_resampling=True, radflow_binning=True)
    return IbsiMode(params=adjusted, resample=spec, bin_origin=ibsi_bin_origin(adjusted),
                    deviations=tuple(deviations))


__all__ = ["DEVIATION_QC", "IbsiMode", "ibsi_mode"]
