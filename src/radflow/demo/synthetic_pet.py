"""Synthetic PET series (PET Image Storage) for tests: :func:`write_pet_series`.

A thin layer over :func:`radflow.demo.synthetic.write_series`: the same geometry, rescale and
identity handling, with the PET SOP class and the header attributes SUVs are computed from
(:mod:`radflow.dicom.suv`). :data:`PET_HEADER` and :data:`RADIOPHARMACEUTICAL` are a complete
BQML / START header (an FDG scan one hour after a 370 MBq injection, 75 kg, 1.75 m, male);
tests override or delete (value ``None``) single attributes to build each pitfall.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID

from radflow.demo.synthetic import Patient, Study, write_series

PET_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.128")

#: Top-level attributes of a complete BQML / START series (keyword -> value).
PET_HEADER: dict[str, Any] = {
    "Units": "BQML",
    "DecayCorrection": "START",
    "CorrectedImage": ["ATTN", "DECY", "SCAT", "RAN", "NORM"],
    "SeriesType": ["STATIC", "IMAGE"],
    "SeriesDate": "20240102",
    "SeriesTime": "101500",
    "AcquisitionDate": "20240102",
    "AcquisitionTime": "101500",
    "ActualFrameDuration": 180000,
    "PatientWeight": "75.0",
    "PatientSize": "1.75",
    "PatientSex": "M",
}
#: The RadiopharmaceuticalInformationSequence item of :data:`PET_HEADER`.
RADIOPHARMACEUTICAL: dict[str, Any] = {
    "Radiopharmaceutical": "Fluorodeoxyglucose",
    "RadionuclideTotalDose": "370000000",
    "RadionuclideHalfLife": "6586.2",
    "RadiopharmaceuticalStartTime": "091500",
    "RadiopharmaceuticalStartDateTime": "20240102091500",
}


def write_pet_series(
    folder: str | Path,
    stored: np.ndarray,
    *,
    patient: Patient,
    study: Study,
    series_uid: str,
    header: Mapping[str, Any] | None = None,
    radiopharmaceutical: Mapping[str, Any] | None = None,
    slice_header: Callable[[int], Mapping[str, Any]] | None = None,
    per_slice: Callable[[int, Dataset], None] | None = None,
    **series: Any,
) -> list[Path]:
    """Write a single-frame PET series, one file per slice.

    Parameters
    ----------
    folder, stored, patient, study, series_uid
        As :func:`radflow.demo.synthetic.write_series`.
    header
        Changes to :data:`PET_HEADER` (keyword -> value; ``None`` deletes the attribute).
    radiopharmaceutical
        Changes to :data:`RADIOPHARMACEUTICAL` (``None`` values delete); the mapping
        ``{"sequence": None}`` writes no RadiopharmaceuticalInformationSequence at all.
    slice_header
        ``slice_header(k)``: changes for slice ``k`` only (e.g. its AcquisitionTime).
    per_slice
        Called as ``per_slice(k, dataset)`` last, e.g. to add private elements.
    **series
        Passed to :func:`~radflow.demo.synthetic.write_series` (``spacing``, ``slope``, ...).

    Returns
    -------
    list of pathlib.Path
        The files written, in slice order.
    """
    top = {**PET_HEADER, **(header or {})}
    pharm_changes = dict(radiopharmaceutical or {})
    with_sequence = pharm_changes.pop("sequence", True) is not None
    pharm = {**RADIOPHARMACEUTICAL, **pharm_changes}

    def pet(k: int, ds: Dataset) -> None:
        ds.SOPClassUID = PET_IMAGE_STORAGE
        ds.file_meta.MediaStorageSOPClassUID = PET_IMAGE_STORAGE
        _set(ds, {**top, **(slice_header(k) if slice_header else {})})
        if with_sequence:
            item = Dataset()
            _set(item, pharm)
            ds.RadiopharmaceuticalInformationSequence = [item]
        if per_slice is not None:
            per_slice(k, ds)

    series.setdefault("intercept", 0.0)
    return write_series(folder, stored, patient=patient, study=study, series_uid=series_uid,
                        modality="PT", per_slice=pet, **series)


def _set(ds: Dataset, values: Mapping[str, Any]) -> None:
    for keyword, value in values.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)


__all__ = ["PET_HEADER", "PET_IMAGE_STORAGE", "RADIOPHARMACEUTICAL", "write_pet_series"]
