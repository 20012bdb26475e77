"""Shared fixtures: the third-party reference data folder and small synthetic inputs."""

from __future__ import annotations

import os
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
