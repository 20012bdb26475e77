"""The merge stage's ``merge/clinical_columns.tsv``: what each clinical column of
``merge/dataset.*`` is, for the analysis and the report (one writer, one reader).

One row per clinical column written to the dataset, in the dataset's order (README, "Clinical
data dictionary"):

- ``column``: its name in the dataset (a date: ``<source>_days_from_<reference>``);
- ``source``: its name in the clinical table;
- ``type``, ``role``: as declared (``categorical``, ``ordinal``, ``numeric``, ``date``,
  ``time-to-event``, ``event-indicator``, ``binary-outcome``; ``outcome`` or ``covariate``);
- ``unit``: declared unit; ``days`` for a date;
- ``levels``: JSON list of the allowed values (ordinal: in order; binary: the two source levels),
  ``""`` for other types;
- ``positive``: the source level written as 1 (binary-outcome, event-indicator);
- ``event``: a time-to-event column's event-indicator column (in the dataset);
- ``reference``: a date's reference date column (in the clinical table; not in the dataset);
- ``description``: as declared.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from radflow.errors import InputFileError

if TYPE_CHECKING:
    import pandas as pd

CLINICAL_COLUMNS: tuple[str, ...] = ("column", "source", "type", "role", "unit", "levels",
                                     "positive", "event", "reference", "description")


def write_clinical_columns(path: str | os.PathLike[str], table: pd.DataFrame) -> None:
    """Write ``merge/clinical_columns.tsv`` atomically (``table`` has :data:`CLINICAL_COLUMNS`)."""
    from radflow.io.atomic import write_tsv

    if tuple(table.columns) != CLINICAL_COLUMNS:
        raise ValueError(f"clinical columns table {list(table.columns)}: expected "
                         f"{list(CLINICAL_COLUMNS)}")
    write_tsv(path, table)


def read_clinical_columns(path: str | os.PathLike[str]) -> pd.DataFrame:
    """``merge/clinical_columns.tsv``, every cell as text (``""`` when empty).

    Raises
    ------
    InputFileError
        Reason ``bad-clinical-columns``: unreadable, or not the columns
        :func:`write_clinical_columns` writes.
    """
    import pandas as pd

    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{Path(path).name}: cannot be read ({exc})",
                             reason="bad-clinical-columns") from exc
    if tuple(table.columns) != CLINICAL_COLUMNS:
        raise InputFileError(f"{Path(path).name}: columns {list(table.columns)}, expected "
                             f"{list(CLINICAL_COLUMNS)}", reason="bad-clinical-columns")
    return table


__all__ = ["CLINICAL_COLUMNS", "read_clinical_columns", "write_clinical_columns"]
