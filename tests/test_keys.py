"""Pseudonymous keys: deterministic, keyed, namespaced; key file handling."""

from __future__ import annotations

import re
import stat

import pytest

from radflow.errors import KeyFileError, RadflowError
from radflow.keys import KEY_ENV, case_id, load_key, resolve_key_file, series_key

KEY = b"0123456789abcdef0123456789abcdef"


def test_case_id_is_deterministic_and_keyed() -> None:
    assert case_id(KEY, "PID-1") == case_id(KEY, "PID-1 ")  # DICOM even-length padding
    assert case_id(KEY, "PID-1") != case_id(KEY, "PID-2")
    assert case_id(KEY, "PID-1") != case_id(b"another-key-of-32-bytes-length!!", "PID-1")
    assert re.fullmatch(r"c[0-9a-f]{12}", case_id(KEY, "PID-1"))


def test_namespaces_do_not_collide() -> None:
    assert series_key(KEY, "1.2.3")[1:13] != case_id(KEY, "1.2.3")[1:]
    assert re.fullmatch(r"s[0-9a-f]{16}", series_key(KEY, "1.2.3"))


def test_key_created_once_with_private_mode(tmp_path) -> None:
    path = tmp_path / "sub" / "key"
    first = load_key(path, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path, create=True) == first
    assert len(first) >= 32


@pytest.mark.parametrize("content, reason", [(None, "missing-key"), (b"short", "short-key")])
def test_bad_key_files(tmp_path, content, reason) -> None:
    path = tmp_path / "key"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(KeyFileError) as info:
        load_key(path)
    assert info.value.reason == reason
    assert isinstance(info.value, OSError)


def test_environment_variable_wins(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "env-key"))
    assert resolve_key_file("configured") == tmp_path / "env-key"
    monkeypatch.delenv(KEY_ENV)
    assert str(resolve_key_file("configured")) == "configured"
    assert str(resolve_key_file(None)) == ".radflow/key"


def test_every_key_recipe_keeps_its_values() -> None:
    """The recipes moved into radflow.keys (issue 12) give the keys they gave before (values
    computed with the recipes as they were in crawl.py, crawl_records.py, crawl_sheet.py,
    crawl_masks.py and deid/tree.py)."""
    from radflow.keys import folder_key, pair_id, source_ref, study_key, volume_key

    k = b"k" * 32
    assert pair_id("s0123456789abcdef", "s1123456789abcdef", 2, "GTV") == "pc9c4faa50bc4eb87"
    assert study_key(k, "1.2.3") == "tb34f36c4705c2a4f" and study_key(k, "") == ""
    assert folder_key(k, "a/b") == "f733b9d5a"
    assert volume_key(k, "file", "/x/m.nii.gz", subject="P1") == "s2ba4ceee0e8fbba7"
    assert volume_key(k, "series", "1.2.3", split="_e2") == "s89366775557478ea"
    assert volume_key(k, "mask", "1.2.9") == "sf7eec4507988007f"
    assert volume_key(k, "mask-file", "/x/rs.dcm") == "sd209403d74261916"
    assert volume_key(k, "folder", "/x/f") == "s0505b8c604919025"
    assert volume_key(k, "unreadable", "/x/a.dcm") == "s3316bbe47744dbc8"
    assert source_ref("series", "1.2.3") == "1.2.3"  # a plain UID: series_key(key, uid)
    with pytest.raises(RadflowError, match="unknown source reference"):
        source_ref("other", "x")  # type: ignore[arg-type]


def test_key_patterns_match_the_keys() -> None:
    from radflow.keys import KEY_PATTERNS, pair_id

    assert re.fullmatch(KEY_PATTERNS["case_id"], case_id(KEY, "PID-1"))
    assert re.fullmatch(KEY_PATTERNS["series_key"], series_key(KEY, "1.2.3"))
    assert re.fullmatch(KEY_PATTERNS["pair_id"], pair_id("sa", "sb", 1, "r"))
    assert not re.fullmatch(KEY_PATTERNS["series_key"], case_id(KEY, "PID-1"))
