"""IBSI 1 (Image Biomarker Standardisation Initiative) identifiers, IBSI mode and conformance.

* :func:`ibsi_code` / :func:`codes_table`: the IBSI identifier of every feature radflow can emit,
  from the one versioned data file ``codes.tsv`` (its header cites the IBSI manual source);
* :func:`ibsi_preset`, :func:`ibsi_adjust`, :func:`with_ibsi_codes`: what ``extract.ibsi: true``
  does around PyRadiomics (:mod:`radflow.ibsi.preset`); :mod:`radflow.ibsi.resample`: IBSI
  interpolation grid and re-segmentation; :func:`radflow.ibsi.mode.ibsi_mode`: all of it on one
  parameter set, the code path of the extract stage and of the conformance script (not imported
  here, it loads PyRadiomics);
* ``python -m radflow.ibsi.conformance``: radflow on the IBSI 1 digital and CT phantoms against
  the consensus reference values (:mod:`radflow.ibsi.conformance`; not imported here, it loads
  PyRadiomics).
"""

from __future__ import annotations

from radflow.ibsi.codes import CodeEntry, codes_table, ibsi_code, texture_aggregation
from radflow.ibsi.preset import (
    Deviation,
    ibsi_adjust,
    ibsi_bin_origin,
    ibsi_preset,
    with_ibsi_codes,
)

__all__ = ["CodeEntry", "Deviation", "codes_table", "ibsi_adjust", "ibsi_bin_origin", "ibsi_code",
           "ibsi_preset", "texture_aggregation", "with_ibsi_codes"]
