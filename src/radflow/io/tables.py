"""Reading user tables (clinical data): CSV, TSV or XLSX, IDs always as text."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from radflow.errors import ConfigError, InputFileError


def _id_text(value: object) -> str:
    """Excel stores numeric IDs as numbers: 1001.0 -> "1001"; text stays text (stripped)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value).strip()


def read_clinical(path: str | Path, id_column: str, sheet: str = "") -> pd.DataFrame:
    """Read a clinical table; the ID column is returned as stripped text.

    Parameters
    ----------
    path
        ``.csv``, ``.tsv``/``.txt`` or ``.xlsx`` file.
    id_column
        Column holding the source patient identifier.
    sheet
        XLSX sheet name ("" = the first sheet).

    Raises
    ------
    InputFileError
        When the file cannot be read.
    ConfigError
        When ``id_column`` or ``sheet`` does not exist (the message lists what exists).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            book = pd.ExcelFile(path, engine="openpyxl")
            if sheet and sheet not in book.sheet_names:
                raise ConfigError(f"clinical table {path.name}: no sheet {sheet!r}; sheets are "
                                  f"{book.sheet_names}")
            table = pd.read_excel(book, sheet_name=sheet or book.sheet_names[0])
        else:
            sep = "," if suffix == ".csv" else "\t"
            table = pd.read_csv(path, sep=sep, dtype={id_column: str}, keep_default_na=True)
    except (OSError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise InputFileError(f"clinical table {path.name}: cannot be read ({exc})") from exc
    table.columns = [str(c).strip() for c in table.columns]
    if id_column not in table.columns:
        raise ConfigError(f"clinical table {path.name}: no ID column {id_column!r} (set "
                          f"clinical_id); columns are {list(table.columns)}")
    table[id_column] = table[id_column].map(_id_text)
    return table
