"""radflow: a Snakemake radiomics pipeline from DICOM cohorts to analysis-ready tables.

Stages (one module each, named like the Snakemake rule that runs it):
``crawl`` -> ``convert`` -> ``pair`` -> ``extract`` -> ``merge``.
"""

__version__ = "0.2.0"
