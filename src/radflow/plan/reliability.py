"""What the Snakefile needs for the reliability stage: its jobs (one per extraction unit ×
perturbation chain, plus one per unit for the negative controls) and their memory and run time.

The requests reuse the extract stage's cost model (:func:`radflow.plan.resources.extract_mem_mb`,
:func:`~radflow.plan.resources.extract_runtime`): a job extracts its copies one after the other,
holding one copy at a time, so its memory is one extraction's plus the making of one copy
(:data:`PERTURBATION`), whatever the number of copies; its run time is one extraction's times the
number of copies, plus the making of the copies.

The config section arrives as the plain mapping of the validated config (this module imports
no stage; :mod:`radflow.reliability.settings` builds the settings in the jobs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from radflow.plan.jobs import Plan
from radflow.plan.resources import (
    Cost,
    extract_mem_mb,
    extract_runtime,
    image_voxels,
    mem_request,
    runtime_request,
)

#: The job name of a unit's negative controls (:data:`radflow.reliability.settings.CONTROLS_JOB`).
CONTROLS_JOB = "controls"

#: Making one copy, on top of the extraction, per million voxels of the whole image: the noise
#: step holds the image as float64 twice (its values and the drawn noise) and the float32 result;
#: supervoxels and distance maps (contour, volume) work on the ROI's neighbourhood. Measured
#: (peak resident memory and wall time of the ``ntcv`` chain, the costliest) on synthetic CT of
#: 256x256x100 and 512x512x120 voxels with a 30 mm lesion: +248 / +994 MB, 1.0 / 3.1 s a copy
#: (5.4 s with an 80 mm lesion); a negative control costs less (+120 to +210 MB, <= 1.7 s).
PERTURBATION = Cost(base_mb=50, mb_per_mvoxel=30, base_s=1.0, s_per_mvoxel=0.15)


def reliability_jobs(section: Mapping[str, Any]) -> list[str]:
    """The per-unit jobs of the config's ``reliability`` section: the chains' names, then
    :data:`CONTROLS_JOB` when negative controls are on."""
    chains = (section.get("perturbation") or {}).get("chains") or []
    jobs = [str(c["name"]) for c in chains if isinstance(c, Mapping) and "name" in c]
    if section.get("negative_controls") is not None:
        jobs.append(CONTROLS_JOB)
    return jobs


def job_copies(section: Mapping[str, Any], job: str) -> int:
    """How many copies of each pair the job ``job`` makes (controls: kinds × regions)."""
    if job == CONTROLS_JOB:
        controls = section.get("negative_controls") or {}
        return (len(controls.get("kinds") or ("shuffled", "randomised", "randomised-sampled"))
                * len(controls.get("regions") or ("roi", "non-roi", "full")))
    for chain in (section.get("perturbation") or {}).get("chains") or []:
        if isinstance(chain, Mapping) and chain.get("name") == job:
            return int(chain.get("copies", 10))
    return 1


def reliability_files(plan: Plan, pattern: str, jobs: Sequence[str]) -> list[str]:
    """``pattern`` (fields ``{case_id}``, ``{unit}``, ``{chain}``) for every extraction unit ×
    job, units in plan order."""
    return [pattern.format(case_id=case, unit=unit, chain=job)
            for unit, (case, _) in plan.units.items() for job in jobs]


def _largest_image_voxels(pair_jsons: str | Sequence[str]) -> int | None:
    """Voxels of the largest image of the unit's pairs (their headers); None when unreadable.
    A missing pair record raises :class:`FileNotFoundError` (Snakemake: evaluate later)."""
    from radflow.records import peek_json  # deferred: the Snakefile imports this module

    paths = [pair_jsons] if isinstance(pair_jsons, str) else list(pair_jsons)
    sizes = []
    for path in paths:
        image = peek_json(path).get("image")
        with contextlib.suppress(TypeError):
            voxels = image_voxels(image) if image else None
            if voxels is not None:
                sizes.append(voxels)
    return max(sizes) if sizes else None


def reliability_mem_mb(pair_jsons: str | Sequence[str], params_path: str, *,
                       custom_filters: bool = False, families: bool = False,
                       floor_mb: int = 1000) -> int:
    """``reliability_one``: memory (MB), one extraction (:func:`extract_mem_mb`) plus the making
    of one copy (:data:`PERTURBATION`); independent of the number of copies."""
    extraction = extract_mem_mb(pair_jsons, params_path, custom_filters=custom_filters,
                                families=families, floor_mb=0)
    voxels = _largest_image_voxels(pair_jsons)
    making = 0 if voxels is None else mem_request(PERTURBATION.mem_mb(voxels), 0)
    return max(extraction + making, int(floor_mb))


def reliability_runtime(pair_jsons: str | Sequence[str], params_path: str, copies: int, *,
                        custom_filters: bool = False, families: bool = False,
                        floor_min: int = 10) -> int:
    """``reliability_one``: run time (minutes), ``copies`` times one extraction of the unit
    (:func:`extract_runtime`) plus the making of the copies of every pair."""
    extraction = extract_runtime(pair_jsons, params_path, custom_filters=custom_filters,
                                 families=families, floor_min=0)
    voxels = _largest_image_voxels(pair_jsons)
    n_pairs = 1 if isinstance(pair_jsons, str) else len(pair_jsons)
    making = (0 if voxels is None
              else runtime_request(copies * n_pairs * PERTURBATION.seconds(voxels), 0))
    return max(copies * extraction + making, int(floor_min))


__all__ = ["CONTROLS_JOB", "PERTURBATION", "job_copies", "reliability_files", "reliability_jobs",
           "reliability_mem_mb", "reliability_runtime"]
