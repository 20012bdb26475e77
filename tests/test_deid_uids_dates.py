"""Keyed UID replacement, per-patient date shift and descriptor cleaning."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from radflow.deidentify.clean import clean_descriptor, name_terms, value_terms
from radflow.deidentify.dates import date_shift_days, shift_da, shift_date_value, shift_dt
from radflow.deidentify.uids import is_valid_uid, replace_uid

KEY = b"0123456789abcdef0123456789abcdef"
OTHER_KEY = b"fedcba9876543210fedcba9876543210"

uid_strategy = st.lists(st.integers(0, 10**12), min_size=2, max_size=12).map(
    lambda parts: ".".join(str(p) for p in parts)).filter(lambda u: len(u) <= 64)


@given(uid_strategy)
def test_replaced_uid_is_valid_deterministic_and_keyed(uid):
    new = replace_uid(KEY, uid)
    assert is_valid_uid(new) and new.startswith("2.25.")
    assert new == replace_uid(KEY, uid)
    assert new == replace_uid(KEY, uid + "\0")  # DICOM padding does not matter
    assert new != replace_uid(OTHER_KEY, uid)
    assert uid not in new[5:] or len(uid) < 6


def test_distinct_uids_stay_distinct():
    uids = [f"1.2.840.99999.{i}" for i in range(5000)]
    assert len({replace_uid(KEY, u) for u in uids}) == len(uids)
    assert replace_uid(KEY, "") == ""


@pytest.mark.parametrize("uid, valid", [
    ("1.2.3", True), ("2.25.0", True), ("1.02.3", False), ("1..2", False), ("1.2.", False),
    ("1" * 65, False), ("1.2.a", False)])
def test_uid_syntax_check(uid, valid):
    assert is_valid_uid(uid) == valid


def test_date_shift_is_per_patient_consistent_and_in_range():
    shifts = {cid: date_shift_days(KEY, cid) for cid in (f"c{i:012x}" for i in range(400))}
    assert all(-365 <= s <= -1 for s in shifts.values())
    assert len(set(shifts.values())) > 200  # spread over the range, not one constant
    assert all(date_shift_days(KEY, cid) == s for cid, s in shifts.items())
    assert any(date_shift_days(OTHER_KEY, cid) != s for cid, s in shifts.items())
    assert all(-30 <= date_shift_days(KEY, c, 30) <= -1 for c in shifts)


@given(st.dates(dt.date(1800, 1, 1), dt.date(2200, 12, 31)), st.integers(-3650, -1))
def test_shift_da_moves_by_exactly_the_shift(date, days):
    moved = shift_da(date.strftime("%Y%m%d"), days)
    assert dt.datetime.strptime(moved, "%Y%m%d").date() - date == dt.timedelta(days=days)


@pytest.mark.parametrize("value, days, expected", [
    ("20240301", -1, "20240229"),  # leap day
    ("2024.03.01", -1, "20240229"),  # ACR-NEMA style
    ("20240230", -1, None),  # no such date
    ("2024", -1, None), ("hello", -1, None), ("", -1, None),
])
def test_shift_da_cases(value, days, expected):
    assert shift_da(value, days) == expected


@pytest.mark.parametrize("value, days, expected", [
    ("20240301101500.123456+0100", -1, "20240229101500.123456+0100"),
    ("20240301101500", -10, "20240220101500"),
    ("20240301", -1, "20240229"),
    ("202403", -20, "202402"),  # partial: shifted from the middle of the month
    ("2024", -200, "2023"),  # partial: from July 1st
    ("2024", -10, "2024"),
    ("202413", -1, None), ("2024x", -1, None),
])
def test_shift_dt_cases(value, days, expected):
    assert shift_dt(value, days) == expected


def test_shift_date_value_multi_values_and_ranges():
    assert shift_date_value("20240301\\20240302", "DA", -1) == "20240229\\20240301"
    assert shift_date_value("20240301-20240310", "DA", -1) == "20240229-20240309"
    assert shift_date_value("-20240310", "DA", -1) == "-20240309"
    assert shift_date_value("20240301\\garbage", "DA", -1) is None


def test_name_terms_cover_components_groups_and_orders():
    terms = name_terms("Kim^Minjun=김^민준")
    for t in ("Kim", "Minjun", "Minjun Kim", "Kim Minjun", "김민준", "민준"):
        assert t in terms


@pytest.mark.parametrize("text, terms, expected", [
    ("CT KIM MINJUN chest", ["Kim", "Minjun"], "CT chest"),
    ("Liver LI protocol", ["Li"], "Liver protocol"),  # whole words: Liver stays
    ("T1 김민준 axial", ["김민준"], "T1 axial"),
    ("CT 2019-03-04 follow-up", [], "CT follow-up"),
    ("CT 04.03.2019", [], "CT"),
    ("PID 123456789 thorax", [], "PID thorax"),
    ("send to doc@example.org now", [], "send to now"),
    ("ep2d_diff_b1000 TRACEW", [], "ep2d_diff_b1000 TRACEW"),  # nothing identifying
    ("AXIAL 1.25 mm", [], "AXIAL 1.25 mm"),
    ("Seoul Radflow Hospital CT", ["Seoul Radflow Hospital"], "CT"),
])
def test_clean_descriptor(text, terms, expected):
    assert clean_descriptor(text, terms) == expected


def test_clean_descriptor_limits_length():
    assert len(clean_descriptor("A" * 100, [], 16)) == 16


def test_value_terms_split_addresses_word_by_word():
    terms = value_terms("InstitutionAddress", "ST", "12 Gangnam-daero, Seocho-gu, Seoul")
    assert "Gangnam-daero" in terms and "Seoul" in terms
    assert value_terms("ImageComments", "LT", "a") == []  # too short to be a term
    assert "free text here" in value_terms("ImageComments", "LT", "free text here")
    assert "free" not in value_terms("ImageComments", "LT", "free text here")
