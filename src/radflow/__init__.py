"""radflow: a Snakemake radiomics pipeline from DICOM cohorts to analysis-ready tables.

Stages (one package each, named like the Snakemake rule that runs it and its results folder):
``deidentify`` (optional) -> ``crawl`` -> ``convert`` -> ``pair`` -> ``extract`` -> ``merge``.
Building blocks, named by noun: ``dicom``, ``filters``, ``io``, ``radiomics_adapter``,
``records`` (every file that crosses a stage boundary), ``keys``, ``settings``, ``errors``.
``plan`` holds what the Snakefile needs (job lists, resource model); ``demo`` the demo cohort
and synthetic-DICOM writers (demo and tests only); ``cli`` the ``radflow`` command.
"""

__version__ = "0.9.0"
