"""Rule convert_one: one DICOM series or sheet file -> NIfTI + sidecar (radflow.convert)."""

from radflow.convert import run_convert
from radflow.logs import script_logging
from radflow.settings import ConvertSettings, GeometrySettings, from_mapping

with script_logging(snakemake.log[0]):
    run_convert(
        source_json=snakemake.input.source,
        sidecar_json=snakemake.output.sidecar,
        settings=from_mapping(GeometrySettings, snakemake.params.geometry, section="geometry"),
        image_sidecar=snakemake.input.get("image"),
        convert=from_mapping(ConvertSettings, snakemake.params.convert, section="convert"),
    )
