"""Rule reliability_one: the perturbed copies (or negative controls) of all pairs of one image,
each extracted as the extract stage extracts the original (radflow.reliability.stage)."""

from radflow.extract import feature_families, image_types
from radflow.logs import script_logging
from radflow.params_sets import ParamsChoice
from radflow.reliability.settings import reliability_settings
from radflow.reliability.stage import run_reliability_one
from radflow.settings import from_mapping

with script_logging(snakemake.log[0]):
    w, p = snakemake.wildcards, snakemake.params
    run_reliability_one(
        list(snakemake.input.pairs),
        snakemake.input.params or None,  # [] when the image's modality has no parameter set
        snakemake.output.features,
        snakemake.output.status,
        case_id=w.case_id,
        unit=w.unit,
        job=w.chain,
        settings=reliability_settings(p.settings),
        extra_image_types=image_types(p.image_types),
        choice=from_mapping(ParamsChoice, p.params_set, section="params_set"),
        families=feature_families(p.families),
        threads=snakemake.threads,
    )
