"""Rule pair: gather the pair records into pairs.tsv, count ROI names (radflow.pair)."""

from radflow.logs import script_logging
from radflow.pair import run_pair_table

with script_logging(snakemake.log[0]):
    run_pair_table(pair_jsons=list(snakemake.input.records), out_tsv=snakemake.output.pairs,
                   rois_tsv=snakemake.input.rois, roi_names_tsv=snakemake.output.roi_names)
