"""Stage ``protocol``: acquisition-protocol QC gates (README, "Protocol QC gates").

A cohort's config may name a protocol profile (``protocol.profile``; :mod:`.profile`). The rule
``protocol`` then judges, from the crawl's tables and the converted images:

* every image series the crawl found ``ok`` against the profile's series rules (header values of
  ``crawl/acquisition.tsv``, derived values, and the body's width against the field of view
  measured on the converted image, :mod:`.body`);
* every study of such a series against the study rules (some series of the study, localizers
  left out, meets every condition: a thin sharp-kernel series, a coronal reconstruction, a dose
  report);

and writes ``qc/protocol.tsv`` (series/study x rule: value, limit, pass / fail / unknown) and
``qc/protocol_pairs.tsv`` (per planned pair: the verdict over its image series and its study;
:mod:`radflow.records.protocol`), which the merge joins to the dataset. A rule that headers and
image cannot decide is ``unknown``, never ``pass``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from radflow.protocol.attributes import IMAGE_ATTRIBUTES, series_values
from radflow.protocol.body import BodyExtent
from radflow.protocol.profile import Profile, load_profile, resolve_profile
from radflow.protocol.rules import (
    FAIL,
    UNKNOWN,
    Outcome,
    evaluate_series,
    evaluate_study,
    verdict,
)
from radflow.records import Status, read_sidecar, read_table
from radflow.records.acquisition import read_acquisition_table
from radflow.records.protocol import (
    PROTOCOL_COLUMNS,
    PROTOCOL_PAIR_COLUMNS,
    write_protocol_pairs,
    write_protocol_table,
)
from radflow.records.tables import read_series_table
from radflow.settings import ProtocolSettings

logger = logging.getLogger(__name__)

LOCALIZER = str(Status.excluded("localizer"))


def converted_images(sidecars: Sequence[str]) -> dict[str, str]:
    """``series_key`` -> converted volume of every image sidecar with status ``ok``."""
    images = {}
    for path in sidecars:
        sidecar = read_sidecar(path)
        if sidecar.rois is None and sidecar.nifti and Status.parse(sidecar.status).is_ok:
            images[sidecar.series_key] = str(Path(path).with_name(sidecar.nifti))
    return images


def judge_series(profile: Profile, series: pd.DataFrame, acquisition: pd.DataFrame,
                 images: Mapping[str, str]) -> tuple[list[dict[str, Any]], dict[str, list[str]],
                                                     dict[str, list[str]]]:
    """Judge every ``ok`` image series and the studies they belong to.

    Returns
    -------
    rows : list of dict
        The rows of ``qc/protocol.tsv``.
    failed, unknown : dict
        ``series_key`` (and ``study_key``) -> the ids of its failed / unknown rules.
    """
    acq = {r["series_key"]: r for r in acquisition.to_dict("records")}
    values = {r["series_key"]: series_values(r, acq.get(r["series_key"]), profile)
              for r in series.to_dict("records")}
    needs_image = bool(profile.attributes & IMAGE_ATTRIBUTES)
    rows: list[dict[str, Any]] = []
    failed: dict[str, list[str]] = {}
    unknown: dict[str, list[str]] = {}

    def record(outcomes: list[Outcome], key: str, base: dict[str, str]) -> None:
        failed[key] = [o.rule for o in outcomes if o.result == FAIL]
        unknown[key] = [o.rule for o in outcomes if o.result == UNKNOWN]
        rows.extend({**base, **dataclasses.asdict(o)} for o in outcomes)

    judged = series[(series["role"] == "image") & (series["status"] == "ok")]
    for row in judged.to_dict("records"):
        key = row["series_key"]
        notes: dict[str, str] = {}
        if needs_image:
            extent = _body(values[key], images.get(key))
            values[key].update(body_width_fraction=extent.width_fraction,
                               body_in_fov=extent.in_fov)
            notes = dict.fromkeys(IMAGE_ATTRIBUTES, extent.note)
        record(evaluate_series(profile, values[key], notes), key,
               {"protocol": profile.name, "level": "series", "case_id": row["case_id"],
                "study_key": row["study_key"], "series_key": key})
    dicom = series[(series["source"] == "dicom") & (series["study_key"] != "")
                   & (series["status"] != LOCALIZER)]
    members = dicom.groupby("study_key", sort=True)["series_key"].apply(list).to_dict()
    for study in sorted(set(judged["study_key"]) - {""}):
        keys = sorted(members.get(study, []))
        case = judged.loc[judged["study_key"] == study, "case_id"].iloc[0]
        record(evaluate_study(profile, [(k, values[k]) for k in keys]), study,
               {"protocol": profile.name, "level": "study", "case_id": case,
                "study_key": study, "series_key": ""})
    return rows, failed, unknown


def _body(values: Mapping[str, Any], image: str | None) -> BodyExtent:
    if image is None:
        return BodyExtent(None, None, "the series was not converted (convert.scope)")
    if values.get("Modality") != "CT":
        return BodyExtent(None, None, "not a CT series (the body mask needs Hounsfield units)")
    from radflow.protocol.body import body_extent_of_file  # scipy: only when a rule needs it

    return body_extent_of_file(image)


def judge_pairs(profile: Profile, pair_plan: pd.DataFrame, series: pd.DataFrame,
                failed: Mapping[str, list[str]], unknown: Mapping[str, list[str]],
                exclude: bool) -> pd.DataFrame:
    """One row per planned pair: the verdict over its image series' and its study's rules."""
    study_of = dict(zip(series["series_key"], series["study_key"], strict=True))
    study_rules = [r.id for r in profile.study_rules]
    rows = []
    for pair in pair_plan.to_dict("records"):
        image = pair["image_key"]
        if image not in failed:  # not an ok image series: nothing was judged
            bad, open_ = [], ["image-not-judged"]
        else:
            study = study_of.get(image, "")
            bad = failed[image] + failed.get(study, [])
            open_ = unknown[image] + unknown.get(study, study_rules)
        status = verdict([FAIL] * bool(bad) + [UNKNOWN] * bool(open_))
        excluded = exclude and status == FAIL
        rows.append({"pair_id": pair["pair_id"], "case_id": pair["case_id"],
                     "image_key": image, "protocol": profile.name, "protocol_status": status,
                     "protocol_failed": ",".join(bad), "protocol_unknown": ",".join(open_),
                     "status": str(Status.excluded("protocol-failed") if excluded
                                   else Status.ok())})
    return pd.DataFrame(rows, columns=list(PROTOCOL_PAIR_COLUMNS))


def run_protocol(*, profile: str, series_tsv: str, acquisition_tsv: str, pair_plan_tsv: str,
                 sidecars: Sequence[str], settings: ProtocolSettings, strict: bool,
                 table_tsv: str, pairs_tsv: str) -> None:
    """Entry point of ``scripts/protocol.py``: judge the cohort, write both tables.

    Parameters
    ----------
    profile
        The profile file (the rule's input; :func:`.profile.resolve_profile` found it).
    sidecars
        The convert sidecars of the plan (converted images for the body-width rules).
    settings, strict
        ``on_fail: exclude`` or ``strict`` turn a failed pair into ``excluded:protocol-failed``.
    """
    checked = load_profile(profile)
    series = read_series_table(series_tsv, ["case_id", "series_key", "study_key", "source",
                                            "role", "modality", "status", "spacing_z",
                                            "series_description", "manufacturer"])
    acquisition = read_acquisition_table(acquisition_tsv)
    images = converted_images(sidecars)
    rows, failed, unknown = judge_series(checked, series, acquisition, images)
    table = pd.DataFrame(rows, columns=list(PROTOCOL_COLUMNS))
    pairs = judge_pairs(checked, read_table(pair_plan_tsv), series, failed, unknown,
                        exclude=settings.on_fail == "exclude" or strict)
    write_protocol_table(table_tsv, table)
    write_protocol_pairs(pairs_tsv, pairs)
    _log(checked, table, pairs)


def _log(profile: Profile, table: pd.DataFrame, pairs: pd.DataFrame) -> None:
    judged = table.drop_duplicates(["level", "study_key", "series_key"])
    logger.info("protocol %s (%s): %d series, %d studies judged", profile.name, profile.file,
                int((judged["level"] == "series").sum()), int((judged["level"] == "study").sum()))
    fails = Counter(table.loc[table["result"] == FAIL, "rule"])
    for rule, n in sorted(fails.items()):
        logger.info("protocol: rule %s failed for %d series/studies", rule, n)
    for status, n in sorted(Counter(pairs["protocol_status"]).items()):
        logger.info("protocol: %d pair(s) %s", n, status)
    excluded = int((pairs["status"] != str(Status.ok())).sum())
    if excluded:
        logger.warning("protocol: %d pair(s) excluded:protocol-failed (protocol.on_fail: "
                       "exclude or strict: true)", excluded)


__all__ = ["converted_images", "judge_pairs", "judge_series", "resolve_profile",
           "run_protocol"]
