"""Free-text cleaning for table cells."""

from __future__ import annotations

import pytest

from radflow.text import clean_text


@pytest.mark.parametrize("raw, expected", [
    ("GTV\tprimary\n", "GTV primary"),
    ("a\x00b", "a b"),
    ("  x  ", "x"),
    (None, ""),
    ("한국어", "한국어"),
    ("bad\ud800surrogate", "badsurrogate"),
])
def test_clean_text(raw, expected) -> None:
    assert clean_text(raw) == expected


def test_clean_text_truncates() -> None:
    assert len(clean_text("x" * 10_000)) == 64
