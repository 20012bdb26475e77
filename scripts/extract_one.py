"""Rule extract_one: PyRadiomics features and radflow's own families of all pairs of one image
(radflow.extract)."""

from radflow.extract import feature_families, image_types, run_extract
from radflow.logs import script_logging
from radflow.params_sets import ParamsChoice
from radflow.settings import from_mapping

with script_logging(snakemake.log[0]):
    run_extract(
        list(snakemake.input.pairs),
        snakemake.input.params or None,  # [] when the image's modality has no parameter set
        snakemake.output.features,
        snakemake.output.status,
        unit=snakemake.wildcards.unit,
        extra_image_types=image_types(snakemake.params.image_types),
        threads=snakemake.threads,
        choice=from_mapping(ParamsChoice, snakemake.params.params_set, section="params_set"),
        families=feature_families(snakemake.params.families),
        out_side=snakemake.output.side,
    )
