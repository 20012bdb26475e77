"""tests/conftest.py: a test marked slow says that it is still running; others stay quiet."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


def test_slow_tests_report_progress(pytester: pytest.Pytester,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADFLOW_PROGRESS_SECONDS", "0.3")
    pytester.makeconftest((Path(__file__).with_name("conftest.py")).read_text("utf-8"))
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n")
    pytester.makepyfile(test_sleep="""
        import time
        import pytest

        @pytest.mark.slow
        def test_long():
            time.sleep(1.0)

        def test_short_but_not_marked():
            time.sleep(1.0)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    lines = [ln for ln in result.outlines if "[slow]" in ln]
    assert lines and all("test_sleep.py::test_long: running for" in ln for ln in lines)
