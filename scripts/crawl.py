"""Rule crawl: index the DICOM root and the cohort sheet (radflow.crawl)."""

from radflow.crawl import Deidentified, run_crawl
from radflow.logs import script_logging
from radflow.settings import RoiSettings, crawl_settings, from_mapping

with script_logging(snakemake.log[0]):
    p = snakemake.params
    settings = crawl_settings(p.settings, p.geometry)
    run_crawl(
        dicom_root=p.dicom_root,
        sheet=next(iter(getattr(snakemake.input, "sheet", [])), ""),
        key_file=p.key_file,
        settings=settings,
        series_tsv=snakemake.output.series,
        pair_plan_tsv=snakemake.output.pair_plan,
        sources_dir=p.sources_dir,
        rois_tsv=snakemake.output.rois,
        rois=from_mapping(RoiSettings, p.rois, section="rois"),
        deidentified=Deidentified(**p.deidentified) if p.deidentified else None,
        acquisition_tsv=getattr(snakemake.output, "acquisition", None),
    )
