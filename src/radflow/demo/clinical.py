"""The demo cohort's clinical table, its data dictionary and the planted outcome.

``clinical.csv`` has the columns a hospital's spreadsheet has (a name, a birth date, free-text
notes: planted identifiers that must never reach the results), covariates, and three outcomes:

``outcome``
    A **planted** binary outcome that depends on lesion volume alone: 1 when the subject's
    largest region (lesion or node; the analysis' default ``lesions: largest`` keeps that row)
    has an analytic volume 4/3*pi*a*b*c above :data:`OUTCOME_VOLUME_MM3`, else 0. An analysis
    of the demo must therefore find the volume features at the top (README, "Analysis";
    ``tests/test_analyse_demo.py``). ``truth.json`` holds each subject's largest volume and
    outcome.
``followup_months``, ``event``
    A time-to-event outcome fixed per profile (no planted signal).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

#: The planted outcome is 1 when the largest region's analytic volume exceeds this (mm³). It
#: lies between the profiles' lesion volumes 4309 and 5187 mm³, so the voxelised volumes
#: (within 1.2 % of the analytic ones) fall on the same side; the eight profiles split 4 / 4.
OUTCOME_VOLUME_MM3 = 4750.0

#: Source ID of the clinical row without images.
UNMATCHED_ID = "DEMO-PID-0900"
#: Name, birth date and reference dates of the clinical row without images.
UNMATCHED_NAME = ("Claire", "Moreau")
UNMATCHED_BIRTH = "1966-02-14"
UNMATCHED_CT = "20230901"
UNMATCHED_INDEX = 9

#: The data dictionary of clinical.csv (README, "Clinical data dictionary"). The planted name
#: and notes columns are not declared and birth_date is an identifier: none reaches the results.
DICTIONARY = f"""\
# Data dictionary of the demo's clinical.csv (format: config/schema/clinical_dictionary.schema.yaml;
# README, "Clinical data dictionary"). The columns name and notes are not declared: radflow leaves
# them out of the results and lists them in merge/clinical_join_report.tsv; so it does with
# birth_date (an identifier) and ct_date (only the reference of diagnosis_date).
unknown_columns: drop
columns:
  patient_id: {{type: id, role: identifier}}
  birth_date: {{type: date, role: identifier}}
  age: {{type: numeric, role: covariate, unit: years, min: 0, max: 120}}
  sex: {{type: categorical, role: covariate, levels: [F, M]}}
  ct_date: {{type: date, role: drop, description: date of the analysed CT}}
  diagnosis_date: {{type: date, role: covariate, reference_date: ct_date}}
  outcome: {{type: binary-outcome, role: outcome, levels: [0, 1], positive: 1,
            description: "planted: 1 when the largest region's volume is above \
{OUTCOME_VOLUME_MM3:g} mm3"}}
  followup_months: {{type: time-to-event, role: outcome, unit: months, event: event}}
  event: {{type: event-indicator, role: outcome}}
"""


def planted_outcome(rois: Mapping[str, Mapping[str, Any]]) -> tuple[float, int]:
    """The largest region's analytic volume (mm³) and the planted outcome of one subject.

    Parameters
    ----------
    rois
        The subject's ``truth.json`` regions (:func:`radflow.demo.phantom.ellipsoid_truth`).
    """
    largest = max(float(r["volume_mm3"]) for r in rois.values())
    return largest, int(largest > OUTCOME_VOLUME_MM3)


def notes(given: str, family: str, index: int) -> str:
    """A free-text note as clinicians write them: it names the patient."""
    return f"{given} {family} reports a dry cough since spring; lives at {12 + index} Harbour Lane."


def _iso(da: str) -> str:
    return f"{da[:4]}-{da[4:6]}-{da[6:]}"


def clinical_row(pid: str, name: tuple[str, str], birth: str, ct: str, index: int,
                 **values: object) -> dict[str, object]:
    """A clinical.csv row: the identifying columns a hospital's spreadsheet has (name, birth
    date, free-text notes), and a diagnosis date 10 + 7 * (index % 8) days before the CT."""
    ct_date = datetime.date.fromisoformat(_iso(ct))
    diagnosis = ct_date - datetime.timedelta(days=10 + 7 * (index % 8))
    return {"patient_id": pid, "name": " ".join(name), "birth_date": _iso(birth),
            "age": values["age"], "sex": values["sex"], "ct_date": ct_date.isoformat(),
            "diagnosis_date": diagnosis.isoformat(), "outcome": values["outcome"],
            "followup_months": values["followup_months"], "event": values["event"],
            "notes": notes(*name, index)}


def unmatched_row() -> dict[str, object]:
    """The clinical row of a patient without images (outcome 0: no region)."""
    return clinical_row(UNMATCHED_ID, UNMATCHED_NAME, UNMATCHED_BIRTH.replace("-", ""),
                        UNMATCHED_CT, UNMATCHED_INDEX, age=57, sex="F", outcome=0,
                        followup_months=27.5, event=0)


__all__ = ["DICTIONARY", "OUTCOME_VOLUME_MM3", "UNMATCHED_ID", "clinical_row", "notes",
           "planted_outcome", "unmatched_row"]
