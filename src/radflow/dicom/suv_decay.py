"""Decay of a PET dose: the fraction left when a PET series' voxel values were measured.

Part of :mod:`radflow.dicom.suv` (procedure, pitfalls and citations in its docstring):
:func:`decay_fractions` reads DecayCorrection (0054,1102) and the times of a series (scan time,
injection time, each image's frame for NONE) and returns a :class:`Decay`, or raises
:class:`~radflow.errors.SuvError` (``suv-decay-unknown``, ``suv-missing-half-life``,
``suv-missing-start-time``, ``suv-missing-scan-time``, ``suv-implausible-times``).

Times are compared as the scanner's local times (DA / TM, and DT values moved to
TimezoneOffsetFromUTC when both carry an offset). No date or time of day leaves this module:
:class:`Decay` holds differences in seconds and the attributes they came from.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.valuerep import DA, DT, TM

from radflow.dicom.headers import get_float, get_str, get_strs, number_of_frames
from radflow.errors import SuvError

#: An injection more than this many half-lives before the scan is implausible (a date error).
MAX_HALF_LIVES = 10.0


@dataclass(frozen=True)
class Decay:
    """What :func:`decay_fractions` found.

    Attributes
    ----------
    fractions
        Per data set (in the order given), the fraction of the injected dose left at the time
        its voxel values refer to (NONE: averaged over its frame).
    reference_from
        The time the voxel values refer to, as the attribute(s) it came from.
    injection_from
        The attribute(s) the injection time came from (``None`` for ADMIN: not needed).
    half_life_s
        RadionuclideHalfLife (``None`` for ADMIN: not needed).
    elapsed_s
        Seconds from the injection to the reference time, per data set.
    frame_duration_s
        NONE: each image's ActualFrameDuration in s.
    """

    fractions: tuple[float, ...]
    reference_from: str
    injection_from: str | None = None
    half_life_s: float | None = None
    elapsed_s: tuple[float, ...] = (0.0,)
    frame_duration_s: tuple[float, ...] | None = None


def decay_fractions(datasets: Sequence[Dataset], pharm: Dataset | None) -> Decay:
    """Per data set, the fraction of the dose left when its voxel values were measured.

    Parameters
    ----------
    datasets
        The series' data sets (every image: earliest acquisition time, NONE frame times).
    pharm
        The first item of the RadiopharmaceuticalInformationSequence (``None`` when absent).

    Raises
    ------
    SuvError
        ``suv-decay-unknown``, ``suv-missing-half-life``, ``suv-missing-start-time``,
        ``suv-missing-scan-time`` or ``suv-implausible-times``.
    """
    first, n = datasets[0], len(datasets)
    mode = get_str(first, "DecayCorrection").upper()
    if mode not in ("START", "ADMIN", "NONE"):
        shown = "missing" if not mode else "not a defined term"
        if re.fullmatch(r"[A-Z0-9_ ]{1,16}", mode):
            shown = mode
        raise SuvError(f"DecayCorrection (0054,1102) {shown}: expected START, ADMIN or NONE",
                       reason="suv-decay-unknown")
    decy = "DECY" in {v.upper() for v in get_strs(first, "CorrectedImage")}
    if (mode == "NONE") == decy:
        raise SuvError(f"DecayCorrection (0054,1102) {mode} but CorrectedImage (0028,0051) "
                       f"{'lists' if decy else 'does not list'} DECY",
                       reason="suv-decay-unknown")
    if mode == "ADMIN":  # voxels decay-corrected to the injection: the whole dose
        return Decay((1.0,) * n, "injection (DecayCorrection ADMIN)")
    half_life = None if pharm is None else get_float(pharm, "RadionuclideHalfLife")
    if pharm is None or half_life is None or half_life <= 0:
        raise SuvError("RadionuclideHalfLife (0018,1075) in the Radiopharmaceutical Information "
                       "Sequence missing or not positive", reason="suv-missing-half-life")
    if mode == "START":
        scan, reference_from = _scan_time(datasets)
        start, injection_from = _injection(pharm, first, scan, half_life)
        elapsed = (scan - start).total_seconds()
        decay = 2.0 ** (-elapsed / half_life)
        return Decay((decay,) * n, reference_from, injection_from, half_life, (elapsed,))
    starts, frames = [], []
    for k, ds in enumerate(datasets, 1):
        where = f"DecayCorrection NONE, image {k} of {n}"
        if number_of_frames(ds) > 1:
            raise SuvError(f"{where}: a multi-frame object (per-frame acquisition times are not "
                           "read)", reason="suv-decay-unknown")
        acquired = _acquired(ds)
        if acquired is None:
            raise SuvError(f"{where}: no readable AcquisitionDate/AcquisitionTime",
                           reason="suv-missing-scan-time")
        duration = get_float(ds, "ActualFrameDuration")
        if duration is None or duration <= 0:
            raise SuvError(f"{where}: ActualFrameDuration (0018,1242) missing or not positive",
                           reason="suv-decay-unknown")
        starts.append(acquired)
        frames.append(duration / 1000.0)
    start, injection_from = _injection(pharm, first, min(starts), half_life)
    since = tuple((t - start).total_seconds() for t in starts)
    if (problem := _implausible(max(since), half_life)) is not None:
        raise SuvError(f"AcquisitionDate/AcquisitionTime: {problem}",
                       reason="suv-implausible-times")
    rate = math.log(2.0) / half_life
    left = tuple(2.0 ** (-e / half_life) * -math.expm1(-rate * d) / (rate * d)
                 for e, d in zip(since, frames, strict=True))
    return Decay(left, "each image's AcquisitionDate/AcquisitionTime and ActualFrameDuration "
                       "(DecayCorrection NONE: the mean over its frame)", injection_from,
                 half_life, since, tuple(frames))


def _scan_time(datasets: Sequence[Dataset]) -> tuple[dt.datetime, str]:
    """QIBA's scan time: the series time unless it is after the earliest acquisition time."""
    first = datasets[0]
    series = _combine(_date(get_str(first, "SeriesDate")), _time(get_str(first, "SeriesTime")))
    earliest = min((t for t in map(_acquired, datasets) if t is not None), default=None)
    if earliest is not None and (series is None or series > earliest):
        why = "no SeriesDate/SeriesTime" if series is None else \
            "SeriesDate/SeriesTime after it: a re-saved series"
        return earliest, f"earliest AcquisitionDate/AcquisitionTime ({why})"
    if series is None:
        raise SuvError("no readable SeriesDate/SeriesTime or AcquisitionDate/AcquisitionTime: "
                       "the scan time is unknown", reason="suv-missing-scan-time")
    return series, "SeriesDate/SeriesTime"


def _injection(pharm: Dataset, first: Dataset, scan: dt.datetime,
               half_life: float) -> tuple[dt.datetime, str]:
    """The injection time and where it came from (rule in the module docstring)."""
    start = _datetime(get_str(pharm, "RadiopharmaceuticalStartDateTime"), first)
    note, problem = "", None
    if start is not None:
        problem = _implausible((scan - start).total_seconds(), half_life)
        if problem is None:
            return start, "RadiopharmaceuticalStartDateTime"
        note = f" (RadiopharmaceuticalStartDateTime not used: {problem})"
    time = _time(get_str(pharm, "RadiopharmaceuticalStartTime"))
    if time is None:
        if start is not None:
            raise SuvError(f"RadiopharmaceuticalStartDateTime (0018,1078): {problem}",
                           reason="suv-implausible-times")
        raise SuvError("no readable RadiopharmaceuticalStartDateTime (0018,1078) or "
                       "RadiopharmaceuticalStartTime (0018,1072): the injection time is "
                       "unknown", reason="suv-missing-start-time")
    start = dt.datetime.combine(scan.date(), time)
    source = "RadiopharmaceuticalStartTime on the scan date"
    if start > scan:  # injected before midnight, scanned after it
        start -= dt.timedelta(days=1)
        source = "RadiopharmaceuticalStartTime on the day before the scan (midnight crossing)"
    problem = _implausible((scan - start).total_seconds(), half_life)
    if problem is not None:
        raise SuvError(f"{source}: {problem}", reason="suv-implausible-times")
    return start, source + note


def _implausible(elapsed_s: float, half_life: float) -> str | None:
    if elapsed_s < 0:
        return f"the injection is {-elapsed_s / 3600:.2f} h after the scan time"
    if elapsed_s > MAX_HALF_LIVES * half_life:
        return (f"the injection is {elapsed_s / 3600:.1f} h before the scan time, more than "
                f"{MAX_HALF_LIVES:g} half-lives")
    return None


def _acquired(ds: Dataset) -> dt.datetime | None:
    """AcquisitionDate + AcquisitionTime, else AcquisitionDateTime (``None`` if unreadable)."""
    combined = _combine(_date(get_str(ds, "AcquisitionDate")),
                        _time(get_str(ds, "AcquisitionTime")))
    if combined is not None:
        return combined
    return _datetime(get_str(ds, "AcquisitionDateTime"), ds)


def _combine(date: dt.date | None, time: dt.time | None) -> dt.datetime | None:
    return None if date is None or time is None else dt.datetime.combine(date, time)


def _date(text: str) -> dt.date | None:
    try:
        value = DA(text) if text else None
    except (TypeError, ValueError):
        return None
    return None if value is None else dt.date(value.year, value.month, value.day)


def _time(text: str) -> dt.time | None:
    try:
        value = TM(text) if text else None
    except (TypeError, ValueError):
        return None
    return None if value is None else dt.time(value.hour, value.minute, value.second,
                                              value.microsecond)


def _datetime(text: str, ds: Dataset) -> dt.datetime | None:
    """A DT value to the minute at least, as local time: a UTC offset is moved to the data
    set's TimezoneOffsetFromUTC (0008,0201) when it has one, else dropped."""
    if not re.match(r"\d{12}", text):
        return None
    try:
        value = DT(text)
    except (TypeError, ValueError):
        return None
    if value is None:
        return None
    local = dt.datetime(value.year, value.month, value.day, value.hour, value.minute,
                        value.second, value.microsecond)
    offset, zone = value.utcoffset(), _offset(get_str(ds, "TimezoneOffsetFromUTC"))
    return local if offset is None or zone is None else local - offset + zone


def _offset(text: str) -> dt.timedelta | None:
    match = re.fullmatch(r"([+-])(\d{2})(\d{2})", text)
    if match is None:
        return None
    minutes = int(match[2]) * 60 + int(match[3])
    return dt.timedelta(minutes=-minutes if match[1] == "-" else minutes)


__all__ = ["MAX_HALF_LIVES", "Decay", "decay_fractions"]
