"""What the index keeps of one file (:class:`FileInfo`) and one series (:class:`SeriesRecord`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from radflow.dicom.frames import FrameHeader
from radflow.errors import DicomError
from radflow.records.status import Status


@dataclass(frozen=True)
class SeriesRecord:
    """One DICOM series, one volume of a split series, or one unreadable file, as crawled.

    Attributes
    ----------
    series_uid
        SeriesInstanceUID ("" for an unreadable file or a file without one).
    status
        ``"ok"``, ``"excluded:<reason>"`` or ``"failed:<reason>"`` (reasons:
        :mod:`radflow.dicom.reasons`).
    files
        The record's files, sorted by path (for an unreadable file: that file). Identical
        duplicate copies are left out (see ``qc``).
    n_instances
        Number of files.
    patient_id
        Source PatientID, raw (identifying: pseudonymise, never write).
    study_uid, frame_of_reference_uid, sop_class_uid, modality
        From the first file ("" when absent).
    series_number
        SeriesNumber (``None`` when absent).
    series_description
        Cleaned SeriesDescription (control characters removed, <= 64 characters).
    image_type
        ImageType values of the first file.
    manufacturer, transfer_syntax_uid
        From the first file.
    slice_thickness
        SliceThickness of the first file (mm; ``None`` when absent).
    rows, cols
        Matrix size of the volume (of the first image file before the geometry check; of the
        resampled grid when resampled); ``None`` for non-images.
    n_slices
        Number of slices: of the volume when the geometry check passed, else of the image
        frames found; ``None`` for non-images.
    spacing
        ``(x, y, z)`` mm: column spacing, row spacing, slice spacing along the normal; ``None``
        unless the geometry check passed.
    orientation
        ImageOrientationPatient (6 cosines) of the first slice (``None`` when missing).
    origin
        Position of the volume's first voxel (``None`` unless geometry ok).
    multiframe
        Whether any file holds more than one frame or uses per-frame functional groups.
    message
        Why the status is not ``ok``: the rule broken and the files by their position in the
        series' sorted file list (``file 3 of 120``), never file or folder names, UIDs or
        patient data.
    split
        Suffix naming one 3-D volume of a series that holds several (``_t03``, ``_b800``,
        ``_e2``; see :mod:`radflow.dicom.dimensions`); empty for an ordinary series. It is part
        of the series key.
    frames
        For a split, per file of ``files``: the 0-based frames of a multi-frame file that belong
        to this volume (``None`` for a single-frame file); ``None`` when every frame is used.
    resampled
        ``""``, ``"gantry-tilt"``, ``"uneven-spacing"`` or both joined by ``+``: the volume is
        resampled by the cohort's opt-in geometry policy.
    qc
        QC warning codes (:data:`radflow.dicom.reasons.QC_WARNINGS`), e.g. a corrected
        character set or ignored duplicate files.
    ignored
        Files left out because they duplicate a file or slice of ``files`` exactly (so that
        every file of the tree is accounted for).
    acquisition
        The whitelisted acquisition values of the series' first file as ``(keyword, text)``
        pairs (:mod:`radflow.dicom.acquisition`; dose report values included).
    """

    series_uid: str
    status: str
    files: tuple[Path, ...]
    n_instances: int
    patient_id: str = ""
    study_uid: str = ""
    frame_of_reference_uid: str = ""
    sop_class_uid: str = ""
    modality: str = ""
    series_number: int | None = None
    series_description: str = ""
    image_type: tuple[str, ...] = ()
    manufacturer: str = ""
    transfer_syntax_uid: str = ""
    slice_thickness: float | None = None
    rows: int | None = None
    cols: int | None = None
    n_slices: int | None = None
    spacing: tuple[float, float, float] | None = None
    orientation: tuple[float, ...] | None = None
    origin: tuple[float, float, float] | None = None
    multiframe: bool = False
    message: str = ""
    split: str = ""
    frames: tuple[tuple[int, ...] | None, ...] | None = None
    resampled: str = ""
    qc: tuple[str, ...] = ()
    ignored: tuple[Path, ...] = ()
    acquisition: tuple[tuple[str, str], ...] = ()

    @property
    def reason(self) -> str:
        """The part after ``failed:`` / ``excluded:`` ("" when ok)."""
        return Status.parse(self.status).reason


@dataclass
class FileInfo:
    """What the index keeps of one readable file (no data set, to keep memory small)."""

    path: Path
    sop_class: str
    sop_instance: str
    series_uid: str
    study_uid: str
    patient_id: str
    for_uid: str
    modality: str
    series_number: int | None
    description: str
    image_type: tuple[str, ...]
    manufacturer: str
    transfer_syntax: str
    slice_thickness: float | None
    rows: int | None
    cols: int | None
    photometric: str
    samples: int | None
    n_frames: int
    multiframe: bool
    has_pixels: bool
    frames: list[FrameHeader] = field(default_factory=list)
    frames_error: DicomError | None = None
    qc: tuple[str, ...] = ()
    bits_allocated: int | None = None
    #: whitelisted acquisition values (:mod:`radflow.dicom.acquisition`); read for the first
    #: file of each series only
    acquisition: dict[str, str] | None = None


__all__ = ["FileInfo", "SeriesRecord"]
