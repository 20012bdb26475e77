"""The clean series every bad-input case is written from (see bad_inputs_corpus.py).

The clean series (:data:`STORED`, :data:`SPACING`, :data:`ORIGIN`, CT, slope 1, intercept -1024)
is the oracle: voxels must equal ``STORED * slope + intercept`` computed here with numpy, never
with radflow's reader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from radflow.demo.synthetic import Patient, Study, derived_uid, write_series

N, ROWS, COLS = 5, 32, 40          # J2K lossy needs >= 32 pixels per side
SPACING = (0.8, 0.7, 2.5)          # x (column spacing), y (row spacing), z (mm)
ORIGIN = (-10.0, 20.0, 30.0)
_z, _y, _x = np.meshgrid(np.arange(N), np.arange(ROWS), np.arange(COLS), indexing="ij")
#: Stored values of the clean series: smooth (lossy codecs stay close) and signed.
STORED = (-500 + 60 * _z + 9 * _y - 4 * _x + (_x * _y) % 7 * 5).astype(np.int16)
INTERCEPT = -1024.0


@dataclass(frozen=True)
class Case:
    """One difficult input.

    Attributes
    ----------
    id
        Short name (also the test id).
    build
        ``build(folder, patient)`` writes the case's files into ``folder``.
    crawl
        Record name -> exact crawl status.
    convert
        Record name -> convert status, for records the crawl accepts (default ``ok``).
    settings
        Crawl settings that differ from the defaults (``include_derived``, ``geometry``).
    expect
        Record name -> expected voxels (z, y, x) after conversion, or a callable
        ``(image, info) -> None`` that asserts.
    qc
        Record name -> expected QC codes.
    """

    id: str
    build: Callable[[Path, Patient], Any]
    crawl: dict[str, str]
    convert: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    expect: dict[str, Any] = field(default_factory=dict)
    qc: dict[str, tuple[str, ...]] = field(default_factory=dict)


def study_of(patient: Patient) -> Study:
    return Study(derived_uid(patient.patient_id, "study"), derived_uid(patient.patient_id, "for"))


def uid(patient: Patient, name: str = "s") -> str:
    return derived_uid(patient.patient_id, name)


def clean(folder: Path, patient: Patient, name: str = "s", **kwargs: Any) -> list[Path]:
    """The clean series (or a variant of it via ``write_series`` keyword arguments)."""
    kwargs.setdefault("spacing", SPACING)
    kwargs.setdefault("origin", ORIGIN)
    kwargs.setdefault("intercept", INTERCEPT)
    stored = kwargs.pop("stored", STORED)
    return write_series(folder, stored, patient=patient, study=study_of(patient),
                        series_uid=uid(patient, name), **kwargs)


CLEAN = STORED.astype(np.float64) + INTERCEPT


