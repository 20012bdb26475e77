"""The PS3.15 Table E.1-1 data file, the option resolution and DeidSettings."""

from __future__ import annotations

import pytest

from radflow.deidentify.profile import (
    ACTION_CODES,
    COMPOUND_RESOLUTION,
    CURVE_DATA,
    OPTION_COLUMNS,
    OVERLAY_DATA,
    PRIVATE_ATTRIBUTES,
    DeidSettings,
    action_table,
    method_codes,
    resolve,
    standard_safe_private,
    table_key,
)
from radflow.errors import ConfigError
from radflow.settings import from_mapping

# Entries of PS3.15 Table E.1-1 as printed in the standard (stable across recent editions):
# tag -> (Basic Profile action, {option column: action}).
KNOWN_ENTRIES = {
    "(0008,0050)": ("Z", {}),  # Accession Number
    "(0010,0010)": ("Z", {}),  # Patient's Name
    "(0010,0030)": ("Z", {}),  # Patient's Birth Date
    "(0010,0040)": ("Z", {"rtn_pat_chars": "K"}),  # Patient's Sex
    "(0010,1010)": ("X", {"rtn_pat_chars": "K"}),  # Patient's Age
    "(0010,1020)": ("X", {"rtn_pat_chars": "K"}),  # Patient's Size
    "(0010,1030)": ("X", {"rtn_pat_chars": "K"}),  # Patient's Weight
    "(0010,1000)": ("X", {}),  # Other Patient IDs
    "(0010,1040)": ("X", {}),  # Patient's Address
    "(0010,4000)": ("X", {"clean_desc": "C"}),  # Patient Comments
    "(0008,0018)": ("U", {"rtn_uids": "K"}),  # SOP Instance UID
    "(0020,000D)": ("U", {"rtn_uids": "K"}),  # Study Instance UID
    "(0020,000E)": ("U", {"rtn_uids": "K"}),  # Series Instance UID
    "(0020,0052)": ("U", {"rtn_uids": "K"}),  # Frame of Reference UID
    "(0008,1155)": ("U", {"rtn_uids": "K"}),  # Referenced SOP Instance UID
    "(3006,0024)": ("U", {"rtn_uids": "K"}),  # Referenced Frame of Reference UID
    "(0008,1140)": ("X/Z/U*", {"rtn_uids": "K"}),  # Referenced Image Sequence
    "(0008,2112)": ("X/Z/U*", {"rtn_uids": "K"}),  # Source Image Sequence
    "(0008,0080)": ("X/Z/D", {"rtn_inst_id": "K"}),  # Institution Name
    "(0008,0081)": ("X", {"rtn_inst_id": "K"}),  # Institution Address
    "(0008,0090)": ("Z", {}),  # Referring Physician's Name
    "(0008,1070)": ("X/Z/D", {}),  # Operators' Name
    "(0008,1050)": ("X", {}),  # Performing Physician's Name
    "(0018,1000)": ("X/Z/D", {"rtn_dev_id": "K"}),  # Device Serial Number
    "(0008,1010)": ("X/Z/D", {"rtn_dev_id": "K"}),  # Station Name
    "(0008,103E)": ("X", {"clean_desc": "C"}),  # Series Description
    "(0008,1030)": ("X", {"clean_desc": "C"}),  # Study Description
    "(0020,4000)": ("X", {"clean_desc": "C"}),  # Image Comments
    "(0008,0020)": ("Z", {"rtn_long_full_dates": "K", "rtn_long_modif_dates": "C"}),
    "(0008,0030)": ("Z", {"rtn_long_full_dates": "K", "rtn_long_modif_dates": "C"}),
    "(0008,0022)": ("X/Z", {"rtn_long_full_dates": "K", "rtn_long_modif_dates": "C"}),
    "(0020,0010)": ("Z", {}),  # Study ID
    "(0400,0100)": ("U", {}),  # Digital Signature UID: not kept by Retain UIDs
    "(0088,0200)": ("X", {}),  # Icon Image Sequence
    "(FFFA,FFFA)": ("X", {}),  # Digital Signatures Sequence
    "(0400,0561)": ("X", {}),  # Original Attributes Sequence
    PRIVATE_ATTRIBUTES: ("X", {"rtn_safe_priv": "C"}),
    CURVE_DATA: ("X", {"clean_graph": "C"}),
    OVERLAY_DATA: ("X", {"clean_graph": "C"}),
}


@pytest.mark.parametrize("tag", sorted(KNOWN_ENTRIES))
def test_known_entries_match_the_standard(tag):
    basic, options = KNOWN_ENTRIES[tag]
    row = action_table()[tag]
    assert row.basic == basic
    for column, code in options.items():
        assert row.options.get(column) == code, column


def test_table_is_well_formed():
    table = action_table()
    assert len(table) > 600  # the 2025/2026 editions list about 650 rows
    for key, row in table.items():
        assert row.basic in ACTION_CODES, key
        assert set(row.options) <= set(OPTION_COLUMNS), key
        assert set(row.options.values()) <= {"K", "C"}, key
        # every UID the profile replaces is kept by Retain UIDs, but two
        if row.basic == "U" and key not in ("(0040,A124)", "(0400,0100)"):
            assert row.options.get("rtn_uids") == "K", key
        # the two temporal options cover the same attributes
        full = "rtn_long_full_dates" in row.options
        assert full == ("rtn_long_modif_dates" in row.options), key


def test_table_keys_lookup():
    assert table_key(0x00100010) == "(0010,0010)"
    assert table_key(0x00191010) == PRIVATE_ATTRIBUTES
    assert table_key(0x50020010) == CURVE_DATA
    assert table_key(0x60023000) == OVERLAY_DATA
    assert table_key(0x60020010) is None  # overlay rows: not listed
    assert table_key(0x00280010) is None  # Rows: not listed


def test_safe_private_list_has_the_known_entries():
    safe = set(standard_safe_private())
    assert (0x2005, 0x0E, "Philips MR Imaging DD 001") in safe  # Scale Slope
    assert (0x0019, 0x0C, "SIEMENS MR HEADER") in safe  # B Value
    assert (0x0043, 0x39, "GEMS_PARM_01") in safe  # b value
    assert len(safe) > 50


@pytest.mark.parametrize("settings, tag, expected", [
    (DeidSettings(), "(0010,1010)", ("K", "rtn_pat_chars")),
    (DeidSettings(retain_patient_characteristics=False), "(0010,1010)", ("X", "basic")),
    (DeidSettings(), "(0008,0020)", ("C", "rtn_long_modif_dates")),
    (DeidSettings(dates="full"), "(0008,0020)", ("K", "rtn_long_full_dates")),
    (DeidSettings(dates="remove"), "(0008,0020)", ("Z", "basic")),
    (DeidSettings(), "(0008,0080)", ("D", "basic")),  # X/Z/D
    (DeidSettings(retain_institution_identity=True), "(0008,0080)", ("K", "rtn_inst_id")),
    (DeidSettings(), "(0008,1140)", ("U*", "basic")),  # X/Z/U*
    (DeidSettings(), "(0008,0022)", ("C", "rtn_long_modif_dates")),
    (DeidSettings(dates="remove"), "(0008,0022)", ("Z", "basic")),  # X/Z
    (DeidSettings(), "(0018,1000)", ("D", "basic")),
    (DeidSettings(retain_device_identity=True), "(0018,1000)", ("K", "rtn_dev_id")),
    (DeidSettings(retain_uids=True), "(0008,0018)", ("K", "rtn_uids")),
    (DeidSettings(), "(0008,0018)", ("U", "basic")),
    # Allergies: C by two options, K by none
    (DeidSettings(), "(0010,2110)", ("C", "rtn_pat_chars")),
    # Device UID: K by Retain Device Identity even when UIDs are replaced
    (DeidSettings(retain_device_identity=True), "(0018,1002)", ("K", "rtn_dev_id")),
])
def test_resolution(settings, tag, expected):
    resolved = resolve(action_table()[tag], settings)
    assert (resolved.code, resolved.column) == expected


def test_compound_resolution_never_keeps():
    assert set(COMPOUND_RESOLUTION.values()) <= {"D", "Z", "U*"}


def test_method_codes_follow_the_options():
    values = [c.value for c in method_codes(DeidSettings())]
    assert values[0] == "113100"
    assert sorted(values) == ["113100", "113105", "113107", "113108"]
    bare = DeidSettings(retain_patient_characteristics=False, dates="remove",
                        clean_descriptors=False)
    assert [c.value for c in method_codes(bare)] == ["113100"]
    every = DeidSettings(dates="full", retain_device_identity=True,
                         retain_institution_identity=True, retain_uids=True,
                         retain_safe_private=True)
    assert sorted(c.value for c in method_codes(every)) == [
        "113100", "113105", "113106", "113108", "113109", "113110", "113111", "113112"]


def test_settings_reject_unknown_keys_and_bad_values():
    with pytest.raises(ConfigError, match="'deid': retain_patient_charactristics"):
        from_mapping(DeidSettings, {"retain_patient_charactristics": True}, section="deid")
    with pytest.raises(ConfigError, match=r"deid\.dates must be one of shift, full, remove"):
        DeidSettings(dates="shifted")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        DeidSettings(max_date_shift_days=0)
    settings = from_mapping(DeidSettings, {"retain_safe_private": True, "safe_private": [
        ["2005", "0e", "Philips MR Imaging DD 001"]]}, section="deid")
    assert settings.safe_private == ((0x2005, 0x0E, "Philips MR Imaging DD 001"),)
