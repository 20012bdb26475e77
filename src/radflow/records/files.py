"""The JSON files that cross a stage boundary: one frozen dataclass each, with one reader
and one writer (see :mod:`radflow.records`)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from radflow.errors import InputFileError
from radflow.io.atomic import write_json

PathLike = str | os.PathLike[str]


def _read_object(path: PathLike, what: str, reason: str) -> dict[str, Any]:
    """The JSON object in ``path``; ``FileNotFoundError`` passes through."""
    p = Path(path)
    try:
        value = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{p.name}: cannot read {what} ({exc})", reason=reason) from exc
    if not isinstance(value, dict):
        raise InputFileError(f"{p.name}: {what} is not a JSON object", reason=reason)
    return value


class _Record:
    """JSON (de)serialisation of a flat record.

    Keys in ``REQUIRED`` must be in the file; the others default to ``None`` when absent (files
    written by hand or by older versions). Keys in ``OMIT_NONE`` are left out of the file when
    ``None``; the others are written as ``null``. A key the record does not know is refused.
    """

    REQUIRED: ClassVar[frozenset[str]] = frozenset()
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset()
    WHAT: ClassVar[str] = "record"

    @classmethod
    def from_json(cls, data: Mapping[str, Any], name: str = "") -> Any:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        missing = sorted(cls.REQUIRED - set(data))
        if unknown or missing:
            raise InputFileError(f"{name or cls.WHAT}: not a {cls.WHAT} (missing key(s) "
                                 f"{missing or 'none'}, unknown key(s) {unknown or 'none'})",
                                 reason=f"bad-{cls.WHAT.replace(' ', '-')}")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the file (:func:`radflow.io.atomic.write_json` sorts the keys)."""
        return {f.name: getattr(self, f.name) for f in fields(self)  # type: ignore[arg-type]
                if not (f.name in self.OMIT_NONE and getattr(self, f.name) is None)}


@dataclass(frozen=True)
class Source(_Record):
    """The private source record the crawl writes and convert / de-identification read:
    ``<private>/sources/<series_key>.json`` (it holds file paths)."""

    REQUIRED: ClassVar[frozenset[str]] = frozenset({"series_key", "files"})
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset({"frames", "mask"})
    WHAT: ClassVar[str] = "source record"

    series_key: str
    files: list[str]
    case_id: str | None = None
    kind: str | None = None  # "dicom" | "image-file" | "rtstruct" | "seg"
    role: str | None = None  # "image" | "mask"
    #: per file, the frames of one volume of a split (``None``: all frames)
    frames: list[list[int] | None] | None = None
    #: rtstruct/seg: ``image_key``, ``labels`` and the mask reading settings
    mask: dict[str, Any] | None = None


def read_source(path: PathLike) -> Source:
    """The :class:`Source` in ``path``."""
    return Source.from_json(_read_object(path, "source record", "bad-source-record"),
                            Path(path).name)


def write_source(path: PathLike, source: Source, *, only_if_changed: bool = False) -> bool:
    """Write ``source`` (see :func:`radflow.io.atomic.write_json`)."""
    return write_json(path, source.to_json(), only_if_changed=only_if_changed)


@dataclass(frozen=True)
class PairPlan(_Record):
    """One planned pair the crawl writes (a row of ``crawl/pair_plan.tsv``) and the pair stage
    checks: ``crawl/pairs/<pair_id>.json``. Empty table cells are ``null``."""

    REQUIRED: ClassVar[frozenset[str]] = frozenset({"pair_id", "status"})
    WHAT: ClassVar[str] = "pair plan"

    pair_id: str
    status: str
    case_id: str | None = None
    image_key: str | None = None
    mask_key: str | None = None
    label: int | None = None
    roi: str | None = None
    sheet_row: int | None = None
    image_status: str | None = None
    mask_status: str | None = None
    pairing_reason: str | None = None
    candidates: str | None = None
    roi_source: str | None = None


def read_pair_plan(path: PathLike) -> PairPlan:
    """The :class:`PairPlan` in ``path``."""
    return PairPlan.from_json(_read_object(path, "pair plan", "bad-pair-plan"), Path(path).name)


def write_pair_plan(path: PathLike, plan: PairPlan, *, only_if_changed: bool = False) -> bool:
    """Write ``plan`` (see :func:`radflow.io.atomic.write_json`)."""
    return write_json(path, plan.to_json(), only_if_changed=only_if_changed)


@dataclass(frozen=True)
class RoiEntry(_Record):
    """One ROI of an RTSTRUCT/SEG convert sidecar (``rois[<label>]``): ``ok`` with its file,
    or a failure with its message."""

    REQUIRED: ClassVar[frozenset[str]] = frozenset({"status"})
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset({"nifti", "voxel_hash", "n_voxels", "qc",
                                                     "error"})
    WHAT: ClassVar[str] = "ROI entry"

    status: str
    nifti: str | None = None
    voxel_hash: str | None = None
    n_voxels: int | None = None
    qc: dict[str, int] | None = None  # QC warning -> count
    error: str | None = None


@dataclass(frozen=True)
class ConvertSidecar(_Record):
    """The convert stage's sidecar ``convert/<case_id>/<series_key>.json``.

    An image has ``acquisition``, ``volume`` (DICOM), ``voxel_hash``, ``nifti`` and ``grid``
    once written; an RTSTRUCT/SEG object has ``kind``, ``image_key`` and ``rois`` (label text
    -> :class:`RoiEntry`). A failure has ``error`` and the keys set before it.
    """

    REQUIRED: ClassVar[frozenset[str]] = frozenset({"series_key", "status"})
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset({
        "case_id", "role", "radflow_version", "kind", "image_key", "acquisition", "volume",
        "voxel_hash", "nifti", "grid", "rois", "error", "qc", "bias_correction",
        "suv"})
    WHAT: ClassVar[str] = "convert sidecar"

    series_key: str
    status: str
    case_id: str | None = None
    role: str | None = None
    radflow_version: str | None = None
    kind: str | None = None
    image_key: str | None = None
    acquisition: dict[str, Any] | None = None
    volume: dict[str, Any] | None = None
    voxel_hash: str | None = None
    nifti: str | None = None
    grid: dict[str, Any] | None = None
    rois: dict[str, RoiEntry] | None = None
    error: str | None = None
    #: QC warning -> count (e.g. ``hu-out-of-range``; :data:`radflow.dicom.reasons.QC_WARNINGS`)
    qc: dict[str, int] | None = None
    #: MR N4 bias-field correction: method, settings and seconds (:mod:`radflow.convert.bias`)
    bias_correction: dict[str, Any] | None = None
    #: PET: method, factor and the header values used (:mod:`radflow.dicom.suv`; no dates)
    suv: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], name: str = "") -> ConvertSidecar:
        rois = data.get("rois")
        if isinstance(rois, Mapping):
            data = {**data, "rois": {k: RoiEntry.from_json(v, name) for k, v in rois.items()}}
        sidecar: ConvertSidecar = super().from_json(data, name)
        return sidecar

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        if self.rois is not None:
            out["rois"] = {k: v.to_json() for k, v in self.rois.items()}
        return out


def read_sidecar(path: PathLike) -> ConvertSidecar:
    """The :class:`ConvertSidecar` in ``path``."""
    return ConvertSidecar.from_json(_read_object(path, "convert sidecar", "bad-sidecar"),
                                    Path(path).name)


def write_sidecar(path: PathLike, sidecar: ConvertSidecar) -> None:
    """Write ``sidecar`` (see :func:`radflow.io.atomic.write_json`)."""
    write_json(path, sidecar.to_json())


@dataclass(frozen=True)
class PairRecord(_Record):
    """The pair stage's record ``pair/<pair_id>.json`` (one row of ``pair/pairs.tsv``; the
    extract stage's input). ``error`` is present for a failed pair only."""

    REQUIRED: ClassVar[frozenset[str]] = frozenset({"pair_id", "status"})
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset({"error"})
    WHAT: ClassVar[str] = "pair record"

    pair_id: str
    status: str
    case_id: str | None = None
    image_key: str | None = None
    mask_key: str | None = None
    roi: str | None = None
    label: int | None = None
    image: str | None = None
    mask: str | None = None
    image_hash: str | None = None
    mask_hash: str | None = None
    n_voxels: int | None = None
    mask_resampled: bool | None = None
    grid_mismatch: str | None = None
    radflow_version: str | None = None
    pairing_reason: str | None = None
    roi_source: str | None = None
    mask_qc: str | None = None
    error: str | None = None


def peek_json(path: PathLike) -> dict[str, Any]:
    """Any stage file's JSON object as it is, unchecked (``{}`` when not an object), for the
    resource estimates at workflow parse time that read a key or two and must not fail on a
    partial file. :class:`FileNotFoundError` and :class:`ValueError` pass through."""
    with open(path, encoding="utf-8") as fh:
        value = json.load(fh)
    return value if isinstance(value, dict) else {}


def read_pair_json(path: PathLike) -> dict[str, Any]:
    """A pair record as the JSON object it is, unchecked (the extract stage checks the keys it
    needs itself, with its own messages)."""
    return _read_object(path, "pair record", "bad-pair-record")


def read_pair_record(path: PathLike) -> PairRecord:
    """The :class:`PairRecord` in ``path``."""
    return PairRecord.from_json(read_pair_json(path), Path(path).name)


def write_pair_record(path: PathLike, record: PairRecord) -> None:
    """Write ``record`` (see :func:`radflow.io.atomic.write_json`)."""
    write_json(path, record.to_json())


@dataclass(frozen=True)
class PairStatus:
    """The extract stage's status of one pair: ``ok``, ``skipped:<pair status>``,
    ``excluded:no-params-for-modality`` or ``failed:<reason>``; ``reason`` and ``message`` are
    ``None`` for ``ok``; ``qc``: the parameter set's QC warnings on the image's modality
    (comma-separated; :func:`radflow.params_sets.qc_warnings`), ``None`` (not written) when
    none."""

    pair_id: str
    status: str
    reason: str | None = None
    message: str | None = None
    n_features: int | None = None
    seconds: float | None = None
    qc: str | None = None


@dataclass(frozen=True)
class ExtractStatus:
    """The extract stage's record of one unit: ``extract/<case_id>/<unit>.json``."""

    unit: str
    n_pairs: int
    seconds: float | None
    pairs: list[PairStatus] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        # a pair's ``qc`` only when it has warnings (records without it stay as they were)
        return {"unit": self.unit, "n_pairs": self.n_pairs, "seconds": self.seconds,
                "pairs": [{k: v for k, v in p.__dict__.items() if k != "qc" or v is not None}
                          for p in self.pairs]}


def read_extract_status(path: PathLike) -> ExtractStatus:
    """The :class:`ExtractStatus` in ``path``.

    Raises
    ------
    InputFileError
        The record is unreadable or has no ``pairs`` list of per-pair statuses
        (``bad-status-record``).
    """
    p = Path(path)
    try:
        record = json.loads(p.read_text(encoding="utf-8"))
        pairs = record["pairs"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputFileError(f"{p.name}: not an extract status record ({exc})",
                             reason="bad-status-record") from exc
    if not isinstance(pairs, list):
        raise InputFileError(f"{p.name}: 'pairs' is not a list", reason="bad-status-record")
    try:
        statuses = [PairStatus(**entry) for entry in pairs]
    except TypeError as exc:
        raise InputFileError(f"{p.name}: not an extract status record ({exc})",
                             reason="bad-status-record") from exc
    return ExtractStatus(unit=record.get("unit", ""), n_pairs=record.get("n_pairs", len(pairs)),
                         seconds=record.get("seconds"), pairs=statuses)


def write_extract_status(path: PathLike, status: ExtractStatus) -> None:
    """Write ``status`` (see :func:`radflow.io.atomic.write_json`)."""
    write_json(path, status.to_json())


__all__ = ["ConvertSidecar", "ExtractStatus", "PairPlan", "PairRecord", "PairStatus", "RoiEntry",
           "Source", "peek_json", "read_extract_status", "read_pair_json", "read_pair_plan",
           "read_pair_record", "read_sidecar", "read_source", "write_extract_status",
           "write_pair_plan", "write_pair_record", "write_sidecar", "write_source"]
