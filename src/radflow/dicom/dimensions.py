"""Splitting a series that holds several 3-D volumes (echoes, b-values, time points, acquisitions).

A series whose slices share positions is not one volume. When the slices differ in an attribute
that names the volume they belong to, the series is split into one volume per value:

========  ===========================================================  =======================
suffix    attribute (per frame of enhanced objects, else per file)      label
========  ===========================================================  =======================
``_e``    EchoNumbers, else EchoTime / EffectiveEchoTime (MR Echo)      echo number, else rank
``_b``    DiffusionBValue (MR Diffusion; GE, Siemens, Philips private)  b-value in s/mm2
``_t``    TemporalPositionIdentifier / TemporalPositionIndex, else      rank, 2 digits
          TriggerTime / NominalCardiacTriggerDelayTime
``_a``    AcquisitionNumber / FrameAcquisitionNumber                    rank, 2 digits
========  ===========================================================  =======================

:func:`plan_split` tries the attributes that vary, one at a time in that order, then in pairs and
so on; the first grouping in which no position repeats wins (``_e2``, ``_b800``, ``_t03``,
``_e2_t03``). A grouping must be a real split, not one group per image: the groups must hold two
images on average, unless all images share one position (a time series of one slice). When
attributes vary but no grouping works, the split is ambiguous (``excluded:ambiguous-split``).
Labels are built from numbers only; they never carry free text.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from radflow.dicom.headers import get_float, get_int, get_value
from radflow.errors import DicomError

#: Private b-value elements: (private creator, group, element offset, multi-valued).
PRIVATE_B_VALUES: tuple[tuple[str, int, int], ...] = (
    ("SIEMENS MR HEADER", 0x0019, 0x0C),
    ("GEMS_PARM_01", 0x0043, 0x39),
    ("Philips Imaging DD 001", 0x2001, 0x03),
)
#: GE stores some b-values offset by 1e9 (a flag); the b-value is the remainder.
_GE_B_OFFSET = 1_000_000_000


@dataclass(frozen=True)
class FrameDimensions:
    """Attributes that tell which volume of a 4-D series a slice belongs to (``None``: absent)."""

    echo_number: int | None = None
    echo_time: float | None = None
    b_value: float | None = None
    temporal_position: int | None = None
    trigger_time: float | None = None
    acquisition_number: int | None = None


@dataclass(frozen=True)
class SplitPlan:
    """How to split a series.

    Attributes
    ----------
    axes
        The attributes used, e.g. ``("echo",)`` or ``("echo", "time")``.
    groups
        ``(suffix, indices)`` per volume, sorted by suffix; ``indices`` index the input slices.
    """

    axes: tuple[str, ...]
    groups: tuple[tuple[str, tuple[int, ...]], ...]


def _item(group: Dataset | None, sequence: str) -> Dataset | None:
    if group is None:
        return None
    seq = get_value(group, sequence)
    return seq[0] if seq else None


def _lookup(groups: Sequence[Dataset | None], places: Sequence[tuple[str, str]],
            getter: Callable[[Dataset, str], Any], top: Any) -> Any:
    """First value found in ``(sequence, keyword)`` macros of the groups, else ``top``."""
    for group in groups:
        for sequence, keyword in places:
            item = _item(group, sequence)
            if item is not None and (value := getter(item, keyword)) is not None:
                return value
    return top


_UNASSIGNED = ("UnassignedPerFrameConvertedAttributesSequence",
               "UnassignedSharedConvertedAttributesSequence")


def _places(sequences: Sequence[str], keyword: str) -> list[tuple[str, str]]:
    return [(s, keyword) for s in (*sequences, *_UNASSIGNED)]


def private_b_value(ds: Dataset) -> float | None:
    """A b-value from the vendor private elements of :data:`PRIVATE_B_VALUES`, else ``None``."""
    for creator, group, offset in PRIVATE_B_VALUES:
        try:
            block = ds.private_block(group, creator)
            value = block[offset].value
        except Exception:  # creator absent, or a value pydicom cannot convert
            continue
        if isinstance(value, bytes):
            try:
                value = value.decode("ascii").strip("\0 ").split("\\")[0]
            except UnicodeDecodeError:
                continue
        if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
            value = value[0] if len(value) else None
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number) and number >= 0:
            return float(number % _GE_B_OFFSET) if group == 0x0043 else number
    return None


def top_level_dimensions(ds: Dataset) -> FrameDimensions:
    """The :class:`FrameDimensions` from top-level attributes (and private b-values) only.

    Computed once per data set; :func:`frame_dimensions` overrides it per frame.
    """
    b_value = get_float(ds, "DiffusionBValue")
    return FrameDimensions(
        echo_number=get_int(ds, "EchoNumbers"),
        echo_time=get_float(ds, "EchoTime"),
        b_value=b_value if b_value is not None else private_b_value(ds),
        temporal_position=get_int(ds, "TemporalPositionIdentifier"),
        trigger_time=get_float(ds, "TriggerTime"),
        acquisition_number=get_int(ds, "AcquisitionNumber"),
    )


def frame_dimensions(ds: Dataset, groups: Sequence[Dataset | None],
                     top: FrameDimensions | None = None) -> FrameDimensions:
    """The :class:`FrameDimensions` of one slice.

    Parameters
    ----------
    ds
        The data set (top level).
    groups
        Functional group items to search first: ``[per-frame item, shared item]`` for a frame of
        an enhanced object, ``[shared item or None]`` for a single-frame image.
    top
        :func:`top_level_dimensions` of ``ds`` when already known (multi-frame objects).
    """
    top = top if top is not None else top_level_dimensions(ds)
    return FrameDimensions(
        echo_number=_lookup(groups, _places([], "EchoNumbers"), get_int, top.echo_number),
        echo_time=_lookup(groups, _places(["MREchoSequence"], "EffectiveEchoTime")
                          + _places([], "EchoTime"), get_float, top.echo_time),
        b_value=_lookup(groups, _places(["MRDiffusionSequence"], "DiffusionBValue"), get_float,
                        top.b_value),
        temporal_position=_lookup(groups, [("FrameContentSequence", "TemporalPositionIndex"),
                                           *_places([], "TemporalPositionIdentifier")],
                                  get_int, top.temporal_position),
        trigger_time=_lookup(groups, [("CardiacSynchronizationSequence",
                                       "NominalCardiacTriggerDelayTime"),
                                      *_places([], "TriggerTime")], get_float, top.trigger_time),
        acquisition_number=_lookup(groups, [("FrameContentSequence", "FrameAcquisitionNumber"),
                                            *_places([], "AcquisitionNumber")], get_int,
                                   top.acquisition_number),
    )


def _axis_values(axis: str, dims: Sequence[FrameDimensions]) -> list[Any] | None:
    """The value of ``axis`` per slice (``None`` when not every slice has one)."""
    options: dict[str, tuple[str, ...]] = {
        "echo": ("echo_number", "echo_time"),
        "b-value": ("b_value",),
        "time": ("temporal_position", "trigger_time"),
        "acquisition": ("acquisition_number",),
    }
    for attr in options[axis]:
        values = [getattr(d, attr) for d in dims]
        if all(v is not None for v in values):
            return values
    return None


def _labels(axis: str, values: Sequence[Any], dims: Sequence[FrameDimensions]) -> dict[Any, str]:
    distinct = sorted(set(values))
    if axis == "echo" and all(d.echo_number is not None for d in dims):
        return {v: f"_e{int(v)}" for v in distinct}
    if axis == "echo":
        return {v: f"_e{k}" for k, v in enumerate(distinct, start=1)}
    if axis == "b-value":
        rounded = {v: round(v) for v in distinct}
        if len(set(rounded.values())) == len(distinct):
            return {v: f"_b{r}" for v, r in rounded.items()}
        return {v: "_b" + f"{v:g}".replace(".", "p") for v in distinct}
    width = max(2, len(str(len(distinct))))
    prefix = "_t" if axis == "time" else "_a"
    return {v: f"{prefix}{k:0{width}d}" for k, v in enumerate(distinct, start=1)}


AXES = ("echo", "b-value", "time", "acquisition")


def plan_split(positions: Sequence[Hashable], dims: Sequence[FrameDimensions]) \
        -> SplitPlan | None:
    """Split slices that share positions into volumes (see the module notes).

    Parameters
    ----------
    positions
        A hashable position key per slice (equal keys = same position).
    dims
        The :class:`FrameDimensions` of each slice.

    Returns
    -------
    SplitPlan or None
        ``None`` when no attribute varies between the slices (nothing to split by).

    Raises
    ------
    DicomError
        ``ambiguous-split`` when attributes vary but no grouping gives one slice per position.
    """
    varying = {}
    for axis in AXES:
        values = _axis_values(axis, dims)
        if values is not None and len(set(values)) > 1:
            varying[axis] = values
    if not varying:
        return None
    one_position = len(set(positions)) == 1
    for size in range(1, len(varying) + 1):
        for combo in itertools.combinations(varying, size):
            groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
            for i in range(len(positions)):
                groups[tuple(varying[a][i] for a in combo)].append(i)
            if not one_position and len(groups) * 2 > len(positions):
                continue  # one group per image is not a split
            if all(len({positions[i] for i in idx}) == len(idx) for idx in groups.values()):
                labels = {a: _labels(a, varying[a], dims) for a in combo}
                named = sorted(("".join(labels[a][v] for a, v in zip(combo, key, strict=True)),
                                tuple(idx)) for key, idx in groups.items())
                return SplitPlan(axes=combo, groups=tuple(named))
    raise DicomError(
        f"{len(positions)} images at {len(set(positions))} positions vary in "
        f"{', '.join(varying)}, but no split by these gives one image per position",
        reason="ambiguous-split")


__all__ = ["AXES", "PRIVATE_B_VALUES", "FrameDimensions", "SplitPlan", "frame_dimensions",
           "plan_split", "private_b_value", "top_level_dimensions"]
