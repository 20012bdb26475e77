"""Rule pair: gather the pair records into pairs.tsv (radflow.pair)."""

from radflow.logs import script_logging
from radflow.pair import run_pair_table

with script_logging(snakemake.log[0]):
    run_pair_table(pair_jsons=list(snakemake.input), out_tsv=snakemake.output[0])
