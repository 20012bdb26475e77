"""Stage ``reliability``: the jobs and the aggregate (README, "Reliability: perturbations,
negative controls, test–retest").

One job (:func:`run_reliability_one`, rule ``reliability_one``) is one extraction unit (an image
and all its ROIs) × one perturbation chain, or × the negative controls (the pseudo-chain
:data:`~radflow.reliability.settings.CONTROLS_JOB`). It reads the unit's pair records, reads each
volume once, makes the copies of each pair one at a time (:func:`~radflow.reliability.perturb.
perturbed_copy`, :func:`~radflow.reliability.controls.negative_controls`) and extracts each with
the extract stage's extraction (:class:`radflow.extract.in_memory.InMemoryExtractor`: the unit's
params set, normalisation, filter image types and feature families). A copy that cannot be made
or extracted is a ``failed:<reason>`` copy in the job's status record, never a failed job.

The aggregate (:func:`run_reliability`, rule ``reliability``) joins the original features
(``merge/features.parquet``), the copies and the repeat scans (the cohort sheet's
``timepoint``), and writes the feature table of the copies, the agreement table and the list of
reliable features.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import SimpleITK as sitk

from radflow.errors import AgreementError, ExtractionError, InputFileError, PairingError
from radflow.extract import PAIR_KEYS, FeatureFamilies
from radflow.extract.in_memory import InMemoryExtractor, PairVolumes
from radflow.extract.table import COLUMNS, Row, frame
from radflow.io.atomic import atomic_path
from radflow.io.nifti import voxel_hash
from radflow.params_sets import NO_PARAMS, ParamsChoice
from radflow.radiomics_adapter import ImageTypeSpec
from radflow.records import Status, read_pair_json, read_table
from radflow.records.agreement import write_agreement, write_reliable_features
from radflow.records.reliability import (
    CopyStatus,
    ReliabilityStatus,
    copy_table,
    read_reliability_status,
    write_copy_table,
    write_reliability_status,
)
from radflow.reliability.agreement import AgreementDesign, agreement_table, label_retest
from radflow.reliability.controls import NegativeControlSettings, negative_controls
from radflow.reliability.masks import roi_array
from radflow.reliability.perturb import noise_level, perturbed_copy
from radflow.reliability.reliable import JUDGED_KINDS, reliable_features
from radflow.reliability.settings import CONTROLS_JOB, ReliabilitySettings

logger = logging.getLogger(__name__)

#: Columns of the copies' feature tables: the extract stage's (:data:`COLUMNS`) and ``source``.
FEATURE_TABLE_COLUMNS: tuple[str, ...] = (*COLUMNS, "source")
#: Who a subject is across repeat scans: the subject, the ROI and the parameter set (so that a
#: CT and a PET of one visit are not taken for two scans of one thing).
RETEST_SUBJECT: tuple[str, ...] = ("case_id", "roi", "params_set")


@dataclass(frozen=True)
class Copy:
    """One copy to extract: its ``source`` label, volumes and drawn parameters."""

    source: str
    image: sitk.Image
    mask: sitk.Image
    parameters: Mapping[str, float]


def sources(settings: ReliabilitySettings, job: str) -> list[str]:
    """The ``source`` labels of one job's copies of a pair, in the order made."""
    if job == CONTROLS_JOB:
        controls = settings.negative_controls
        if controls is None:
            return []
        return [f"control:{k}:{r}" for k in controls.kinds for r in controls.regions]
    chain = settings.chain(job)
    return [f"perturbation:{chain.name}:{i}" for i in range(chain.copies)]


def _copies(image: sitk.Image, mask: sitk.Image, pair_id: str, label: int,
            settings: ReliabilitySettings, job: str
            ) -> Iterator[tuple[str, Copy | PairingError]]:
    """``(source, copy)`` of one pair, one at a time; a copy that cannot be made is its
    :class:`PairingError` (the others are still made)."""
    if job == CONTROLS_JOB:
        controls = settings.negative_controls
        for kind in controls.kinds if controls is not None else ():
            for region in controls.regions:  # type: ignore[union-attr]
                source = f"control:{kind}:{region}"
                # one control per generator: a failing one (empty region) stops only itself;
                # each control's seed depends on its own name only
                one = NegativeControlSettings(kinds=(kind,), regions=(region,))
                try:
                    made = next(negative_controls(image, mask, one, pair_id=pair_id,
                                                  label=label))
                except PairingError as exc:
                    yield source, exc
                    continue
                yield source, Copy(source, made.image, mask, {})
                del made  # one copy in memory: the next is made after this one is dropped
        return
    chain = settings.chain(job)
    try:  # as perturbations(): the ROI checked, the noise SD estimated once per pair
        roi_array(mask, label, image)
        sigma = noise_level(image, chain, settings.perturbation)
    except PairingError as exc:
        for index in range(chain.copies):
            yield f"perturbation:{chain.name}:{index}", exc
        return
    for index in range(chain.copies):
        source = f"perturbation:{chain.name}:{index}"
        try:
            copy = perturbed_copy(image, mask, chain, settings.perturbation, pair_id=pair_id,
                                  index=index, label=label, sigma=sigma)
        except PairingError as exc:
            yield source, exc
            continue
        yield source, Copy(source, copy.image, copy.mask, dict(copy.parameters))
        del copy  # one copy in memory: the next is made after this one is dropped


def _pair_copies(pair: Mapping[str, Any], extractor: InMemoryExtractor | None,
                 volumes: PairVolumes, settings: ReliabilitySettings, job: str,
                 rows: list[Row]) -> list[CopyStatus]:
    """Make and extract one pair's copies (rows appended to ``rows``); their statuses."""
    pair_id = str(pair["pair_id"])
    expected = sources(settings, job)

    def every(status: Status, message: str) -> list[CopyStatus]:
        return [CopyStatus(pair_id, s, str(status), status.reason or None, message)
                for s in expected]

    pair_status = str(pair["status"])
    if pair_status != "ok":
        return every(Status.skipped(pair_status), f"pair status is {pair_status}")
    if extractor is None:
        return every(Status.excluded(NO_PARAMS), "the image's modality has no parameter set")
    try:
        image, mask = volumes.get(pair)
    except (ExtractionError, InputFileError) as exc:
        logger.warning("pair %s: %s", pair_id, exc)
        return every(Status.of_reason(exc.reason), str(exc))
    label = int(pair["label"])
    statuses = []
    start = time.perf_counter()
    for source, made in _copies(image, mask, pair_id, label, settings, job):
        if isinstance(made, PairingError):
            statuses.append(_failed(pair_id, source, made, start))
        else:
            try:
                copy_rows = extractor.rows(
                    made.image, made.mask, pair, image_hash=voxel_hash(made.image),
                    mask_hash=(pair["mask_hash"] if made.mask is mask else voxel_hash(made.mask)),
                    image_name=f"{pair['image']}#{source}")
            except ExtractionError as exc:
                statuses.append(_failed(pair_id, source, exc, start))
            else:
                rows.extend((*row, source) for row in copy_rows)
                statuses.append(CopyStatus(pair_id, source, "ok", n_features=len(copy_rows),
                                           seconds=round(time.perf_counter() - start, 3),
                                           parameters=dict(made.parameters)))
                logger.info("pair %s, %s: %d features", pair_id, source, len(copy_rows))
            del made
        start = time.perf_counter()
    return statuses


def _failed(pair_id: str, source: str, exc: PairingError | ExtractionError,
            start: float) -> CopyStatus:
    logger.warning("pair %s, %s: failed (%s): %s", pair_id, source, exc.reason, exc)
    return CopyStatus(pair_id, source, str(Status.of_reason(exc.reason)), exc.reason, str(exc),
                      seconds=round(time.perf_counter() - start, 3))


def copy_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """The copies' long feature table (:data:`FEATURE_TABLE_COLUMNS`) of ``rows``."""
    table = frame([row[:-1] for row in rows])
    table["source"] = pd.Series([row[-1] for row in rows], dtype="str")
    return table


def write_features(path: str | Path, table: pd.DataFrame) -> None:
    """Write a copies' feature table as Parquet, atomically (no index)."""
    with atomic_path(path, suffix=".parquet") as tmp:
        table.to_parquet(tmp, index=False)


def run_reliability_one(pair_jsons: Sequence[str | Path], params_path: str | Path | None,
                        out_parquet: str | Path, out_status: str | Path, *, case_id: str,
                        unit: str, job: str, settings: ReliabilitySettings,
                        extra_image_types: Sequence[ImageTypeSpec] = (),
                        choice: ParamsChoice | None = None,
                        families: FeatureFamilies | None = None,
                        threads: int | None = None) -> None:
    """One ``reliability_one`` job: the copies of every pair of one unit for one chain (or the
    negative controls), extracted as the extract stage extracts the original.

    Parameters
    ----------
    pair_jsons
        The unit's pair records.
    params_path, choice, extra_image_types, families
        The unit's extraction, as the extract stage's (:func:`radflow.extract.run_extract`);
        ``params_path`` None: the modality has no parameter set (every copy
        ``excluded:no-params-for-modality``).
    out_parquet, out_status
        The copies' feature table (:data:`FEATURE_TABLE_COLUMNS`) and the job's status record
        (:class:`radflow.records.reliability.ReliabilityStatus`).
    case_id, unit
        The unit's case and key (for the record).
    job
        A chain name of ``settings`` or :data:`CONTROLS_JOB`.
    threads
        SimpleITK's worker threads (the rule's ``threads:``).

    Raises
    ------
    InputFileError
        A pair record is missing or invalid.
    ConfigError
        Invalid params file, custom image types, or a job that is no chain of ``settings``.
    """
    start = time.perf_counter()
    if threads:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(threads))
    sources(settings, job)  # an unknown chain is a ConfigError before any work
    pairs = [_read_pair(Path(p)) for p in pair_jsons]
    extractor = (InMemoryExtractor(params_path, extra_image_types=extra_image_types,
                                   choice=choice, families=families) if params_path else None)
    volumes = PairVolumes()
    rows: list[Row] = []
    statuses: list[CopyStatus] = []
    for pair in pairs:
        statuses += _pair_copies(pair, extractor, volumes, settings, job, rows)
    write_features(out_parquet, copy_frame(rows))
    write_reliability_status(out_status, ReliabilityStatus(
        case_id=case_id, unit=unit, job=job, n_pairs=len(pairs),
        seconds=round(time.perf_counter() - start, 3), copies=statuses))
    n_ok = sum(s.status == "ok" for s in statuses)
    logger.info("unit %s, %s: %d of %d copies extracted, %d feature values", unit, job, n_ok,
                len(statuses), len(rows))


def _read_pair(path: Path) -> dict[str, Any]:
    try:
        pair = read_pair_json(path)
    except FileNotFoundError as exc:
        raise InputFileError(f"{path.name}: cannot read pair record ({exc})",
                             reason="bad-pair-record") from exc
    missing = [k for k in PAIR_KEYS if k not in pair]
    if missing:
        raise InputFileError(f"pair record {pair.get('pair_id', '?')}: missing key(s) "
                             f"{', '.join(missing)}", reason="bad-pair-record")
    return pair


# --- the aggregate -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReliabilityOutputs:
    """Destinations of the ``reliability`` rule."""

    features: str
    agreement: str
    reliable: str
    copies: str


def timepoints(pair_plan_tsv: str | Path, sheet: str | Path) -> dict[str, str]:
    """``pair_id -> timepoint`` of the pairs planned from cohort-sheet rows with a
    ``timepoint`` (through the pair plan's ``sheet_row``); empty without such rows."""
    from radflow.crawl.sheet import read_sheet

    by_row = {int(r["row"]): str(r["timepoint"]) for r in read_sheet(Path(sheet))
              if str(r.get("timepoint", "")).strip()}
    if not by_row:
        return {}
    plan = read_table(pair_plan_tsv)
    return {pid: by_row[int(row)] for pid, row in zip(plan["pair_id"], plan["sheet_row"],
                                                      strict=True)
            if row.strip() and int(row) in by_row}


def _ordered_copies(tables: list[pd.DataFrame], order: Sequence[str]) -> pd.DataFrame:
    """The copies' tables in one deterministic order: case, pair, source (the configured
    order), then extraction order."""
    tables = [t for t in tables if len(t)]
    if not tables:
        return copy_frame([])
    table = pd.concat(tables, ignore_index=True)
    rank = {s: i for i, s in enumerate(order)}
    table["_source"] = table["source"].map(rank).fillna(len(rank))
    table["_row"] = table.groupby(["pair_id", "source"]).cumcount()
    table = table.sort_values(["case_id", "pair_id", "_source", "_row"], kind="stable")
    return table.drop(columns=["_source", "_row"]).reset_index(drop=True)


def _source_order(settings: ReliabilitySettings) -> list[str]:
    return [s for job in settings.jobs for s in sources(settings, job)]


def agreement_input(original: pd.DataFrame, copies: pd.DataFrame,
                    timepoint_of: Mapping[str, str]) -> pd.DataFrame:
    """The agreement table's input: the original rows, the repeat scans (original rows of
    pairs with a timepoint, when there are two or more timepoints) and the copies."""
    columns = ["case_id", "pair_id", "roi", "params_set", "image_type", "feature_class",
               "feature", "value"]
    parts = [original[columns].assign(source="original")]
    with_tp = original.assign(timepoint=original["pair_id"].map(timepoint_of))
    if with_tp["timepoint"].nunique() >= 2:
        parts.append(label_retest(with_tp[[*columns, "timepoint"]]).drop(columns="timepoint"))
    parts.append(copies[[*columns, "source"]])
    return pd.concat(parts, ignore_index=True)


def run_reliability(*, features_parquet: str, copy_files: Sequence[str],
                    status_files: Sequence[str], pair_plan_tsv: str, sheet: str,
                    settings: ReliabilitySettings, out: ReliabilityOutputs) -> None:
    """The ``reliability`` rule: the copies' table, the agreement table, the reliable list.

    Parameters
    ----------
    features_parquet
        ``merge/features.parquet`` (the ``original`` rows).
    copy_files, status_files
        Every ``reliability_one`` job's feature table and status record.
    pair_plan_tsv, sheet
        The crawl's ``pair_plan.tsv`` and the cohort sheet (``""``: none; then no repeat scans).
    settings
        The ``reliability`` section.
    out
        Destinations.

    Raises
    ------
    AgreementError
        Nothing to judge (no copy extracted and no repeat scans), or a subject with two values
        of one feature from one rater (e.g. two pairs of one case, ROI and parameter set at one
        timepoint).
    """
    original = pd.read_parquet(features_parquet)
    copies = _ordered_copies([pd.read_parquet(f) for f in copy_files], _source_order(settings))
    write_features(out.features, copies)
    statuses = [read_reliability_status(f) for f in status_files]
    write_copy_table(out.copies, copy_table(statuses))
    timepoint_of = timepoints(pair_plan_tsv, sheet) if settings.retest and sheet else {}
    table = agreement_input(original, copies, timepoint_of)
    agreement = agreement_table(table, AgreementDesign(retest_subject_columns=RETEST_SUBJECT,
                                                       confidence=settings.confidence))
    judged = agreement["source"].str.split(":").str[0].isin(settings.rule.sources)
    if not judged.any():
        raise AgreementError(
            f"reliability: nothing to judge: {len(copies)} copy feature values, "
            f"{len(set(timepoint_of.values()))} timepoint(s) in the cohort sheet; the rule "
            f"judges {', '.join(settings.rule.sources)} (of {', '.join(JUDGED_KINDS)}); see "
            "reliability/copies.tsv for failed copies", reason="bad-rule")
    write_agreement(out.agreement, agreement)
    reliable = reliable_features(agreement, settings.rule)
    write_reliable_features(out.reliable, reliable)
    n_failed = int(sum(c.status != "ok" for s in statuses for c in s.copies))
    logger.info("reliability: %d features, %d reliable; %d copies not extracted",
                len(reliable), int(reliable["reliable"].sum()), n_failed)


__all__ = ["FEATURE_TABLE_COLUMNS", "RETEST_SUBJECT", "ReliabilityOutputs", "agreement_input",
           "copy_frame", "run_reliability", "run_reliability_one", "sources", "timepoints"]
