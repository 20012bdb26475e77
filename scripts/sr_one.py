"""Rule sr_one: the DICOM SEG and SR (TID 1500) of every pair of one image (radflow.sr)."""

from radflow.logs import script_logging
from radflow.sr.stage import run_sr_unit

with script_logging(snakemake.log[0]):
    i = snakemake.input
    run_sr_unit(
        pairs=list(i.pairs),
        features=i.features,
        extract_status=i.extract_status,
        sources=list(i.sources),
        settings=snakemake.params.settings,
        pet_units=snakemake.params.pet_units,
        version=snakemake.params.version,
        out_dir=snakemake.output.dicom,
        out_status=snakemake.output.status,
    )
