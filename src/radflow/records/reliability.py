"""The reliability stage's per-job status record ``reliability/<case_id>/<unit>.<job>.json`` and
its copy table ``reliability/copies.tsv``: one writer and one reader each.

A job (one image × one perturbation chain, or × the negative controls) records one
:class:`CopyStatus` per pair and copy, in the order made: the copy's ``source`` (as in the
feature tables: ``perturbation:<chain>:<i>``, ``control:<kind>:<region>``), its status (``ok``,
``skipped:<pair status>``, ``excluded:no-params-for-modality``, ``failed:<reason>``), and what the
perturbation drew (``noise_sigma``, ``rotation_deg``, ``translation_x``/``_y``/``_z``,
``volume_fraction``). ``copies.tsv`` is every job's copies in one table (no timings, so that two
runs write the same bytes).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radflow.errors import InputFileError

if TYPE_CHECKING:
    import pandas as pd

#: The drawn perturbation parameters, in the order of the copy table's columns.
PARAMETERS: tuple[str, ...] = ("noise_sigma", "rotation_deg", "translation_x", "translation_y",
                               "translation_z", "volume_fraction")
COPY_COLUMNS: tuple[str, ...] = ("case_id", "unit", "pair_id", "job", "source", "status",
                                 "reason", "n_features", *PARAMETERS)


@dataclass(frozen=True)
class CopyStatus:
    """One copy of one pair.

    Attributes
    ----------
    pair_id, source, status
        The pair, the copy's ``source`` label and its ``kind:reason`` status.
    reason, message
        Short reason and human-readable text (None when ``ok``).
    n_features
        Feature rows written for the copy.
    seconds
        Wall time of making and extracting the copy.
    parameters
        What the perturbation drew (keys of :data:`PARAMETERS`; empty for a control).
    """

    pair_id: str
    source: str
    status: str
    reason: str | None = None
    message: str | None = None
    n_features: int = 0
    seconds: float | None = None
    parameters: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ReliabilityStatus:
    """The record of one ``reliability_one`` job."""

    case_id: str
    unit: str
    job: str
    n_pairs: int
    seconds: float | None
    copies: list[CopyStatus] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the file."""
        return asdict(self)


def write_reliability_status(path: str | os.PathLike[str], status: ReliabilityStatus) -> None:
    """Write ``status`` atomically (:func:`radflow.io.atomic.write_json`)."""
    from radflow.io.atomic import write_json

    write_json(path, status.to_json())


def read_reliability_status(path: str | os.PathLike[str]) -> ReliabilityStatus:
    """The :class:`ReliabilityStatus` in ``path``.

    Raises
    ------
    InputFileError
        Reason ``bad-status-record``: unreadable, or not the keys the writer writes.
    """
    p = Path(path)
    try:
        record = json.loads(p.read_text(encoding="utf-8"))
        copies = [CopyStatus(**entry) for entry in record.pop("copies")]
        return ReliabilityStatus(**record, copies=copies)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputFileError(f"{p.name}: not a reliability status record ({exc})",
                             reason="bad-status-record") from exc


def copy_table(statuses: list[ReliabilityStatus]) -> pd.DataFrame:
    """The rows of ``copies.tsv`` (:data:`COPY_COLUMNS`) of ``statuses``, in their order."""
    import pandas as pd

    rows = [{"case_id": s.case_id, "unit": s.unit, "pair_id": c.pair_id, "job": s.job,
             "source": c.source, "status": c.status, "reason": c.reason or "",
             "n_features": c.n_features,
             **{name: c.parameters.get(name, float("nan")) for name in PARAMETERS}}
            for s in statuses for c in s.copies]
    return pd.DataFrame(rows, columns=list(COPY_COLUMNS))


def write_copy_table(path: str | os.PathLike[str], table: pd.DataFrame) -> None:
    """Write ``reliability/copies.tsv`` atomically (columns :data:`COPY_COLUMNS`)."""
    from radflow.io.atomic import write_tsv

    if tuple(table.columns) != COPY_COLUMNS:
        raise ValueError(f"copy table columns {list(table.columns)}: expected "
                         f"{list(COPY_COLUMNS)}")
    write_tsv(path, table)


__all__ = ["COPY_COLUMNS", "PARAMETERS", "CopyStatus", "ReliabilityStatus", "copy_table",
           "read_reliability_status", "write_copy_table", "write_reliability_status"]
