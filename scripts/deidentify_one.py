"""Rule deidentify_one: de-identify one series (radflow.deidentify)."""

from radflow.deidentify import run_deidentify_one
from radflow.logs import script_logging

with script_logging(snakemake.log[0]):
    p = snakemake.params
    run_deidentify_one(
        source=snakemake.input.source,
        record=snakemake.output.record,
        dicom_root=p.dicom_root,
        key_file=p.key_file,
        settings=p.settings,
    )
