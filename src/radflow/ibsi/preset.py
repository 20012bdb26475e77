"""IBSI 1 mode around PyRadiomics: settings it allows, corrections of its values, what stays.

Three pieces, for the extract stage's ``extract.ibsi: true`` (wired by the extract stage):

* :func:`ibsi_preset` adjusts a PyRadiomics params dict where a setting decides between
  PyRadiomics' and IBSI's definition (:data:`IBSI_SETTINGS`), and lists the :class:`Deviation`\\ s
  the settings still imply (fixed bin size origin, PyRadiomics' resampling grid, filters);
* :func:`ibsi_adjust` corrects values whose definition differs by a known formula (column
  ``adjust`` of ``codes.tsv``): Kurtosis - 3 is IBSI's excess kurtosis (IPH6); the axis lengths
  are multiplied by ``sqrt(N / (N - 1))`` (PyRadiomics divides the covariance of the voxel centres
  by N, the IBSI reference values by N - 1);
* :func:`with_ibsi_codes` gives feature rows their ``ibsi_code`` (after :func:`ibsi_adjust` in
  IBSI mode), the one call the extract stage needs.

What is left (:class:`Deviation`, and the features and aggregation methods PyRadiomics does not
compute) is measured on the IBSI phantoms by :mod:`radflow.ibsi.conformance`.

Parameter choices IBSI leaves to the user (bin width or count, distances, NGLDM coarseness
``gldm_a``, re-segmentation range) are kept as given.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from radflow.ibsi.codes import codes_table

#: Settings ibsi_preset writes, and why (IBSI 1 manual, chapter "Image features").
IBSI_SETTINGS: dict[str, tuple[Any, str]] = {
    "voxelArrayShift": (0, "IBSI energy (N8CA) and root mean square (5ZWQ) add no shift"),
    "symmetricalGLCM": (True, "IBSI GLCMs are symmetric"),
    "weightingNorm": (None, "distance weighting merges directions, none of IBSI's aggregations"),
    "resegmentShape": (False, "IBSI morphology uses the morphological mask (not re-segmented)"),
}

#: One feature row: (image_type, feature_class, feature, value).
Row = tuple[str, str, str, float]
#: A row with its code: (image_type, feature_class, feature, ibsi_code, value).
CodedRow = tuple[str, str, str, str, float]


@dataclass(frozen=True)
class Deviation:
    """A difference from IBSI 1 that ``ibsi_preset`` cannot remove.

    Attributes
    ----------
    key
        Short name (``fixed-bin-size``, ``resampling-grid``, ``filters``).
    affects
        Which features.
    cause
        What PyRadiomics does differently.
    """

    key: str
    affects: str
    cause: str


FIXED_BIN_SIZE = Deviation(
    "fixed-bin-size", "texture features that depend on grey-level indices (joint and sum "
    "average, autocorrelation, grey-level emphases, busyness)",
    "PyRadiomics' bin edges are multiples of binWidth and bin 1 is the bin of the ROI minimum; "
    "IBSI counts bins from the re-segmentation range's lower bound. The same when that bound is "
    "a multiple of binWidth and the ROI minimum lies in the first bin, else grey levels are "
    "shifted (shift-invariant features such as contrast or entropy are not affected); "
    "radflow's bin_origin (ibsi_bin_origin) bins the IBSI way")
RESAMPLING_GRID = Deviation(
    "resampling-grid", "all features of a resampled image",
    "PyRadiomics' resampling aligns the grid on the corner of the ROI bounding box (IBSI: grid "
    "centres aligned), interpolates the mask with nearest neighbour (IBSI: linear, partial "
    "volume >= 0.5) and casts intensities to the input pixel type (integer images: truncated; "
    "IBSI: rounded to the nearest integer for CT); radflow.ibsi.resample_ibsi does it the IBSI "
    "way")
FILTERS = Deviation(
    "filters", "features of LoG and wavelet images",
    "PyRadiomics' LoG and wavelet filters are not the IBSI 2 filters (README, IBSI 2 "
    "conformance); radflow's ibsi-log / ibsi-wavelet image types are")


def ibsi_preset(params: Mapping[str, Any], *, radflow_resampling: bool = False,
                radflow_binning: bool = False) -> tuple[dict[str, Any], list[Deviation]]:
    """PyRadiomics params adjusted for IBSI 1, and the deviations that remain.

    Parameters
    ----------
    params
        PyRadiomics params (``setting``, ``imageType``, ``featureClass``); not modified.
    radflow_resampling
        The caller resamples image and mask with :func:`radflow.ibsi.resample.resample_ibsi`
        (:func:`radflow.ibsi.resample.resample_spec` of the original ``setting``) before
        PyRadiomics: ``resampledPixelSpacing`` and ``interpolator`` are removed from the result
        and :data:`RESAMPLING_GRID` is not a deviation.
    radflow_binning
        The caller passes :func:`ibsi_bin_origin` of the params to
        :func:`radflow.radiomics_adapter.compute_features` (``bin_origin``): fixed bin size
        bins then start where IBSI starts them and :data:`FIXED_BIN_SIZE` is not a deviation.

    Returns
    -------
    (params, deviations)
        A new params dict with :data:`IBSI_SETTINGS` applied (``weightingNorm`` removed), and
        the :class:`Deviation`\\ s of these params, in a fixed order.
    """
    out = copy.deepcopy(dict(params))
    setting = dict(out.get("setting") or {})
    for key, (value, _why) in IBSI_SETTINGS.items():
        if value is None:
            setting.pop(key, None)
        else:
            setting[key] = value
    deviations: list[Deviation] = []
    if setting.get("binCount") is None and not radflow_binning:  # binWidth unless binCount
        deviations.append(FIXED_BIN_SIZE)
    if setting.get("resampledPixelSpacing"):
        if radflow_resampling:
            setting.pop("resampledPixelSpacing")
            setting.pop("interpolator", None)
        else:
            deviations.append(RESAMPLING_GRID)
    image_types = {str(k).lower() for k in (out.get("imageType") or {})}
    if image_types & {"log", "wavelet"}:
        deviations.append(FILTERS)
    out["setting"] = setting
    return out, deviations


def ibsi_bin_origin(params: Mapping[str, Any]) -> float | Literal["minimum"] | None:
    """Where IBSI starts the fixed-bin-size bins of these PyRadiomics params (the
    ``bin_origin`` of :func:`radflow.radiomics_adapter.compute_features`).

    The lower bound of an absolute ``resegmentRange`` (IBSI's recommendation), else
    ``"minimum"`` (IBSI's data-driven origin, the ROI's lowest intensity); None with
    ``binCount`` (fixed bin number: PyRadiomics' binning is IBSI's).
    """
    setting = params.get("setting") or {}
    if setting.get("binCount") is not None:
        return None
    bounds = setting.get("resegmentRange") or []
    if setting.get("resegmentMode", "absolute") == "absolute" and bounds and \
            bounds[0] is not None:
        return float(bounds[0])
    return "minimum"


def ibsi_adjust(rows: Sequence[Row], *, voxel_volume: float | None = None) -> list[Row]:
    """Rows with the ``adjust`` corrections of ``codes.tsv`` applied (module docstring).

    Parameters
    ----------
    rows
        Feature rows of one ROI (several image types allowed).
    voxel_volume
        Volume (mm³) of one voxel of the grid PyRadiomics computed shape features on (after its
        resampling): with ``shape_VoxelVolume`` it gives the voxel count N of the shape axis
        lengths. Without it they stay as they are (radflow's ``size`` family has its own count).

    Returns
    -------
    list
        The rows in the same order, corrected where possible (see :func:`with_ibsi_codes` for
        which ones were).
    """
    return [row for row, _ in _adjusted(rows, voxel_volume)]


def with_ibsi_codes(rows: Sequence[Row], *, settings: Mapping[str, Any] | None = None,
                    ibsi_mode: bool = False, voxel_volume: float | None = None
                    ) -> list[CodedRow]:
    """Feature rows with their ``ibsi_code``: the one function the extract stage calls.

    Parameters
    ----------
    rows
        Feature rows of one ROI.
    settings
        The PyRadiomics ``setting`` section they were computed with (see
        :func:`radflow.ibsi.ibsi_code`).
    ibsi_mode
        Apply :func:`ibsi_adjust` (with ``voxel_volume``) first; the corrected features get
        their codes. Without it, features that need a correction get ``""``.
    voxel_volume
        See :func:`ibsi_adjust`.
    """
    pairs = _adjusted(rows, voxel_volume) if ibsi_mode else [(row, False) for row in rows]
    table = codes_table()
    out: list[CodedRow] = []
    for (image_type, cls, feature, value), adjusted in pairs:
        entry = table.get((cls, feature))
        code = entry.code(settings, adjusted=adjusted) if entry else ""
        out.append((image_type, cls, feature, code, value))
    return out


def _adjusted(rows: Sequence[Row], voxel_volume: float | None) -> list[tuple[Row, bool]]:
    """(row, corrected?) for each row; rows without correction count as corrected."""
    table = codes_table()
    counts = _voxel_counts(rows, voxel_volume)
    out: list[tuple[Row, bool]] = []
    for image_type, cls, feature, value in rows:
        entry = table.get((cls, feature))
        kind = entry.adjust if entry else ""
        if kind == "excess-kurtosis":
            out.append(((image_type, cls, feature, value - 3.0), True))
        elif kind == "sample-covariance":
            n = counts.get((image_type, cls))
            if n is None:
                out.append(((image_type, cls, feature, value), False))
            else:
                out.append(((image_type, cls, feature, value * math.sqrt(n / (n - 1))), True))
        else:
            out.append(((image_type, cls, feature, value), True))
    return out


def _voxel_counts(rows: Sequence[Row], voxel_volume: float | None) -> dict[tuple[str, str], int]:
    """N per (image_type, class) for the sample-covariance correction (only N > 1)."""
    counts: dict[tuple[str, str], int] = {}
    for image_type, cls, feature, value in rows:
        n: float | None = None
        if (cls, feature) == ("size", "VoxelCount"):
            n = value
        elif (cls, feature) == ("shape", "VoxelVolume") and voxel_volume:
            n = value / voxel_volume
        if n is not None and math.isfinite(n) and round(n) > 1:
            counts[(image_type, cls)] = round(n)
    return counts


__all__ = ["FILTERS", "FIXED_BIN_SIZE", "IBSI_SETTINGS", "RESAMPLING_GRID", "CodedRow",
           "Deviation", "Row", "ibsi_adjust", "ibsi_bin_origin", "ibsi_preset", "with_ibsi_codes"]
