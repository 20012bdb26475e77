"""Clinical tables with several timepoints per subject, joined on (subject, timepoint).

When the clinical data dictionary declares a column of ``type: timepoint`` (README, "Clinical
data dictionary"), the clinical table has one row per subject and timepoint, and each pair of
the dataset takes the row of its subject at its own timepoint: the ``timepoint`` cell of the
cohort-sheet row it was planned from (``crawl/pair_plan.tsv``'s ``sheet_row``; the same
timepoints the reliability stage's test-retest uses). Labels are compared as text (``1`` and
``1.0`` are one label; a cell is stripped).

* Two clinical rows of one subject and timepoint are ``duplicate-clinical`` (the join fails,
  as duplicate IDs do without timepoints).
* A pair without a timepoint (found in the DICOM tree without a sheet row, or a sheet row with
  an empty ``timepoint``) is ``missing-timepoint`` in the join report, and the join fails,
  naming how many: the dataset cannot say which clinical row is that pair's.
* A (subject, timepoint) of the images without a clinical row is ``unmatched-imaging`` and counts
  against ``merge.max_unmatched_fraction`` (the fraction of imaged subject-timepoints); one of
  the clinical table without images is ``unmatched-clinical`` (reported, not bounded).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from radflow.keys import case_id
from radflow.merge.dictionary import value_text
from radflow.records import read_table

logger = logging.getLogger(__name__)

REPORT_COLUMNS = ["kind", "case_id", "detail"]


def pair_timepoints(pair_plan_tsv: str | Path, sheet: str | Path) -> dict[str, str]:
    """``pair_id -> timepoint`` of the pairs planned from cohort-sheet rows with a non-empty
    ``timepoint``; pairs without one are absent. ``sheet`` ``""``: no sheet, no timepoints."""
    if not sheet:
        return {}
    from radflow.crawl.sheet import read_sheet  # deferred: the sheet schema and jsonschema

    by_row = {int(r["row"]): value_text(r["timepoint"]) for r in read_sheet(Path(sheet))
              if value_text(r.get("timepoint", ""))}
    plan = read_table(pair_plan_tsv)
    return {pid: by_row[int(row)] for pid, row in zip(plan["pair_id"], plan["sheet_row"],
                                                      strict=True)
            if str(row).strip() and int(row) in by_row}


def join_on_timepoint(wide: pd.DataFrame, clinical: pd.DataFrame, id_column: str,
                      timepoint: str, key: bytes, max_unmatched: float,
                      timepoint_of: Mapping[str, str], *, keep_timepoint: bool
                      ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Left-join ``wide`` with ``clinical`` on (pseudonymised ID, timepoint).

    Parameters
    ----------
    wide
        The wide feature table (keys, provenance, features).
    clinical
        :attr:`radflow.merge.clinical.PreparedClinical.table` (``id_column``, ``timepoint`` as
        text, the written columns).
    id_column, timepoint
        The clinical ID column and the dictionary's timepoint column.
    key
        The pseudonymisation key.
    max_unmatched
        ``merge.max_unmatched_fraction``.
    timepoint_of
        :func:`pair_timepoints`.
    keep_timepoint
        Write the timepoint column to the dataset (its role is ``covariate``).

    Returns
    -------
    dataset, report, problems
        As :func:`radflow.merge.join_clinical`.
    """
    clinical = clinical.copy()
    clinical.insert(0, "case_id", [case_id(key, v) if v else "" for v in clinical[id_column]])
    clinical = clinical.drop(columns=[id_column])
    rows: list[dict[str, str]] = []
    missing_id = int((clinical["case_id"] == "").sum())
    if missing_id:
        rows.append({"kind": "missing-clinical-id", "case_id": "",
                     "detail": f"{missing_id} row(s) with an empty {id_column}"})
    no_label = int(((clinical["case_id"] != "") & clinical[timepoint].isna()).sum())
    if no_label:
        rows.append({"kind": "missing-clinical-timepoint", "case_id": "",
                     "detail": f"{no_label} row(s) with an empty {timepoint}; not joined"})
    clinical = clinical[(clinical["case_id"] != "") & clinical[timepoint].notna()]
    keys = ["case_id", timepoint]
    counts = clinical.groupby(keys, sort=True).size()
    dups = counts[counts > 1]
    rows += [{"kind": "duplicate-clinical", "case_id": c,
              "detail": f"{n} rows at {timepoint} {t!r}"} for (c, t), n in dups.items()]

    labels = wide["pair_id"].map(timepoint_of)
    unlabelled = wide.loc[labels.isna(), ["case_id", "pair_id"]]
    rows += [{"kind": "missing-timepoint", "case_id": r.case_id,
              "detail": f"pair {r.pair_id}: no timepoint in the cohort sheet"}
             for r in unlabelled.itertuples()]
    imaged = set(zip(wide.loc[labels.notna(), "case_id"], labels[labels.notna()], strict=True))
    known = set(zip(clinical["case_id"], clinical[timepoint], strict=True))
    no_clinical, no_imaging = sorted(imaged - known), sorted(known - imaged)
    rows += [{"kind": "unmatched-imaging", "case_id": c,
              "detail": f"no clinical row at {timepoint} {t!r}"} for c, t in no_clinical]
    rows += [{"kind": "unmatched-clinical", "case_id": c,
              "detail": f"no feature row at {timepoint} {t!r}"} for c, t in no_imaging]
    report = pd.DataFrame(rows, columns=REPORT_COLUMNS)

    problems = []
    if len(dups):
        problems.append(f"{len(dups)} duplicate clinical (ID, {timepoint}) pair(s)")
    if len(unlabelled):
        problems.append(f"{len(unlabelled)} pair(s) have no timepoint in the cohort sheet, and "
                        f"the clinical data dictionary joins on the subject and {timepoint}: give "
                        "every pair a cohort-sheet row with a timepoint")
    if imaged and len(no_clinical) / len(imaged) > max_unmatched:
        problems.append(f"{len(no_clinical)} of {len(imaged)} imaged (case, {timepoint}) have no "
                        f"clinical row ({len(no_clinical) / len(imaged):.0%} > "
                        f"merge.max_unmatched_fraction {max_unmatched:.0%})")
    logger.info("clinical join on (case, %s): %d of %d imaged timepoints without a clinical row; "
                "%d pair(s) without a timepoint; %d clinical timepoints without imaging",
                timepoint, len(no_clinical), len(imaged), len(unlabelled), len(no_imaging))
    clinical_cols = [c for c in clinical.columns
                     if c != "case_id" and (keep_timepoint or c != timepoint)]
    clash = sorted(set(clinical_cols) & set(wide.columns))
    if clash:
        problems.append(f"clinical columns clash with feature table columns: {clash}")
    joined = wide.assign(_tp=labels).merge(
        clinical.drop_duplicates(keys).rename(columns={timepoint: "_tp"}),
        on=["case_id", "_tp"], how="left", validate="many_to_one")
    if keep_timepoint:
        joined[timepoint] = joined["_tp"]
    from radflow.merge import KEY_COLUMNS, PROVENANCE_COLUMNS  # the package imports this module

    n_keys = len(KEY_COLUMNS) + len(PROVENANCE_COLUMNS)
    dataset = joined[list(wide.columns[:n_keys]) + clinical_cols + list(wide.columns[n_keys:])]
    return dataset, report, problems


__all__ = ["join_on_timepoint", "pair_timepoints"]
