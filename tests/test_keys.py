"""Pseudonymous keys: deterministic, keyed, namespaced; key file handling."""

from __future__ import annotations

import re
import stat

import pytest

from radflow.errors import KeyFileError
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
