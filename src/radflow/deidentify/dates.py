"""Per-patient consistent date shift (Retain Longitudinal Temporal Information, Modified Dates).

Every DA and DT value of a patient moves back by the same whole number of days, derived from
the key and the patient's pseudonym (``case_id``) by HMAC: intervals between the patient's
studies, series and acquisitions are exact, absolute dates are not disclosed, and nobody
without the key can recompute the offset. Times (TM, and the time part of DT) are kept; a whole
day shift leaves them valid.

Partial dates (``YYYY``, ``YYYYMM`` in DT) are shifted from the middle of the period and
truncated back to their precision. Date ranges (``A-B``) are shifted end by end. A value that
cannot be read as a date is never kept: the caller replaces it (see
:func:`shift_date_value`).
"""

from __future__ import annotations

import datetime as dt
import re

from radflow.keys import keyed_hash

_DA_RE = re.compile(r"^(\d{4})\.?(\d{2})\.?(\d{2})$")  # YYYYMMDD (and old YYYY.MM.DD)
_DT_RE = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d*(?:\.\d*)?)([+-]\d{4})?$")


def date_shift_days(key: bytes, patient_case_id: str, max_days: int = 365) -> int:
    """The patient's shift: a negative whole number of days in ``[-max_days, -1]``."""
    h = int(keyed_hash(key, "date-shift", patient_case_id, 16), 16)
    return -(1 + h % max_days)


def _shift(date: dt.date, days: int) -> dt.date | None:
    try:
        return date + dt.timedelta(days=days)
    except OverflowError:
        return None


def shift_da(value: str, days: int) -> str | None:
    """Shift one DA value (``YYYYMMDD``); ``None`` when it is not a valid date."""
    m = _DA_RE.match(value.strip())
    if not m:
        return None
    try:
        date = dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None
    moved = _shift(date, days)
    return moved.strftime("%Y%m%d") if moved and moved.year >= 1 else None


def shift_dt(value: str, days: int) -> str | None:
    """Shift one DT value, keeping its precision, time and UTC offset; ``None`` if invalid."""
    m = _DT_RE.match(value.strip())
    if not m:
        return None
    year, month, day, rest, offset = m.groups()
    if rest and not day:
        return None
    try:
        if not month:
            date = dt.date(int(year), 7, 1)
        elif not day:
            date = dt.date(int(year), int(month), 15)
        else:
            date = dt.date(int(year), int(month), int(day))
    except ValueError:
        return None
    moved = _shift(date, days)
    if moved is None:
        return None
    text = f"{moved.year:04d}" + (f"{moved.month:02d}" if month else "") \
        + (f"{moved.day:02d}" if day else "")
    return text + (rest or "") + (offset or "")


def shift_date_value(value: str, vr: str, days: int) -> str | None:
    """Shift a DA or DT value (multi-valued with ``\\``, ranges with ``-``).

    Returns
    -------
    str or None
        The shifted value; ``None`` when any part cannot be read (the caller must then replace
        the whole value by a dummy, never keep it).
    """
    shift = shift_da if vr == "DA" else shift_dt
    out = []
    for item in value.split("\\"):
        if vr == "DA" and "-" in item:
            parts = item.split("-")
            moved = [shift(p, days) if p.strip() else "" for p in parts]
            if any(m is None for m in moved) or len(parts) != 2:
                return None
            out.append("-".join(m or "" for m in moved))
            continue
        if not item.strip():
            out.append("")
            continue
        moved_item = shift(item, days)
        if moved_item is None:
            return None
        out.append(moved_item)
    return "\\".join(out)


__all__ = ["date_shift_days", "shift_da", "shift_date_value", "shift_dt"]
