"""Rule extract_one: PyRadiomics features of all pairs of one image (radflow.extract)."""

from radflow.extract import image_types, run_extract
from radflow.logs import script_logging

with script_logging(snakemake.log[0]):
    run_extract(
        list(snakemake.input.pairs),
        snakemake.input.params,
        snakemake.output.features,
        snakemake.output.status,
        unit=snakemake.wildcards.unit,
        extra_image_types=image_types(snakemake.params.image_types),
        threads=snakemake.threads,
    )
