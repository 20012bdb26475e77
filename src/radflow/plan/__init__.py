"""What the Snakefile needs at parse time and when a job becomes ready (fast, cached).

:mod:`~radflow.plan.paths` (where a cohort's files are, the DICOM tree's fingerprint),
:mod:`~radflow.plan.jobs` (the crawl checkpoint's plan and the files each job reads) and
:mod:`~radflow.plan.resources` (the memory and run-time model of the per-item rules). Stage
files are read only through :mod:`radflow.records`. The Snakefile imports this package as ``rw``
and :mod:`radflow.plan.resources` as ``rsc``.
"""

from radflow.plan.jobs import (
    PLAN_TRACE_ENV,
    Plan,
    all_sidecars,
    convert_inputs,
    extract_params,
    extract_units,
    extract_units_of,
    pair_sidecars,
    read_plan,
    sidecar_path,
    unit_files,
    unit_pair_ids,
    unit_params_set,
)
from radflow.plan.paths import (
    Paths,
    clinical_date_shift,
    deidentify_on,
    folder_of,
    resolve_paths,
    tree_fingerprint,
    tree_fingerprint_param,
)

__all__ = ["PLAN_TRACE_ENV", "Paths", "Plan", "all_sidecars", "clinical_date_shift",
           "convert_inputs", "deidentify_on",
           "extract_params", "extract_units", "extract_units_of", "folder_of", "pair_sidecars",
           "read_plan", "resolve_paths", "sidecar_path", "tree_fingerprint",
           "tree_fingerprint_param", "unit_files", "unit_pair_ids", "unit_params_set"]
