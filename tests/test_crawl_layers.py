"""The crawl never imports the de-identification stage (issue 12): it reads the stage's
UID/source map file instead (:mod:`radflow.records.uid_map`)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import radflow.crawl


def _crawl_modules() -> list[str]:
    return ["radflow.crawl", *sorted(f"radflow.crawl.{m.name}"
                                     for m in pkgutil.iter_modules(radflow.crawl.__path__))]


def test_crawl_modules_do_not_import_the_deid_package() -> None:
    modules = _crawl_modules()
    assert {"radflow.crawl", "radflow.crawl.sheet", "radflow.crawl.table"} <= set(modules)
    code = (f"import importlib, json, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(m for m in sys.modules "
            "if m.startswith('radflow.deidentify'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout) == []


def test_the_check_sees_a_deid_import() -> None:
    """The same check flags the de-identification stage itself (so it can fail)."""
    code = ("import json, sys, radflow.deidentify\n"
            "print(json.dumps(sorted(m for m in sys.modules "
            "if m.startswith('radflow.deidentify'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "radflow.deidentify" in json.loads(out.stdout)
