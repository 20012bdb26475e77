"""Rule pair_one: check one planned image x mask x label pair (radflow.pair)."""

from radflow.logs import script_logging
from radflow.pair import run_pair
from radflow.settings import PairSettings, from_mapping

with script_logging(snakemake.log[0]):
    run_pair(
        plan_json=snakemake.input.plan,
        image_sidecar=snakemake.input.get("image"),
        mask_sidecar=snakemake.input.get("mask"),
        out_json=snakemake.output.record,
        settings=from_mapping(PairSettings, snakemake.params.settings, section="pair"),
    )
