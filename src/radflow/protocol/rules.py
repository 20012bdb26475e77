"""Judging rules: one condition against one value, a series against the series rules, a study
against the study rules, and the verdict of a pair.

Three results: ``pass``, ``fail`` and ``unknown``. A condition on an unknown value (``None``)
is ``unknown``, never ``pass``; on a value known to be missing
(:data:`radflow.protocol.attributes.ABSENT`) it fails. A study rule passes when some series of
the study meets every condition, fails when every series breaks at least one, and is
``unknown`` otherwise. An undecidable rule is always ``unknown``. A verdict over several
results is ``fail`` when any failed, else ``unknown`` when any is unknown, else ``pass``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from radflow.protocol.attributes import ABSENT, ATTRIBUTES, BOOL, NUMBER
from radflow.protocol.profile import Condition, Profile, Rule

PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"
MODALITY_RULE = "modality"
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}
_MAX_LISTED = 3


@dataclass(frozen=True)
class Outcome:
    """One row of ``qc/protocol.tsv`` (without its keys): a rule's result and why."""

    rule: str
    level: str
    attribute: str
    value: str
    limit: str
    result: str
    note: str = ""


def value_text(value: Any) -> str:
    """A value as the protocol table shows it (``""`` when unknown)."""
    if value is None:
        return ""
    if value is ABSENT:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def check(condition: Condition, value: Any) -> str:
    """``pass`` / ``fail`` / ``unknown`` of ``condition`` on ``value`` (see module docstring)."""
    if value is None:
        return UNKNOWN
    if value is ABSENT:
        return FAIL
    kind = ATTRIBUTES[condition.attribute].kind
    if kind == NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return UNKNOWN
        have: Any = float(value)
    elif kind == BOOL:
        if not isinstance(value, bool):
            return UNKNOWN
        have = value
    else:
        have = str(value).casefold()
    limit = condition.limit
    want = (tuple(_norm(v) for v in limit) if isinstance(limit, tuple) else _norm(limit))
    if condition.op == "between":
        ok = want[0] <= have <= want[1]
    elif condition.op == "in":
        ok = have in want
    elif condition.op == "not in":
        ok = have not in want
    else:
        ok = _COMPARE[condition.op](have, want)
    return PASS if ok else FAIL


def _norm(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def verdict(results: Iterable[str]) -> str:
    """``fail`` if any failed, else ``unknown`` if any is unknown, else ``pass``."""
    seen = set(results)
    return FAIL if FAIL in seen else (UNKNOWN if UNKNOWN in seen else PASS)


def modality_rule(profile: Profile) -> Rule:
    """The built-in first series rule: the series' modality is one the profile is for."""
    return Rule(MODALITY_RULE, "series", f"a {'/'.join(profile.modalities)} series",
                "the profile's modality key",
                (Condition("Modality", "in", tuple(profile.modalities)),))


def evaluate_series(profile: Profile, values: Mapping[str, Any],
                    notes: Mapping[str, str] | None = None) -> list[Outcome]:
    """The series rules on one series' ``values`` (:func:`radflow.protocol.attributes.
    series_values`, with the image attributes filled in); ``notes`` explain unknown values per
    attribute. A series of another modality gets only the failed ``modality`` rule."""
    notes = notes or {}
    outcomes = [_series_outcome(modality_rule(profile), values, notes)]
    if outcomes[0].result == FAIL:
        return outcomes
    return outcomes + [_series_outcome(r, values, notes) for r in profile.series_rules]


def _series_outcome(rule: Rule, values: Mapping[str, Any], notes: Mapping[str, str]) -> Outcome:
    if rule.undecidable:
        return Outcome(rule.id, "series", "", "", "", UNKNOWN, rule.undecidable)
    (cond,) = rule.conditions
    value = values.get(cond.attribute)
    result = check(cond, value)
    note = ((notes.get(cond.attribute, "") or f"{cond.attribute} unknown")
            if result == UNKNOWN else "")
    return Outcome(rule.id, "series", cond.attribute, value_text(value), cond.limit_text(),
                   result, note)


def evaluate_study(profile: Profile,
                   candidates: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Outcome]:
    """The study rules on the series of one study: ``(series_key, values)`` per series (the
    localizers left out)."""
    return [_study_outcome(rule, candidates) for rule in profile.study_rules]


def _study_outcome(rule: Rule, candidates: Sequence[tuple[str, Mapping[str, Any]]]) -> Outcome:
    what = "any series"
    if rule.undecidable:
        return Outcome(rule.id, "study", "", "", "", UNKNOWN, rule.undecidable)
    limit = "; ".join(f"{c.attribute} {c.limit_text()}" for c in rule.conditions)
    undecided: list[str] = []
    broken: list[str] = []
    for key, values in candidates:
        results = [check(c, values.get(c.attribute)) for c in rule.conditions]
        if verdict(results) == PASS:
            return Outcome(rule.id, "study", what, key, limit, PASS)
        if FAIL in results:
            cond = rule.conditions[results.index(FAIL)]
            broken.append(f"{key} {cond.attribute} "
                          f"{value_text(values.get(cond.attribute)) or '?'}")
        else:
            cond = rule.conditions[results.index(UNKNOWN)]
            undecided.append(f"{key} {cond.attribute} unknown")
    if undecided:
        return Outcome(rule.id, "study", what, "", limit, UNKNOWN,
                       f"{len(undecided)} series undecided: {_listed(undecided)}")
    if not candidates:
        return Outcome(rule.id, "study", what, "", limit, FAIL, "no series in the study")
    return Outcome(rule.id, "study", what, "", limit, FAIL,
                   f"none of {len(candidates)} series meets every condition: "
                   f"{_listed(broken)}")


def _listed(items: Sequence[str]) -> str:
    more = len(items) - _MAX_LISTED
    return "; ".join(items[:_MAX_LISTED]) + (f"; {more} more" if more > 0 else "")


__all__ = ["FAIL", "MODALITY_RULE", "PASS", "UNKNOWN", "Outcome", "check", "evaluate_series",
           "evaluate_study", "modality_rule", "value_text", "verdict"]
