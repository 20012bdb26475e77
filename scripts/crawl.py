"""Rule crawl: index the DICOM root and the cohort sheet (radflow.crawl)."""

from radflow.crawl import Deidentified, run_crawl
from radflow.logs import script_logging
from radflow.settings import CrawlSettings, RoiSettings, from_mapping

with script_logging(snakemake.log[0]):
    p = snakemake.params
    run_crawl(
        dicom_root=p.dicom_root,
        sheet=next(iter(getattr(snakemake.input, "sheet", [])), ""),
        key_file=p.key_file,
        settings=from_mapping(CrawlSettings, p.settings, section="crawl"),
        series_tsv=snakemake.output.series,
        pairs_tsv=snakemake.output.pairs,
        sources_dir=p.sources_dir,
        rois_tsv=snakemake.output.rois,
        rois=from_mapping(RoiSettings, p.rois, section="rois"),
        fallback_modalities=p.fallback_modalities,
        deidentified=Deidentified(**p.deidentified) if p.deidentified else None,
    )
