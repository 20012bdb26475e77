"""The crawl's acquisition table ``crawl/acquisition.tsv``: its row record, one writer, one reader.

One row per DICOM series of ``crawl/series.tsv`` (images, dose reports and other non-image
objects, mask objects; not sheet files or unreadable files): the whitelisted, non-identifying
acquisition values of the series' first file (:mod:`radflow.dicom.acquisition`), every cell
text, ``""`` when absent. Written by the crawl (:func:`write_acquisition_table`); read by the
protocol QC gates (:func:`read_acquisition_table`, :mod:`radflow.protocol`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radflow.errors import InputFileError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class AcquisitionRow:
    """One row of ``crawl/acquisition.tsv`` (README, "Protocol QC gates"). DICOM keywords keep
    their names; ``plane`` is derived from ImageOrientationPatient, ``dose_ctdivol`` /
    ``dose_dlp`` are read from a radiation dose SR's content (``"none"``: the report holds
    none)."""

    series_key: str
    sop_class_uid: str
    plane: str  # axial | coronal | sagittal | oblique | ""
    # DICOM keywords keep their spelling (the column names)
    ManufacturerModelName: str = ""
    BodyPartExamined: str = ""
    ImageType: str = ""
    PatientPosition: str = ""
    KVP: str = ""
    XRayTubeCurrent: str = ""
    ExposureTime: str = ""
    Exposure: str = ""
    ExposureInuAs: str = ""
    CTDIvol: str = ""
    ConvolutionKernel: str = ""
    SliceThickness: str = ""
    SpacingBetweenSlices: str = ""
    ReconstructionDiameter: str = ""
    SingleCollimationWidth: str = ""
    TotalCollimationWidth: str = ""
    SpiralPitchFactor: str = ""
    dose_ctdivol: str = ""
    dose_dlp: str = ""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> AcquisitionRow:
        """The row of these values (missing columns empty); an unknown column is a
        ``ValueError`` naming it (a radflow bug: the whitelist and the row disagree)."""
        unknown = sorted(set(values) - set(ACQUISITION_COLUMNS))
        if unknown:
            raise ValueError(f"acquisition row {values.get('series_key', '?')}: unknown "
                             f"columns {unknown}")
        return cls(**{k: "" if v is None else str(v) for k, v in values.items()})


ACQUISITION_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(AcquisitionRow))


def acquisition_frame(rows: Iterable[AcquisitionRow]) -> pd.DataFrame:
    """The acquisition table of ``rows``, sorted by ``series_key``."""
    import pandas as pd

    frame = pd.DataFrame([asdict(r) for r in rows], columns=list(ACQUISITION_COLUMNS))
    return frame.sort_values("series_key", kind="stable").reset_index(drop=True)


def write_acquisition_table(path: str | os.PathLike[str], frame: pd.DataFrame) -> None:
    """Write ``crawl/acquisition.tsv`` (an :func:`acquisition_frame`) atomically."""
    from radflow.io.atomic import write_tsv

    if tuple(frame.columns) != ACQUISITION_COLUMNS:
        raise ValueError(f"acquisition table columns {list(frame.columns)}: expected "
                         f"{list(ACQUISITION_COLUMNS)}")
    write_tsv(path, frame)


def read_acquisition_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """``crawl/acquisition.tsv`` as text (every cell a ``str``, empty cells ``""``).

    Raises
    ------
    InputFileError
        Reason ``bad-acquisition-table``: a column is missing (a table of an older radflow:
        re-run the crawl).
    """
    from radflow.records import read_table

    table = read_table(path)
    missing = [c for c in ACQUISITION_COLUMNS if c not in table.columns]
    if missing:
        raise InputFileError(f"{Path(path).name}: not a radflow acquisition table (missing "
                             f"columns {', '.join(missing)}); re-run the crawl",
                             reason="bad-acquisition-table")
    return table


__all__ = ["ACQUISITION_COLUMNS", "AcquisitionRow", "acquisition_frame",
           "read_acquisition_table", "write_acquisition_table"]
