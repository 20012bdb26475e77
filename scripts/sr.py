"""Rule sr: the sr stage's status table from every unit's record (radflow.sr)."""

from radflow.logs import script_logging
from radflow.sr.stage import write_status_table

with script_logging(snakemake.log[0]):
    write_status_table(list(snakemake.input.records), snakemake.output.status)
