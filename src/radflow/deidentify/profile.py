"""The PS3.15 Annex E action table and the options radflow applies (:class:`DeidSettings`).

The table is the standard's Table E.1-1 "Application Level Confidentiality Profile Attributes",
shipped as the versioned data file ``data/ps3.15_e1-1.csv`` (provenance and edition in
``data/README.md``): one row per attribute (or attribute pattern: curve data ``(50xx,xxxx)``,
overlay data/comments ``(60xx,3000)``/``(60xx,4000)``, private attributes), its Basic Profile
action and the action of each option column.

Action codes (PS3.15 Table E.1-1 legend)
----------------------------------------
``D`` dummy value, ``Z`` zero length (or dummy), ``X`` remove, ``K`` keep (sequences: keep and
process their items), ``C`` clean, ``U`` replace UID consistently; compound codes ``Z/D``,
``X/Z``, ``X/D``, ``X/Z/D``, ``X/Z/U*`` let the implementation pick the variant that keeps the
object conformant to its IOD. radflow has no per-IOD attribute types, so it resolves them with a
rule that is conformant for every IOD and never keeps a value: ``Z/D``, ``X/D`` and ``X/Z/D``
-> ``D`` (an empty original stays empty), ``X/Z`` -> ``Z``, ``X/Z/U*`` -> ``U*`` (the reference
sequence is kept and its UIDs replaced, so that references survive).

Option precedence: the Basic Profile action applies unless an enabled option's column names an
action for the attribute; when several enabled options do, ``K`` wins over ``C``.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, get_args

from pydicom.sr.codedict import codes

from radflow.errors import ConfigError
from radflow.settings import check_choices

#: The PS3.15 edition the table transcribes (Basic Profile column; see data/README.md).
STANDARD_EDITION = "2026c"
TABLE_FILE = "ps3.15_e1-1.csv"
SAFE_PRIVATE_FILE = "ps3.15_e3.10-1_safe_private.csv"

CURVE_DATA = "(50xx,xxxx)"
OVERLAY_DATA = "(60xx,3000)"
OVERLAY_COMMENTS = "(60xx,4000)"
PRIVATE_ATTRIBUTES = "(gggg,eeee) odd gggg"

#: Table column of each option (the standard's column headers, abbreviated).
OPTION_COLUMNS = ("rtn_safe_priv", "rtn_uids", "rtn_dev_id", "rtn_inst_id", "rtn_pat_chars",
                  "rtn_long_full_dates", "rtn_long_modif_dates", "clean_desc",
                  "clean_struct_cont", "clean_graph")
ACTION_CODES = frozenset({"D", "Z", "X", "K", "C", "U", "Z/D", "X/Z", "X/D", "X/Z/D",
                          "X/Z/U*"})
#: How a compound Basic Profile code is resolved (module docstring).
COMPOUND_RESOLUTION = {"Z/D": "D", "X/D": "D", "X/Z/D": "D", "X/Z": "Z", "X/Z/U*": "U*"}

DateHandling = Literal["shift", "full", "remove"]
DATE_HANDLING: tuple[str, ...] = get_args(DateHandling)

_CID_7050 = codes.cid7050
#: CID 7050 code of the profile and of each option radflow can claim.
PROFILE_CODE = _CID_7050.BasicApplicationConfidentialityProfile
OPTION_CODES = {
    "rtn_safe_priv": _CID_7050.RetainSafePrivateOption,
    "rtn_uids": _CID_7050.RetainUidsOption,
    "rtn_dev_id": _CID_7050.RetainDeviceIdentityOption,
    "rtn_inst_id": _CID_7050.RetainInstitutionIdentityOption,
    "rtn_pat_chars": _CID_7050.RetainPatientCharacteristicsOption,
    "rtn_long_full_dates": _CID_7050.RetainLongitudinalTemporalInformationFullDatesOption,
    "rtn_long_modif_dates": _CID_7050.RetainLongitudinalTemporalInformationModifiedDatesOption,
    "clean_desc": _CID_7050.CleanDescriptorsOption,
}


@dataclass(frozen=True)
class TableRow:
    """One row of Table E.1-1: ``tag`` is ``(gggg,eeee)`` or one of the pattern names."""

    tag: str
    name: str
    basic: str
    options: Mapping[str, str]


@dataclass(frozen=True)
class Resolved:
    """The action radflow performs for one attribute.

    ``code`` is one of ``D Z X K C U U*``; ``column`` is the table column it came from
    (``basic`` or an option column), which tells *how* a ``C`` cleans (dates, descriptors, ...).
    """

    code: str
    column: str


@dataclass(frozen=True)
class DeidSettings:
    """De-identification options (PS3.15 E.3) and radflow's policies.

    The defaults are radflow's documented radiomics set (README, "Privacy"): Basic Profile +
    Retain Patient Characteristics (age, sex, size, weight feed radiomics models) + Retain
    Longitudinal Temporal Information with Modified Dates (a per-patient date shift keeps
    intervals between studies) + Clean Descriptors (series/study descriptions, protocol and ROI
    names are kept after cleaning; they drive series selection and ROI naming). Device and
    institution identity, original UIDs and private attributes are not kept.

    Attributes
    ----------
    retain_patient_characteristics
        Retain Patient Characteristics Option (113108).
    dates
        ``shift``: Modified Dates Option (113107), dates moved by a keyed per-patient offset;
        ``full``: Full Dates Option (113106), dates kept; ``remove``: neither (Basic Profile).
    max_date_shift_days
        Dates move back by 1 .. this many days (``shift``).
    retain_device_identity
        Retain Device Identity Option (113109).
    retain_institution_identity
        Retain Institution Identity Option (113112).
    retain_uids
        Retain UIDs Option (113110): UIDs are kept instead of being replaced.
    retain_safe_private
        Retain Safe Private Option (113111): private attributes on the safe list are kept.
    safe_private
        The safe list, as ``(group, element byte, private creator)`` e.g.
        ``(0x2005, 0x0E, "Philips MR Imaging DD 001")``; ``None``: PS3.15 Table E.3.10-1.
    clean_descriptors
        Clean Descriptors Option (113105), see :mod:`radflow.deidentify.clean`.
    allow_burned_in
        Opt-in to de-identify series that have (or by SOP class may have) burned-in annotation;
        radflow does not clean pixel data, so such series are excluded by default.
    """

    retain_patient_characteristics: bool = True
    dates: DateHandling = "shift"
    max_date_shift_days: int = 365
    retain_device_identity: bool = False
    retain_institution_identity: bool = False
    retain_uids: bool = False
    retain_safe_private: bool = False
    safe_private: tuple[tuple[int, int, str], ...] | None = None
    clean_descriptors: bool = True
    allow_burned_in: bool = False

    def __post_init__(self) -> None:
        """Checks and normalises once; built from the config by
        :func:`radflow.settings.from_mapping` (section ``deid``)."""
        check_choices(self, "deid")
        if not 1 <= self.max_date_shift_days <= 36500:
            raise ConfigError("deid.max_date_shift_days must be between 1 and 36500",
                              reason="config")
        if self.safe_private is not None:  # hex strings ("2005", "0e") or integers
            object.__setattr__(self, "safe_private", tuple(
                (int(str(g), 16) if isinstance(g, str) else int(g),
                 int(str(e), 16) if isinstance(e, str) else int(e), str(c))
                for g, e, c in self.safe_private))

    @property
    def enabled_columns(self) -> tuple[str, ...]:
        """The option columns of Table E.1-1 that these settings enable."""
        on = {
            "rtn_safe_priv": self.retain_safe_private,
            "rtn_uids": self.retain_uids,
            "rtn_dev_id": self.retain_device_identity,
            "rtn_inst_id": self.retain_institution_identity,
            "rtn_pat_chars": self.retain_patient_characteristics,
            "rtn_long_full_dates": self.dates == "full",
            "rtn_long_modif_dates": self.dates == "shift",
            "clean_desc": self.clean_descriptors,
        }
        return tuple(c for c in OPTION_COLUMNS if on.get(c, False))


@functools.cache
def action_table() -> dict[str, TableRow]:
    """Table E.1-1 keyed by ``(gggg,eeee)`` (upper-case hex) or pattern name."""
    text = resources.files("radflow.deidentify").joinpath("data").joinpath(TABLE_FILE) \
        .read_text("utf-8")
    table: dict[str, TableRow] = {}
    for rec in csv.DictReader(text.splitlines()):
        options = {c: rec[c] for c in OPTION_COLUMNS if rec[c]}
        table[rec["tag"]] = TableRow(rec["tag"], rec["name"], rec["basic"], options)
    return table


@functools.cache
def standard_safe_private() -> tuple[tuple[int, int, str], ...]:
    """PS3.15 Table E.3.10-1 as ``(group, element byte, private creator)``."""
    text = resources.files("radflow.deidentify").joinpath("data").joinpath(SAFE_PRIVATE_FILE) \
        .read_text("utf-8")
    return tuple((int(r["group"], 16), int(r["element"][2:], 16), r["private_creator"])
                 for r in csv.DictReader(text.splitlines()))


def table_key(tag: int) -> str | None:
    """The Table E.1-1 key that governs ``tag`` (``None``: not in the table)."""
    group, element = tag >> 16, tag & 0xFFFF
    if group % 2:
        return PRIVATE_ATTRIBUTES
    if group & 0xFF00 == 0x5000:
        return CURVE_DATA
    if group & 0xFF00 == 0x6000 and element in (0x3000, 0x4000):
        return OVERLAY_DATA if element == 0x3000 else OVERLAY_COMMENTS
    key = f"({group:04X},{element:04X})"
    return key if key in action_table() else None


def resolve(row: TableRow, settings: DeidSettings) -> Resolved:
    """The action for ``row`` under ``settings`` (precedence in the module docstring)."""
    chosen: Resolved | None = None
    for column in settings.enabled_columns:
        code = row.options.get(column)
        if code == "K":
            return Resolved("K", column)
        if code and chosen is None:
            chosen = Resolved(code, column)
    if chosen is not None:
        return chosen
    return Resolved(COMPOUND_RESOLUTION.get(row.basic, row.basic), "basic")


def method_codes(settings: DeidSettings) -> list[Any]:
    """CID 7050 codes (pydicom ``Code``) of the profile and the options in use."""
    return [PROFILE_CODE] + [OPTION_CODES[c] for c in settings.enabled_columns
                             if c in OPTION_CODES]


__all__ = ["ACTION_CODES", "COMPOUND_RESOLUTION", "DATE_HANDLING", "OPTION_CODES",
           "OPTION_COLUMNS", "PRIVATE_ATTRIBUTES", "STANDARD_EDITION", "DeidSettings",
           "Resolved", "TableRow", "action_table", "method_codes", "resolve",
           "standard_safe_private", "table_key"]
