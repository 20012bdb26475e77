"""The ``sr`` stage: DICOM SEG and Comprehensive 3D SR (TID 1500 Measurement Report) per pair.

* :mod:`radflow.sr.codes`: the concept, unit and method of every feature row (IBSI codes,
  radflow's private scheme, UCUM units, SNOMED CT / DCM codes of semantic sizes);
* :mod:`radflow.sr.seg`: the pair's mask on the source images as a DICOM SEG;
* :mod:`radflow.sr.report`: the TID 1500 report;
* :mod:`radflow.sr.stage`: the per-unit job and the status table;
* :mod:`radflow.sr.inputs`: the files a job reads (the Snakefile's input function).

This module imports neither highdicom nor pandas: the Snakefile imports :mod:`radflow.sr.inputs`
at parse time. README, "DICOM SR (TID 1500)".
"""

from __future__ import annotations

from radflow.sr.settings import SrSettings

__all__ = ["SrSettings"]
