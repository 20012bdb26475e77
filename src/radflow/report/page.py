"""The HTML page: ``report/index.html`` from a jinja2 template, with its stylesheet and script.

The page links only to files beside it (``assets/``, ``qc/``): no network address, no CDN, so it
opens offline from the folder (or a copy of it). Autoescaping is on: keys, feature names and
statuses are text, never markup. The page holds no date, so two runs write the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from radflow.io.atomic import write_text

TEMPLATES = Path(__file__).parent / "templates"
#: Static files copied into ``report/assets/``.
STATIC = ("report.css", "report.js")


def render_page(context: Mapping[str, Any]) -> str:
    """The page's HTML from the template ``templates/index.html.j2`` and ``context``."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.get_template("index.html.j2").render(**context)


def write_page(report_dir: str | Path, html: str) -> Path:
    """Write the static assets and ``index.html`` (last, atomically) into ``report_dir``."""
    out = Path(report_dir)
    for name in STATIC:
        write_text(out / "assets" / name, (TEMPLATES / name).read_text(encoding="utf-8"))
    write_text(out / "index.html", html)
    return out / "index.html"


__all__ = ["STATIC", "TEMPLATES", "render_page", "write_page"]
