"""ROI name rules: which ROIs of SEG/RTSTRUCT objects are paired, and under which name.

Each source name (ROIName of an RTSTRUCT, SegmentLabel of a SEG) is first cleaned like all free
text (:func:`radflow.text.clean_text`: one printable line, <= 64 characters). It never goes into a
path. Then, with the ``rois`` settings (:class:`radflow.settings.RoiSettings`), matched
case-insensitively against **whole** names (``re.fullmatch``):

1. ``exclude``: a name matching any expression is excluded (``excluded:roi-excluded``);
2. ``include``: when the list is not empty, a name matching none is excluded
   (``excluded:roi-not-included``);
3. ``map``: the first entry, in file order, whose expression matches gives the canonical name
   (``match = mapped``);
4. otherwise the name is unmatched (``match = unmapped``): it is paired under its cleaned source
   name (``unmapped: keep``) or not at all (``unmapped: drop``, ``excluded:roi-unmapped``).

``pair/roi_names.tsv`` counts every source name with its decision so users can extend the map.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from radflow.errors import ConfigError
from radflow.records.status import Status
from radflow.settings import RoiSettings
from radflow.text import clean_text

#: Columns of ``crawl/rois.tsv`` (one row per ROI or segment of every DICOM mask object).
ROI_COLUMNS = ["case_id", "mask_key", "label", "roi_source", "roi", "match", "status"]
#: Columns of ``pair/roi_names.tsv``.
NAME_COLUMNS = ["roi_source", "match", "roi", "count", "n_cases"]


@dataclass(frozen=True)
class RoiDecision:
    """What the rules make of one source name.

    Attributes
    ----------
    source_name
        The cleaned source name.
    roi
        The name the ROI is paired under ("" when it is not paired).
    match
        ``mapped``, ``unmapped`` or ``excluded``.
    status
        ``ok`` or ``excluded:roi-excluded`` / ``excluded:roi-not-included`` /
        ``excluded:roi-unmapped``.
    """

    source_name: str
    roi: str
    match: str
    status: str


@functools.lru_cache(maxsize=256)
def _compile(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ConfigError(f"rois.{where}: {pattern!r} is not a valid regular expression "
                          f"({exc})") from None


def _matches(name: str, patterns: Sequence[str], where: str) -> bool:
    return any(_compile(p, where).fullmatch(name) for p in patterns)


def check_rules(settings: RoiSettings) -> None:
    """Compile every expression once so that a bad one fails before any data is read.

    Raises
    ------
    ConfigError
        Naming the key and the expression.
    """
    for p in settings.include:
        _compile(p, "include")
    for p in settings.exclude:
        _compile(p, "exclude")
    for canonical, patterns in settings.map:
        if not clean_text(canonical):
            raise ConfigError("rois.map: a canonical name is empty")
        for p in patterns:
            _compile(p, f"map.{canonical}")


def decide(source_name: str, settings: RoiSettings) -> RoiDecision:
    """Apply the rules (module notes) to one source name."""
    name = clean_text(source_name)
    if _matches(name, settings.exclude, "exclude"):
        return RoiDecision(name, "", "excluded", str(Status.excluded("roi-excluded")))
    if settings.include and not _matches(name, settings.include, "include"):
        return RoiDecision(name, "", "excluded", str(Status.excluded("roi-not-included")))
    for canonical, patterns in settings.map:
        if _matches(name, patterns, f"map.{canonical}"):
            return RoiDecision(name, clean_text(canonical), "mapped", "ok")
    if settings.unmapped == "drop":
        return RoiDecision(name, "", "unmapped", str(Status.excluded("roi-unmapped")))
    return RoiDecision(name, name, "unmapped", "ok")


def name_report(rois: pd.DataFrame) -> pd.DataFrame:
    """Count source names (``pair/roi_names.tsv``).

    Parameters
    ----------
    rois
        ``crawl/rois.tsv`` (columns :data:`ROI_COLUMNS`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`NAME_COLUMNS`: one row per source name and decision, ``count`` = ROIs
        with that name, ``n_cases`` = patients; unmatched (``unmapped``) names first, then by
        decreasing count.
    """
    if rois.empty:
        return pd.DataFrame(columns=NAME_COLUMNS)
    grouped = (rois.groupby(["roi_source", "match", "roi"], dropna=False)
               .agg(count=("mask_key", "size"), n_cases=("case_id", "nunique"))
               .reset_index())
    grouped["_unmapped"] = grouped["match"] != "unmapped"
    grouped = grouped.sort_values(["_unmapped", "count", "roi_source"],
                                  ascending=[True, False, True], kind="stable")
    return grouped[NAME_COLUMNS].reset_index(drop=True)


__all__ = ["NAME_COLUMNS", "ROI_COLUMNS", "RoiDecision", "check_rules", "decide", "name_report"]
