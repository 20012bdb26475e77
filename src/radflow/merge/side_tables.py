"""The side tables of radflow's own feature families, gathered from the extract stage's side
records (:mod:`radflow.records.side`) by the merge stage.

``merge/landmarks.tsv``
    One row per pair x landmark (:data:`LANDMARK_COLUMNS`): the end points of the RECIST long
    and short axes (with their slice), of the longest 3-D diameter, and the SUVpeak sphere's
    centre (PET), in patient coordinates (mm, ITK/LPS), for the report's overlays.
``merge/minkowski_curves.parquet``
    One row per pair x image type x threshold (:data:`CURVE_COLUMNS`): the four Minkowski
    functionals of ``ROI ∩ (image ≥ threshold)``.

Pairs the protocol gate excluded leave both tables, as they leave the feature tables.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import pandas as pd

from radflow.records.side import read_extract_side

#: Columns of ``merge/landmarks.tsv``; a one-point landmark leaves ``x2, y2, z2`` empty, a 3-D
#: one ``slice_index``.
LANDMARK_COLUMNS: tuple[str, ...] = ("case_id", "image_key", "pair_id", "landmark",
                                     "slice_index", "x1", "y1", "z1", "x2", "y2", "z2")
#: Columns of ``merge/minkowski_curves.parquet``.
CURVE_COLUMNS: tuple[str, ...] = ("case_id", "pair_id", "image_type", "level", "threshold",
                                  "volume", "surface_area", "mean_breadth",
                                  "euler_characteristic")


def side_tables(side_files: Sequence[str], excluded: Collection[str] = ()
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The landmarks and Minkowski curves of every extracted pair, sorted by case and pair.

    Parameters
    ----------
    side_files
        The extract stage's ``extract/<case_id>/<unit>.side.json`` records.
    excluded
        Pairs to leave out (the protocol gate's exclusions).

    Returns
    -------
    landmarks, curves : pandas.DataFrame
        Columns :data:`LANDMARK_COLUMNS` (``slice_index`` nullable Int64) and
        :data:`CURVE_COLUMNS` (``level``, ``euler_characteristic`` int64, the rest float64).

    Raises
    ------
    InputFileError
        A side record is unreadable (``bad-side-record``).
    """
    marks, curves = [], []
    for path in side_files:
        for pair in read_extract_side(path).pairs:
            if pair.pair_id in excluded:
                continue
            keys = (pair.case_id, pair.image_key, pair.pair_id)
            for mark in pair.landmarks:
                ends = [*mark.points, *([(None, None, None)] * (2 - len(mark.points)))]
                marks.append((*keys, mark.name, mark.slice_index, *ends[0], *ends[1]))
            curves += [(pair.case_id, pair.pair_id, c.image_type, c.level, c.threshold,
                        c.volume, c.surface_area, c.mean_breadth, c.euler_characteristic)
                       for c in pair.curves]
    landmarks = pd.DataFrame(marks, columns=list(LANDMARK_COLUMNS)).astype(
        {"case_id": str, "image_key": str, "pair_id": str, "landmark": str,
         "slice_index": "Int64", **dict.fromkeys(LANDMARK_COLUMNS[5:], "float64")})
    curve_table = pd.DataFrame(curves, columns=list(CURVE_COLUMNS)).astype(
        {"case_id": str, "pair_id": str, "image_type": str, "level": "int64",
         "euler_characteristic": "int64",
         **dict.fromkeys(("threshold", "volume", "surface_area", "mean_breadth"), "float64")})
    return (landmarks.sort_values(["case_id", "pair_id"], kind="stable").reset_index(drop=True),
            curve_table.sort_values(["case_id", "pair_id"], kind="stable")
            .reset_index(drop=True))


__all__ = ["CURVE_COLUMNS", "LANDMARK_COLUMNS", "side_tables"]
