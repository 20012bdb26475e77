"""Stage ``convert``: one source (DICOM series or sheet image/mask file) -> one volume file.

For each source the crawl planned, read its explicit file list (kept in the private folder),
build the volume and write

``<results>/convert/<case_id>/<series_key>.nii.gz``
    A DICOM series: images as float32 (each slice's own RescaleSlope/Intercept applied, slices
    sorted along the slice normal, geometry verified); masks as integer label maps.
``<results>/convert/<case_id>/<series_key>.mha``
    A NIfTI/NRRD file named in the cohort sheet: an exact copy of the image as SimpleITK reads
    it (pixel type, voxel values and float64 geometry kept, no header text of the file), so
    radflow analyses what the ``pyradiomics`` command line analyses for that file
    (:mod:`radflow.io.volume_files`); a mask as an integer label map (values kept).
``<results>/convert/<case_id>/<series_key>_<label>.nii.gz``
    For an RTSTRUCT or SEG: one label map per planned ROI / segment on the grid of its linked
    image (:mod:`radflow.convert.masks`).
``<results>/convert/<case_id>/<series_key>.json``
    The sidecar: ``status`` (``ok`` | ``failed:<reason>``), voxel hash, grid, and acquisition
    parameters useful for analysis, without identifying values; ``qc`` (QC warning -> count,
    e.g. ``hu-out-of-range`` of a CT) and ``bias_correction`` (an MR corrected with N4,
    ``convert.mr_bias_correction``) when they apply. It is written last, so a killed job leaves
    no sidecar and the job re-runs.

A series that violates a geometry rule gets ``failed:<reason>`` in its sidecar and no volume: a
wrong volume is never written. A colour (RGB) series is written as an RGB NIfTI (``DT_RGB24``)
with the status ``excluded:colour-image``: it can be viewed, and the pair and extract stages skip
it (radiomics needs grey values; :mod:`radflow.dicom.colour`). A PET series (modality PT) is
written as float32 SUVs (``convert.pet_units``; the sidecar's ``suv`` has the method, factor and
header values used), or fails with a ``suv-*`` reason (:mod:`radflow.convert.pet`). Messages
(log lines, ``error``) name the source by its pseudonymous key and files by their position in
the series, never by file or folder name.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from radflow import __version__
from radflow.convert.bias import n4_applies, n4_correct
from radflow.convert.masks import MASK_KINDS, convert_mask_object
from radflow.convert.pet import pet_image
from radflow.dicom.colour import COLOUR_REASON, is_colour
from radflow.dicom.headers import get_str
from radflow.dicom.sidecar import acquisition_sidecar
from radflow.dicom.volume import read_series
from radflow.errors import PairingError, RadflowError
from radflow.io.nifti import read_image
from radflow.io.volume_files import MHA_SUFFIX, write_volume
from radflow.records import ConvertSidecar, Status, read_source, write_sidecar
from radflow.settings import ConvertSettings, GeometrySettings

logger = logging.getLogger(__name__)


def label_map(image: sitk.Image, name: str) -> sitk.Image:
    """Return a mask image as an integer label map (uint8 if labels fit, else int32).

    Raises
    ------
    PairingError
        When the mask holds non-integer or negative values (``failed:invalid-mask``).
    """
    arr = sitk.GetArrayFromImage(image)
    if arr.ndim != 3:
        raise PairingError(f"{name}: mask must be 3-D, got {arr.ndim}-D", reason="invalid-mask")
    if not np.issubdtype(arr.dtype, np.integer) and (
            not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr))):
        raise PairingError(f"{name}: mask holds non-integer values; expected a label map",
                               reason="invalid-mask")
    if arr.size and arr.min() < 0:
        raise PairingError(f"{name}: mask holds negative labels", reason="invalid-mask")
    dtype = np.uint8 if (arr.size == 0 or arr.max() <= 255) else np.int32
    out = sitk.GetImageFromArray(arr.astype(dtype))
    out.CopyInformation(image)
    return out


def _grid(image: sitk.Image) -> dict[str, Any]:
    return {
        "size": list(image.GetSize()),
        "spacing": [float(v) for v in image.GetSpacing()],
        "origin": [float(v) for v in image.GetOrigin()],
        "direction": [float(v) for v in image.GetDirection()],
    }


def convert_source(source: dict[str, Any], nifti_path: Path, settings: GeometrySettings,
                   image_sidecar: str | None = None, *,
                   convert: ConvertSettings | None = None) -> dict[str, Any]:
    """Convert one source and write its volume; return the sidecar dict (without writing it).

    ``nifti_path`` is ``<series_key>.nii.gz``; a sheet file is written beside it as
    ``<series_key>.mha`` instead, and the sidecar's ``nifti`` key names the file written.

    RTSTRUCT and SEG sources (``kind`` ``rtstruct`` / ``seg``) are built on the grid recorded
    in ``image_sidecar`` and give one NIfTI per ROI beside ``nifti_path``
    (:mod:`radflow.convert.masks`). Per-source problems are returned as
    ``status = "failed:<reason>"`` (``excluded:<reason>`` for a reason of that kind); they are
    not raised. A colour DICOM series is written and gets ``excluded:colour-image``.

    ``convert`` (default: :class:`~radflow.settings.ConvertSettings` defaults): with
    ``mr_bias_correction``, an MR series is N4-corrected before it is written
    (:mod:`radflow.convert.bias`; sidecar key ``bias_correction``). QC warnings of a CT
    series' values go to the sidecar's ``qc`` (code -> count) and the log.
    """
    key = source["series_key"]
    if source["kind"] in MASK_KINDS:
        nifti_path.unlink(missing_ok=True)
        return convert_mask_object(source, nifti_path.parent, image_sidecar)
    sidecar: dict[str, Any] = {"series_key": key, "case_id": source["case_id"],
                               "role": source["role"], "radflow_version": __version__}
    # A DICOM series is written as NIfTI; a sheet file is copied exactly (MetaImage, .mha).
    mha_path = nifti_path.with_name(nifti_path.name.removesuffix(".nii.gz") + MHA_SUFFIX)
    out_path = nifti_path
    try:
        if source["kind"] == "dicom":
            volume = read_series([Path(f) for f in source["files"]], settings,
                                 frames=source.get("frames"))
            image = volume.image
            sidecar["acquisition"] = acquisition_sidecar(volume.datasets[0])
            sidecar["volume"] = volume.info
            image, suv = pet_image(volume, (convert or ConvertSettings()).pet_units)
            if suv is not None:  # PET as SUVs (radflow.convert.pet)
                sidecar["suv"] = suv
            if volume.qc:  # CT values (radflow.dicom.plausibility.hu_qc)
                sidecar["qc"] = volume.qc
                logger.warning("convert %s: QC %s", key, _qc_text(volume.qc))
            if (convert or ConvertSettings()).mr_bias_correction and n4_applies(
                    image, get_str(volume.datasets[0], "Modality")):
                image, sidecar["bias_correction"] = n4_correct(image, f"series {key}")
        else:
            image = read_sheet_file(source)
            sidecar["acquisition"] = {}
            out_path = mha_path
        _remove(*({nifti_path, mha_path} - {out_path}))  # e.g. the copy of an earlier version
        sidecar["voxel_hash"] = write_volume(out_path, image)
        if is_colour(image):
            sidecar.update(status=str(Status.excluded(COLOUR_REASON)), nifti=out_path.name,
                           grid=_grid(image),
                           error="colour (RGB) image: written for viewing; radiomics needs "
                                 "grey values, so pairing and extraction skip it")
            logger.warning("convert %s: excluded:%s (written as RGB)", key, COLOUR_REASON)
        else:
            sidecar.update(status="ok", nifti=out_path.name, grid=_grid(image))
    except RadflowError as exc:
        status = str(Status.of_reason(exc.reason))
        logger.warning("convert %s: %s: %s", key, status, exc)
        _remove(nifti_path, mha_path)
        sidecar.update(status=status, error=str(exc))
    except Exception as exc:  # a radflow bug must not stop the cohort: record it, log the trace
        # The message is left out of the sidecar: it could quote a header value.
        logger.exception("convert %s: failed:internal-error (%s)", key, type(exc).__name__)
        _remove(nifti_path, mha_path)
        sidecar.update(status=str(Status.failed("internal-error")), error=type(exc).__name__)
    return sidecar


def _qc_text(qc: dict[str, int]) -> str:
    return ", ".join(f"{code} ({count})" for code, count in sorted(qc.items()))


def read_sheet_file(source: dict[str, Any]) -> sitk.Image:
    """The image or mask file of a cohort-sheet source, as SimpleITK reads it.

    An image keeps its pixel type, voxel values and float64 geometry: it is what the
    ``pyradiomics`` command line analyses for the same file, and
    :func:`radflow.io.volume_files.write_mha` stores it exactly. A mask becomes an integer label
    map (:func:`label_map`: voxel values and geometry kept).

    Raises
    ------
    InputFileError
        Missing or unreadable file.
    PairingError
        Not 3-D (``not-3d``), or a mask that is not a label map (``invalid-mask``).
    """
    key = source["series_key"]
    image = read_image(source["files"][0], name=f"source {key}")
    if image.GetDimension() != 3:
        raise PairingError(f"source {key}: expected a 3-D image, got "
                           f"{image.GetDimension()}-D", reason="not-3d")
    if source["role"] == "mask":
        return label_map(image, f"source {key}")
    return image


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def run_convert(*, source_json: str, sidecar_json: str, settings: GeometrySettings,
                image_sidecar: str | None = None, convert: ConvertSettings | None = None) -> None:
    """Entry point of ``scripts/convert_one.py``: convert one source, write NIfTI then sidecar.

    ``image_sidecar`` is the linked image's sidecar (RTSTRUCT/SEG sources only).
    """
    source = read_source(source_json).to_json()
    sidecar_path = Path(sidecar_json)
    nifti_path = sidecar_path.with_name(sidecar_path.name.removesuffix(".json") + ".nii.gz")
    sidecar = convert_source(source, nifti_path, settings, image_sidecar, convert=convert)
    write_sidecar(sidecar_path, ConvertSidecar.from_json(sidecar))
    logger.info("convert %s: %s", source["series_key"], sidecar["status"])
