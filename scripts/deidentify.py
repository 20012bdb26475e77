"""Rule deidentify: the de-identification log, the private pseudonym table and UID/source map
(radflow.deidentify)."""

from radflow.deidentify import run_deidentify
from radflow.logs import script_logging

with script_logging(snakemake.log[0]):
    p = snakemake.params
    run_deidentify(
        records=list(snakemake.input.records),
        sources_dir=p.sources_dir,
        key_file=p.key_file,
        actions_tsv=snakemake.output.actions,
        series_tsv=snakemake.output.series,
        pseudonyms_tsv=snakemake.output.pseudonyms,
        uid_map_tsv=snakemake.output.uid_map,
        retain_uids=p.retain_uids,
    )
