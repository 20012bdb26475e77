"""The README's IBSI conformance section, rendered from a conformance table.

:func:`render_section` turns :class:`radflow.ibsi.conformance.Result` rows of one phantom into
markdown: counts per configuration and aggregation group, every failing comparison with its
cause, the reasons of what radflow does not compute. :func:`update_readme` puts it between the
phantom's markers (:func:`markers`); the tests compare the README's digital-phantom block with a
fresh rendering, so the two cannot drift apart.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from radflow.errors import ConfigError
from radflow.ibsi.conformance import FAIL, NOT_COMPUTED, PASS, Result
from radflow.io.atomic import write_text

#: Aggregation code -> group shown in the README.
_3D = "3D: ITBB (GLCM, GLRLM), KOBO (others)"
_25D = "2.5D: JJUI (GLCM, GLRLM), 62GR (others)"
GROUPS: dict[str, str] = {"": "none (morphology, intensity, histogram)", "ITBB": _3D, "KOBO": _3D,
                          "JJUI": _25D, "62GR": _25D}
_OTHER = "2D and merged: BTW3, SUJT, ZW7Z, IAZD, 8QNN"
_ORDER = [GROUPS[""], GROUPS["ITBB"], GROUPS["JJUI"], _OTHER]


def markers(phantom: str) -> tuple[str, str]:
    """The README markers of a phantom's block: ``ibsi-conformance`` (digital phantom) or
    ``ibsi-conformance-ct``."""
    name = "ibsi-conformance" if phantom == "digital" else f"ibsi-conformance-{phantom}"
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def counts(results: Sequence[Result]) -> dict[tuple[str, str], Counter[str]]:
    """``{(configuration, aggregation group): Counter(status)}`` in table order."""
    out: dict[tuple[str, str], Counter[str]] = {}
    keyed = sorted(results, key=lambda r: (r.configuration, _ORDER.index(_group(r))))
    for r in keyed:
        out.setdefault((r.configuration, _group(r)), Counter())[r.status] += 1
    return out


def summary_text(results: Sequence[Result]) -> str:
    """A few lines for the terminal: pass / fail / not computed per configuration."""
    per: dict[str, Counter[str]] = {}
    for r in results:
        per.setdefault(r.configuration, Counter())[r.status] += 1
    return "\n".join(f"{c}: {n[PASS]} pass, {n[FAIL]} fail, {n[NOT_COMPUTED]} not computed"
                     for c, n in per.items())


def render_section(results: Sequence[Result], phantom: str) -> str:
    """Markdown of one phantom's results (the block between the README markers)."""
    rows = [r for r in results if r.phantom == phantom]
    if not rows:
        raise ConfigError(f"no conformance results for the {phantom} phantom")
    lines = ["| configuration | texture aggregation | comparisons | pass | fail | not computed |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for (config, group), n in counts(rows).items():
        lines.append(f"| {config} | {group} | {sum(n.values())} | {n[PASS]} | {n[FAIL]} | "
                     f"{n[NOT_COMPUTED]} |")
    total = Counter(r.status for r in rows)
    lines += ["", f"Total: {len(rows)} comparisons, {total[PASS]} pass, {total[FAIL]} fail, "
              f"{total[NOT_COMPUTED]} not computed (a reference value compared with several "
              "radflow features counts once per feature)."]
    fails = [r for r in rows if r.status == FAIL]
    lines += ["", "Deviations (outside tolerance):" if fails else
              "Deviations (outside tolerance): none."]
    if fails:
        lines += ["", "| configuration | IBSI feature | code | aggregation | radflow feature | "
                  "radflow | reference ± tolerance | cause |",
                  "| --- | --- | --- | --- | --- | ---: | ---: | --- |"]
        for r in fails:
            lines.append(f"| {r.configuration} | {r.feature} | {r.ibsi_code} | "
                         f"{r.aggregation or '—'} | `{r.radflow_feature}` | {_num(r.value)} | "
                         f"{_num(r.reference)} ± {_num(r.tolerance)} | {r.reason} |")
    missing = Counter(r.reason for r in rows if r.status == NOT_COMPUTED)
    if missing:
        lines += ["", "Not computed (reference values, by reason):", ""]
        lines += [f"* {reason}: {n}" for reason, n in sorted(missing.items(),
                                                            key=lambda kv: (-kv[1], kv[0]))]
    return "\n".join(lines) + "\n"


def replace_block(text: str, phantom: str, block: str) -> str:
    """``text`` with the phantom's marked block replaced by ``block``.

    Raises
    ------
    ConfigError
        The markers are missing or not in order.
    """
    start, end = markers(phantom)
    pattern = re.compile(re.escape(start) + r"\n.*?" + re.escape(end), re.DOTALL)
    if len(pattern.findall(text)) != 1:
        raise ConfigError(f"README: expected one block between {start} and {end}")
    return pattern.sub(lambda _: f"{start}\n{block}{end}", text)


def readme_block(text: str, phantom: str) -> str:
    """The current content of the phantom's marked block (without the markers)."""
    start, end = markers(phantom)
    found = re.search(re.escape(start) + r"\n(.*?)" + re.escape(end), text, re.DOTALL)
    if not found:
        raise ConfigError(f"README: no block between {start} and {end}")
    return found.group(1)


def update_readme(path: str | Path, phantom: str, results: Sequence[Result]) -> None:
    """Write the rendered section of ``phantom`` into the README at ``path``."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    write_text(path, replace_block(text, phantom, render_section(results, phantom)))


def _group(r: Result) -> str:
    return GROUPS.get(r.aggregation_code, _OTHER)


def _num(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x:.4g}"


__all__ = ["GROUPS", "counts", "markers", "readme_block", "render_section", "replace_block",
           "summary_text", "update_readme"]
