"""The extract stage's feature table: its columns (:data:`COLUMNS`), the rows a job builds, and
their one writer (:func:`write_rows`: Parquet with pyarrow alone, so that an extraction job does
not import pandas); :func:`empty_table` / :func:`frame` give the same table as a DataFrame."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from radflow.io.atomic import atomic_path

if TYPE_CHECKING:  # pandas only for the table API; a job writes its rows with pyarrow alone
    import pandas as pd

#: Columns of the feature table and their pandas dtypes, in order. ``ibsi_code``: the IBSI 1
#: identifier of the feature where radflow fills one (its own families,
#: :data:`radflow.extract.families.IBSI_CODES`), else ``""``.
COLUMNS: dict[str, str] = {
    "case_id": "str",
    "image_key": "str",
    "mask_key": "str",
    "pair_id": "str",
    "roi": "str",
    "label": "int64",
    "image_type": "str",
    "feature_class": "str",
    "feature": "str",
    "ibsi_code": "str",
    "value": "float64",
    "radflow_version": "str",
    "pyradiomics_dist": "str",
    "pyradiomics_version": "str",
    "simpleitk_version": "str",
    "numpy_version": "str",
    "params_hash": "str",
    "params_set": "str",
    "normalisation": "str",
    "qc": "str",
    "image_hash": "str",
    "mask_hash": "str",
}

#: One row of the feature table: values in the order of :data:`COLUMNS`.
Row = tuple[Any, ...]

def empty_table() -> pd.DataFrame:
    """A feature table with no rows and the columns/dtypes of :data:`COLUMNS`."""
    return frame([])


def frame(rows: Sequence[Row]) -> pd.DataFrame:
    """The feature table of ``rows``, shape (len(rows), 22), columns/dtypes :data:`COLUMNS`."""
    import pandas as pd

    if not rows:
        return pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in COLUMNS.items()})
    return pd.DataFrame(list(rows), columns=list(COLUMNS)).astype(COLUMNS)


def write_rows(dest: str | Path, rows: Sequence[Row]) -> None:
    """Write feature rows as the Parquet feature table, atomically, with pyarrow alone.

    Columns and types as :data:`COLUMNS` (``str`` -> ``large_string``, as pandas writes its
    string columns); ``pandas.read_parquet`` gives the frame :func:`extract_unit` returns. No
    pandas metadata (no index is stored), so the bytes do not depend on the pandas version.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
    table = pa.Table.from_arrays([_arrow_array(values, dtype) for values, dtype
                                  in zip(columns, COLUMNS.values(), strict=True)],
                                 names=list(COLUMNS))
    with atomic_path(dest, suffix=".parquet") as tmp:
        pq.write_table(table, tmp)


def _arrow_array(values: Sequence[Any], dtype: str) -> Any:
    """A pyarrow array (no nulls; NaN stays a float value) built from its buffers: ``pa.array``
    would import pandas (~0.3 s per job) only to ask whether ``values`` is a pandas object."""
    import pyarrow as pa

    if dtype == "str":
        data = [str(v).encode("utf-8") for v in values]
        offsets = np.zeros(len(data) + 1, np.int64)
        np.cumsum([len(d) for d in data], out=offsets[1:])
        return pa.Array.from_buffers(pa.large_string(), len(data),
                                     [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))])
    arr = np.ascontiguousarray(values, dtype=dtype)
    return pa.Array.from_buffers(pa.from_numpy_dtype(arr.dtype), len(arr),
                                 [None, pa.py_buffer(arr)])


__all__ = ["COLUMNS", "Row", "empty_table", "frame", "write_rows"]
