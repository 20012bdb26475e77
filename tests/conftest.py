"""Shared fixtures: the third-party reference data folder and small synthetic inputs."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _testdata_root() -> Path:
    return Path(os.environ.get("RADFLOW_TESTDATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def testdata() -> Path:
    """Root of the third-party reference data (``RADFLOW_TESTDATA``, default ``../shared/data``).

    Skips the test with a reason when the folder is absent (a user's clone), unless
    ``RADFLOW_REQUIRE_TESTDATA=1`` (set by ``.ci/run``), where a missing folder is an error.
    """
    root = _testdata_root()
    if not (root / "INDEX.md").is_file():
        msg = f"reference data not found at {root} (set RADFLOW_TESTDATA)"
        if os.environ.get("RADFLOW_REQUIRE_TESTDATA") == "1":
            pytest.fail(msg + "; RADFLOW_REQUIRE_TESTDATA=1 forbids skipping")
        pytest.skip(msg)
    return root


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (where the Snakefile lives)."""
    return REPO


# --- progress of slow tests ----------------------------------------------------------------------
#: Seconds between "still running" lines of a test marked ``slow`` (RADFLOW_PROGRESS_SECONDS).
PROGRESS_SECONDS = float(os.environ.get("RADFLOW_PROGRESS_SECONDS", "30"))


def _progress_line(config: pytest.Config, text: str) -> None:
    """Write one line to the terminal while a test runs (output capture paused meanwhile)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        if reporter._tw.width_of_current_line:  # after pytest's progress dots
            reporter._tw.line()
        reporter._tw.line(text)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    """A test marked ``slow`` (an end-to-end run, up to minutes) says every
    :data:`PROGRESS_SECONDS` that it is still running, with its name and elapsed time, so that
    it does not look hung; quicker tests print nothing more than pytest's usual output."""
    if item.get_closest_marker("slow") is None:
        return (yield)
    start = time.monotonic()
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(PROGRESS_SECONDS):
            _progress_line(item.config, f"  [slow] {item.nodeid}: running for "
                                        f"{time.monotonic() - start:.0f} s")

    thread = threading.Thread(target=heartbeat, name="slow-test-progress", daemon=True)
    thread.start()
    try:
        return (yield)
    finally:
        done.set()
        thread.join()
