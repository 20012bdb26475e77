"""The extract stage's side record of one unit: ``extract/<case_id>/<unit>.side.json``.

What radflow's own feature families measure besides feature values, per pair: the landmarks of
the semantic family (RECIST axes, 3-D diameter, SUVpeak centre, in patient coordinates, mm) for
the report's overlays, and the Minkowski functional curves. Written by the extract stage (one
file per unit, also when the families are off: then every pair has no landmarks and no curves),
read by the merge stage, which gathers them into ``merge/landmarks.tsv`` and
``merge/minkowski_curves.parquet`` (:mod:`radflow.merge.side_tables`).

JSON layout (:func:`radflow.io.atomic.write_json`: sorted keys)::

    {"unit": "...", "pairs": [{"pair_id": "...", "case_id": "...", "image_key": "...",
      "landmarks": [{"name": "long_axis", "slice_index": 41,
                     "points": [[x, y, z], [x, y, z]]}, ...],
      "curves": [{"image_type": "original", "level": 0, "threshold": ..., "volume": ...,
                  "surface_area": ..., "mean_breadth": ..., "euler_characteristic": ...}]}]}
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from radflow.errors import InputFileError
from radflow.io.atomic import write_json

PathLike = str | os.PathLike[str]

#: Landmark names, in output order. ``suv_peak_centre`` has one point, the others two.
LANDMARKS: tuple[str, ...] = ("long_axis", "short_axis", "diameter_3d", "suv_peak_centre")


@dataclass(frozen=True)
class Landmark:
    """One landmark of a pair.

    Attributes
    ----------
    name
        One of :data:`LANDMARKS`.
    slice_index
        ``k`` index (from 0) of the slice the landmark lies on (the RECIST axes); None for the
        3-D ones.
    points
        Its end points (one point for ``suv_peak_centre``), patient coordinates (mm, ITK/LPS).
    """

    name: str
    slice_index: int | None
    points: tuple[tuple[float, float, float], ...]


@dataclass(frozen=True)
class CurvePoint:
    """The four Minkowski functionals of ``ROI ∩ (image ≥ threshold)`` at one level."""

    image_type: str
    level: int
    threshold: float
    volume: float
    surface_area: float
    mean_breadth: float
    euler_characteristic: int


@dataclass(frozen=True)
class PairSide:
    """Landmarks and curves of one pair (both empty when the families are off)."""

    pair_id: str
    case_id: str
    image_key: str
    landmarks: tuple[Landmark, ...] = ()
    curves: tuple[CurvePoint, ...] = ()


@dataclass(frozen=True)
class ExtractSide:
    """The side record of one extraction unit: its pairs that were extracted (``ok``)."""

    unit: str
    pairs: list[PairSide] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        # JSON has no NaN: a non-finite number is written as null and read back as NaN
        return {"unit": self.unit, "pairs": [_finite(asdict(p)) for p in self.pairs]}


def _finite(value: Any) -> Any:
    """``value`` (nested dicts, lists, tuples) with every non-finite float as None."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def write_extract_side(path: PathLike, side: ExtractSide) -> None:
    """Write ``side`` atomically (see :func:`radflow.io.atomic.write_json`)."""
    write_json(path, side.to_json())


def read_extract_side(path: PathLike) -> ExtractSide:
    """The :class:`ExtractSide` in ``path``.

    Raises
    ------
    InputFileError
        Unreadable, not JSON or not a side record (``bad-side-record``).
    """
    p = Path(path)
    try:
        record = json.loads(p.read_text(encoding="utf-8"))
        pairs = [PairSide(
            pair_id=str(entry["pair_id"]), case_id=str(entry["case_id"]),
            image_key=str(entry["image_key"]),
            landmarks=tuple(Landmark(name=str(m["name"]), slice_index=m["slice_index"],
                                     points=tuple((_float(x), _float(y), _float(z))
                                                  for x, y, z in m["points"]))
                            for m in entry["landmarks"]),
            curves=tuple(CurvePoint(
                image_type=str(c["image_type"]), level=int(c["level"]),
                threshold=_float(c["threshold"]), volume=_float(c["volume"]),
                surface_area=_float(c["surface_area"]), mean_breadth=_float(c["mean_breadth"]),
                euler_characteristic=int(c["euler_characteristic"]))
                for c in entry["curves"]))
            for entry in record["pairs"]]
        return ExtractSide(unit=str(record["unit"]), pairs=pairs)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputFileError(f"{p.name}: not an extract side record ({exc})",
                             reason="bad-side-record") from exc


__all__ = ["LANDMARKS", "CurvePoint", "ExtractSide", "Landmark", "PairSide",
           "read_extract_side", "write_extract_side"]
