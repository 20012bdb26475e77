"""The list of reliable features: a configurable rule applied to the agreement table.

Default rule (README, "Agreement statistics and the reliable list"): a feature is reliable when
the lower bound of the 95 % interval of its ICC reaches 0.75 ("good" reliability, Koo & Li 2016,
J Chiropr Med 15:155) for every judged source present in the agreement table: each perturbation
chain (ICC(1,1)) and the repeat scans (ICC(2,1)). Negative controls are reported in the
agreement table and judged only when ``control_max`` is set. Every feature not on the list has
a reason: which source, statistic and bound failed, or why the statistic is undefined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from radflow.errors import AgreementError
from radflow.records.agreement import RELIABLE_COLUMNS
from radflow.reliability.agreement import PRIMARY_ICC
from radflow.settings import check_choices

RuleStatistic = Literal["icc", "ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "CCC"]
RuleBound = Literal["ci_low", "value"]
RuleCombine = Literal["all", "any"]
#: Source kinds a rule may judge (controls are judged only through ``control_max``).
JUDGED_KINDS: tuple[str, ...] = ("perturbation", "retest")


@dataclass(frozen=True)
class ReliableRule:
    """Which features are reliable (config section ``reliability.rule``; build with
    :func:`radflow.settings.from_mapping`).

    Attributes
    ----------
    statistic
        ``"icc"`` (default): each source's own ICC (ICC(1,1) for perturbation chains, ICC(2,1)
        for test–retest); or one named statistic for every judged source.
    threshold
        Minimum of ``bound`` (default 0.75, "good" reliability, Koo & Li 2016).
    bound
        ``"ci_low"`` (default: the lower 95 % bound must reach the threshold) or ``"value"``.
    combine
        ``"all"`` (default): every judged source must pass; ``"any"``: one is enough.
    sources
        Source kinds judged, of :data:`JUDGED_KINDS`; those absent from the agreement table
        (e.g. no repeat scans) are skipped.
    control_max
        When set, a feature whose ICC(3,1) with any negative control reaches this value is not
        reliable (it ranks subjects the same without its texture). Default: controls are
        reported, not judged.
    """

    statistic: RuleStatistic = "icc"
    threshold: float = 0.75
    bound: RuleBound = "ci_low"
    combine: RuleCombine = "all"
    sources: tuple[str, ...] = JUDGED_KINDS
    control_max: float | None = None

    def __post_init__(self) -> None:
        check_choices(self, "reliability.rule")
        bad = [s for s in self.sources if s not in JUDGED_KINDS]
        if bad or not self.sources:
            raise AgreementError(f"reliability.rule.sources must be some of "
                                 f"{', '.join(JUDGED_KINDS)}, got {list(self.sources)}",
                                 reason="bad-rule")


def _verdict(row: pd.Series, rule: ReliableRule) -> str:
    """"" when ``row`` passes the rule, else why not."""
    what = f"{row['source']} {row['statistic']}"
    level = row[rule.bound]
    if pd.isna(level):
        return f"{what} {rule.bound} undefined: {row['note'] or 'no value'}"
    if level < rule.threshold:
        return f"{what} {rule.bound} {level:.3f} < {rule.threshold:g}"
    return ""


def reliable_features(agreement: pd.DataFrame, rule: ReliableRule | None = None) -> pd.DataFrame:
    """Apply ``rule`` to an agreement table (:func:`radflow.reliability.agreement.agreement_table`).

    Returns
    -------
    pandas.DataFrame
        :data:`radflow.records.agreement.RELIABLE_COLUMNS`: every feature of ``agreement``
        (its order), ``reliable`` (bool) and ``reason`` (why not; ``""`` when reliable).

    Raises
    ------
    AgreementError
        Reason ``bad-rule``: the table has no source the rule judges, or the rule's statistic
        is not computed for a judged source (e.g. CCC for perturbation chains).
    """
    rule = rule or ReliableRule()
    kinds = agreement["source"].map(lambda s: s.split(":", 1)[0])
    judged_groups = list(dict.fromkeys(agreement.loc[kinds.isin(rule.sources), "source"]))
    if not judged_groups:
        raise AgreementError(f"the reliability rule judges {', '.join(rule.sources)} sources, "
                             "but the agreement table has none", reason="bad-rule")
    features = list(dict.fromkeys(agreement["feature"]))
    reasons: dict[str, list[str]] = {f: [] for f in features}
    passes: dict[str, int] = dict.fromkeys(features, 0)
    for group in judged_groups:
        kind = group.split(":", 1)[0]
        statistic = PRIMARY_ICC[kind] if rule.statistic == "icc" else rule.statistic
        rows = agreement[(agreement["source"] == group) & (agreement["statistic"] == statistic)]
        if rows.empty:
            raise AgreementError(f"the reliability rule's statistic {statistic} is not computed "
                                 f"for source {group}", reason="bad-rule")
        verdicts = dict(zip(rows["feature"], rows.apply(_verdict, axis=1, rule=rule),
                            strict=True))
        for f in features:
            verdict = verdicts.get(f, f"{group} {statistic} not measured")
            if verdict:
                reasons[f].append(verdict)
            else:
                passes[f] += 1
    n_judged = len(judged_groups)
    reliable = {f: passes[f] == n_judged if rule.combine == "all" else passes[f] > 0
                for f in features}
    if rule.control_max is not None:
        _apply_controls(agreement, kinds, rule.control_max, reliable, reasons)
    return pd.DataFrame({"feature": features, "reliable": [reliable[f] for f in features],
                         "reason": ["" if reliable[f] else "; ".join(reasons[f])
                                    for f in features]})[list(RELIABLE_COLUMNS)]


def _apply_controls(agreement: pd.DataFrame, kinds: pd.Series, control_max: float,
                    reliable: dict[str, bool], reasons: dict[str, list[str]]) -> None:
    """Mark features agreeing with a negative control (ICC(3,1) >= ``control_max``)."""
    rows = agreement[(kinds == "control") & (agreement["statistic"] == "ICC(3,1)")
                     & (agreement["value"] >= control_max)]
    for f, source, value in zip(rows["feature"], rows["source"], rows["value"], strict=True):
        if reliable[f]:
            reasons[f].clear()
        reliable[f] = False
        reasons[f].append(f"{source} ICC(3,1) {value:.3f} >= control_max {control_max:g}")


def reliable_list(table: pd.DataFrame) -> list[str]:
    """The reliable features of a :func:`reliable_features` table, in order."""
    return [str(f) for f in table.loc[table["reliable"].astype(bool), "feature"]]


__all__ = ["JUDGED_KINDS", "ReliableRule", "reliable_features", "reliable_list"]
