"""Rule extract_one: PyRadiomics features of one pair (radflow.extract)."""

from radflow.extract import laws_image_types, run_extract
from radflow.logs import script_logging

with script_logging(snakemake.log[0]):
    run_extract(
        snakemake.input.pair,
        snakemake.input.params,
        snakemake.output.features,
        snakemake.output.status,
        extra_image_types=laws_image_types(snakemake.params.laws),
        threads=snakemake.threads,
    )
