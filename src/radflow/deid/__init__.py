"""De-identification of DICOM by PS3.15 Annex E (Basic Application Level Confidentiality
Profile with options), keyed so that pseudonyms, UIDs and date shifts are consistent.

Modules: :mod:`~radflow.deid.profile` (the standard's action table, :class:`DeidSettings`),
:mod:`~radflow.deid.uids` (keyed UID replacement), :mod:`~radflow.deid.dates` (per-patient date
shift), :mod:`~radflow.deid.clean` (Clean Descriptors), :mod:`~radflow.deid.burned_in`,
:mod:`~radflow.deid.dataset` (one data set), :mod:`~radflow.deid.tree` (one series into a
folder), :mod:`~radflow.deid.log` (``actions.tsv`` and the private pseudonym table).
"""

from radflow.deid.dataset import deidentify_dataset
from radflow.deid.log import (
    actions_table,
    collect_pseudonyms,
    merge_counts,
    series_table,
    write_actions_log,
    write_pseudonym_table,
)
from radflow.deid.profile import STANDARD_EDITION, DeidSettings, action_table
from radflow.deid.tree import SeriesResult, deid_units, deidentify_series, series_output_dir

__all__ = ["STANDARD_EDITION", "DeidSettings", "SeriesResult", "action_table", "actions_table",
           "collect_pseudonyms", "deid_units", "deidentify_dataset", "deidentify_series",
           "merge_counts", "series_output_dir", "series_table", "write_actions_log",
           "write_pseudonym_table"]
