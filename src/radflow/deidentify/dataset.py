"""Apply the action table to one pydicom data set (:func:`deidentify_dataset`).

Every element, at every sequence depth, gets the action Table E.1-1 gives it under the settings
(:func:`radflow.deidentify.profile.resolve`):

* ``X`` removed; ``Z`` emptied (sequences: no items); ``D`` a dummy of its value representation
  (UIDs: the keyed replacement; sequences and binary values, which have no dummy, are emptied
  and counted as ``Z``); ``K`` kept (sequences: their items are
  processed); ``U`` every UID replaced by :func:`radflow.deidentify.uids.replace_uid`; ``U*`` (the
  ``X/Z/U*`` reference sequences) kept with their items processed, so their UIDs are replaced;
* ``C`` by the option that asks for it: dates shifted (Modified Dates), descriptors cleaned
  (:mod:`radflow.deidentify.clean`), safe private attributes kept; any other ``C`` falls back to the
  Basic Profile action.
* Attributes the table does not list are kept (PS3.15 E.1), except dates (DA, DT), which follow
  the date option like listed dates, so that no unshifted date sits beside shifted ones. Group
  length elements are dropped (they would be wrong).
* PatientName and PatientID become the patient's pseudonym ``case_id``, so that radflow run on
  the de-identified files finds one patient per source patient.
* Set: PatientIdentityRemoved ``YES``, DeidentificationMethod, DeidentificationMethodCodeSequence
  (CID 7050: the profile and each option used; the values of an earlier de-identification are
  replaced), LongitudinalTemporalInformationModified; a new file meta header (no source
  application entity, implementation or private meta elements).

The returned counts are ``{(tag, action): n}`` with tags as ``(gggg,eeee)``, private ones as
``(gggg,xxee)`` / ``(gggg,00xx)`` (creator), patterns as in the table: never a value.
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

from radflow import __version__
from radflow.deidentify.clean import CLEANED_DESCRIPTORS, TEXT_VRS, clean_descriptor, value_terms
from radflow.deidentify.dates import date_shift_days, shift_date_value
from radflow.deidentify.profile import (
    COMPOUND_RESOLUTION,
    PRIVATE_ATTRIBUTES,
    STANDARD_EDITION,
    DeidSettings,
    Resolved,
    action_table,
    method_codes,
    resolve,
    standard_safe_private,
    table_key,
)
from radflow.deidentify.uids import replace_uid
from radflow.dicom.headers import quiet_pydicom

logger = logging.getLogger(__name__)

PSEUDONYM_TAGS = (0x00100010, 0x00100020)  # PatientName, PatientID
DUMMY_TEXT = "ANONYMIZED"
DUMMIES = {"AE": DUMMY_TEXT, "AS": "000D", "CS": DUMMY_TEXT, "DA": "19000101",
           "DT": "19000101000000", "TM": "000000", "DS": "0", "IS": "0", "LO": DUMMY_TEXT,
           "LT": DUMMY_TEXT, "PN": DUMMY_TEXT, "SH": DUMMY_TEXT, "ST": DUMMY_TEXT,
           "UC": DUMMY_TEXT, "UT": DUMMY_TEXT, "FL": 0.0, "FD": 0.0, "SL": 0, "SS": 0,
           "UL": 0, "US": 0, "SV": 0, "UV": 0}
MAX_LENGTH = {"LO": 64, "SH": 16, "LT": 10240, "ST": 1024, "UC": 1024, "UT": 1024, "PN": 64}
LTIM = {"shift": "MODIFIED", "full": "UNMODIFIED", "remove": "REMOVED"}


@dataclass
class _Context:
    settings: DeidSettings
    key: bytes
    case_id: str
    shift_days: int
    terms: list[str]
    safe: frozenset[tuple[int, int, str]]
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)


def deidentify_dataset(ds: Dataset, settings: DeidSettings, key: bytes,
                       patient_case_id: str) -> tuple[Dataset, Counter[tuple[str, str]]]:
    """De-identify ``ds`` (not modified) by PS3.15 Table E.1-1 with the options of ``settings``.

    Parameters
    ----------
    ds
        A data set as read by :func:`radflow.dicom.headers.read_dataset`.
    settings
        Options and policies.
    key
        The pseudonymisation key (UIDs and the date shift are keyed with it).
    patient_case_id
        The patient's pseudonym; it becomes PatientName and PatientID and seeds the date shift.

    Returns
    -------
    dataset : pydicom.dataset.Dataset
        The de-identified data set, with a new file meta header (transfer syntax unchanged).
    counts : collections.Counter
        ``(tag, action) -> number of elements`` (see the module docstring).
    """
    shift = (date_shift_days(key, patient_case_id, settings.max_date_shift_days)
             if settings.dates == "shift" else 0)
    safe = frozenset(settings.safe_private if settings.safe_private is not None
                     else standard_safe_private()) if settings.retain_safe_private else frozenset()
    with quiet_pydicom():
        ctx = _Context(settings, key, patient_case_id, shift, identifying_terms(ds, settings),
                       frozenset((g, e, c.strip()) for g, e, c in safe))
        out = _process(ds, ctx, top=True)
        _mark(out, ctx)
    out.file_meta = _file_meta(ds, out)
    return out, ctx.counts


def identifying_terms(ds: Dataset, settings: DeidSettings) -> list[str]:
    """The text values ``settings`` remove or replace anywhere in ``ds``, as terms to cut from
    retained descriptors (:func:`radflow.deidentify.clean.value_terms`)."""
    terms: list[str] = []
    with quiet_pydicom():
        for elem in _walk(ds):
            if elem.VR not in TEXT_VRS or elem.value in (None, ""):
                continue
            tkey = table_key(elem.tag)
            if elem.tag not in PSEUDONYM_TAGS:
                if tkey is None or tkey == PRIVATE_ATTRIBUTES:
                    continue  # kept (unlisted) or removed wholesale (private)
                if resolve(action_table()[tkey], settings).code in ("K", "C"):
                    continue
            values = elem.value if isinstance(elem.value, MultiValue) else [elem.value]
            for v in values:
                terms += value_terms(elem.keyword, elem.VR, str(v))
    return terms


def _walk(ds: Dataset) -> Iterable[DataElement]:
    for tag in list(ds.keys()):
        try:
            elem = ds[tag]
        except Exception:  # unreadable value: handled (removed) by _process
            continue
        yield elem
        if elem.VR == "SQ" and elem.value:
            for item in elem.value:
                yield from _walk(item)


def tag_text(tag: int) -> str:
    """``(gggg,eeee)``, upper-case hex."""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _process(ds: Dataset, ctx: _Context, *, top: bool = False) -> Dataset:
    out = Dataset()
    for tag in list(ds.keys()):
        group, element = tag >> 16, tag & 0xFFFF
        if group == 0x0002:
            continue
        if element == 0x0000:
            ctx.counts[(tag_text(tag), "X")] += 1
            continue
        try:
            elem = ds[tag]
        except Exception:  # a value pydicom cannot convert is never kept
            ctx.counts[(tag_text(tag), "X")] += 1
            logger.debug("removed unreadable element %s", tag_text(tag))
            continue
        if top and tag in PSEUDONYM_TAGS:
            out.add(DataElement(tag, elem.VR if elem.VR != "UN" else
                                ("PN" if tag == 0x00100010 else "LO"), ctx.case_id))
            ctx.counts[(tag_text(tag), "D")] += 1
            continue
        if group % 2:
            _private(ds, elem, out, ctx)
            continue
        tkey = table_key(tag)
        if tkey is None:
            _unlisted(elem, out, ctx)
            continue
        resolved = resolve(action_table()[tkey], ctx.settings)
        label = tkey if "x" in tkey else tag_text(tag)
        done = _apply(elem, resolved, out, ctx)
        ctx.counts[(label, done)] += 1
    return out


def _unlisted(elem: DataElement, out: Dataset, ctx: _Context) -> None:
    label = tag_text(elem.tag)
    if elem.VR in ("DA", "DT") and ctx.settings.dates != "full":
        if ctx.settings.dates == "shift":
            done = _apply(elem, Resolved("C", "rtn_long_modif_dates"), out, ctx)
        else:
            done = _apply(elem, Resolved("D", "basic"), out, ctx)
        ctx.counts[(label, done)] += 1
        return
    _apply(elem, Resolved("K", "unlisted"), out, ctx)
    ctx.counts[(label, "K-unlisted")] += 1


def _private(ds: Dataset, elem: DataElement, out: Dataset, ctx: _Context) -> None:
    group, element = elem.tag >> 16, elem.tag & 0xFFFF
    if 0x0010 <= element <= 0x00FF:  # private creator: kept when a safe element of it is
        tags = list(ds.keys())
        block = [t for t in tags if t >> 16 == group and (t & 0xFFFF) >> 8 == element]
        keep = any(_is_safe(ds, t, ctx) for t in block)
        if keep:
            out.add(copy.deepcopy(elem))
        ctx.counts[(f"({group:04X},00xx)", "K" if keep else "X")] += 1
        return
    label = f"({group:04X},xx{element & 0xFF:02X})"
    if element >= 0x1000 and _is_safe(ds, elem.tag, ctx):
        _apply(elem, Resolved("K", "rtn_safe_priv"), out, ctx)
        ctx.counts[(label, "C")] += 1
        return
    ctx.counts[(label, "X")] += 1


def _is_safe(ds: Dataset, tag: int, ctx: _Context) -> bool:
    if not ctx.safe:
        return False
    group, element = tag >> 16, tag & 0xFFFF
    creator = ds.get((group << 16) | (element >> 8))
    if creator is None or not isinstance(creator.value, str):
        return False
    return (group, element & 0xFF, creator.value.strip()) in ctx.safe


def _apply(elem: DataElement, resolved: Resolved, out: Dataset, ctx: _Context) -> str:
    """Put the de-identified ``elem`` into ``out``; return the action performed."""
    code, column = resolved.code, resolved.column
    if code == "C":
        code = _clean(elem, column, out, ctx)
        if code == "C":
            return "C"
        if code != "basic":
            return _apply(elem, Resolved(code, "basic"), out, ctx)
        basic = action_table()[table_key(elem.tag) or ""].basic
        return _apply(elem, resolve_basic(basic), out, ctx)
    if code == "X":
        return "X"
    if code in ("K", "U*"):
        if elem.VR == "SQ":
            out.add(DataElement(elem.tag, "SQ", Sequence(
                [_process(item, ctx) for item in elem.value or []])))
            return code if code == "K" else "U"
        if code == "U*":
            return _apply(elem, Resolved("U", column), out, ctx)
        out.add(copy.deepcopy(elem))
        return "K"
    if code == "U" or (code == "D" and elem.VR == "UI"):
        values = elem.value if isinstance(elem.value, MultiValue) else [elem.value]
        new = [replace_uid(ctx.key, _text(v)) for v in values if v is not None]
        out.add(DataElement(elem.tag, "UI", new if len(new) > 1 else (new[0] if new else "")))
        return code
    if code == "Z" or elem.VR == "SQ" or DUMMIES.get(elem.VR) is None:
        out.add(DataElement(elem.tag, elem.VR, Sequence([]) if elem.VR == "SQ" else None))
        return "Z"
    empty = elem.value in (None, "", b"") or (isinstance(elem.value, MultiValue)
                                               and len(elem.value) == 0)
    out.add(DataElement(elem.tag, elem.VR, None if empty else DUMMIES[elem.VR]))
    return "D"


def resolve_basic(code: str) -> Resolved:
    """The Basic Profile action after compound resolution."""
    return Resolved(COMPOUND_RESOLUTION.get(code, code), "basic")


def _clean(elem: DataElement, column: str, out: Dataset, ctx: _Context) -> str:
    """Clean ``elem`` into ``out`` and return ``"C"``, or a code to apply instead
    (``"basic"``: the Basic Profile action)."""
    if column == "rtn_long_modif_dates":
        if elem.VR in ("DA", "DT"):
            values = elem.value if isinstance(elem.value, MultiValue) else [elem.value]
            text = "\\".join(_text(v) for v in values if v is not None)
            moved = shift_date_value(text, elem.VR, ctx.shift_days) if text else ""
            if moved is None:
                return "D"
            out.add(DataElement(elem.tag, elem.VR, moved or None))
            return "C"
        if elem.VR == "SQ":
            out.add(DataElement(elem.tag, "SQ", Sequence(
                [_process(item, ctx) for item in elem.value or []])))
            return "C"
        out.add(copy.deepcopy(elem))  # times and time zone offsets: a whole-day shift keeps them
        return "C"
    if column == "clean_desc" and elem.keyword in CLEANED_DESCRIPTORS and elem.VR in TEXT_VRS:
        values = elem.value if isinstance(elem.value, MultiValue) else [elem.value]
        limit = MAX_LENGTH.get(elem.VR, 64)
        cleaned = [clean_descriptor(_text(v), ctx.terms, limit) for v in values
                   if v is not None]
        out.add(DataElement(elem.tag, elem.VR,
                            cleaned if len(cleaned) > 1 else (cleaned[0] if cleaned else None)))
        return "C"
    return "basic"


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip(" \0")
    return str(value).strip(" \0")


def _mark(out: Dataset, ctx: _Context) -> None:
    settings = ctx.settings
    out.PatientIdentityRemoved = "YES"
    names = [f"radflow {__version__}", f"PS3.15 {STANDARD_EDITION} E.1-1 Basic Profile"]
    names += [code.meaning for code in method_codes(settings)[1:]]
    out.DeidentificationMethod = [n[:64] for n in names]
    # the sequence says what was done to this object now: earlier passes' codes (e.g. a
    # "Retain Device Identity" of an archive's export) may no longer hold, so they are replaced
    items = []
    for code in method_codes(settings):
        item = Dataset()
        item.CodeValue = code.value
        item.CodingSchemeDesignator = code.scheme_designator
        item.CodeMeaning = code.meaning
        items.append(item)
    out.DeidentificationMethodCodeSequence = Sequence(items)
    out.LongitudinalTemporalInformationModified = LTIM[settings.dates]
    for tag in PSEUDONYM_TAGS:
        if tag not in out:
            out.add(DataElement(tag, "PN" if tag == 0x00100010 else "LO", ctx.case_id))
            ctx.counts[(tag_text(tag), "D")] += 1


def _file_meta(source: Dataset, out: Dataset) -> FileMetaDataset:
    meta = FileMetaDataset()
    src_meta = getattr(source, "file_meta", None)
    syntax = src_meta.get("TransferSyntaxUID") if src_meta is not None else None
    if syntax is None:
        syntax = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = out.get("SOPClassUID", "")
    meta.MediaStorageSOPInstanceUID = out.get("SOPInstanceUID", "")
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"RADFLOW_{__version__}"[:16]
    return meta


def keyword_of(tag_label: str) -> str:
    """The keyword for a counts label (table name for patterns, ``Private`` for private)."""
    if "x" in tag_label[1:5] or tag_label.startswith("(gggg"):
        row = action_table().get(tag_label)
        return row.name.replace(" ", "") if row else "PrivateAttribute"
    if "xx" in tag_label:
        return "PrivateCreator" if "00xx" in tag_label else "PrivateAttribute"
    try:
        tag = int(tag_label[1:5] + tag_label[6:10], 16)
    except ValueError:
        return ""
    keyword = keyword_for_tag(tag)
    if keyword:
        return keyword
    row = action_table().get(tag_label)
    return row.name.replace(" ", "") if row else ""


__all__ = ["deidentify_dataset", "identifying_terms", "keyword_of", "tag_text"]
