"""Rule report: the stages' tables, the QC pictures and the analysis -> report/index.html
(radflow.report)."""

from radflow.logs import script_logging
from radflow.report.stage import AnalysisFiles, ReportInputs, run_report_stage

with script_logging(snakemake.log[0]):
    i, p = snakemake.input, snakemake.params
    run_report_stage(
        inputs=ReportInputs(
            pair_records=list(i.pair_records), series=i.series, run_summary=i.run_summary,
            join_report=i.join_report, dataset=i.dataset, features_wide=i.features_wide,
            landmarks=i.landmarks,
            analysis=AnalysisFiles(*i.analysis) if len(i.analysis) else None,
        ),
        report_dir=snakemake.output.site,
        settings=p.settings,
        cohort=p.cohort,
        config=p.config,
        version=p.version,
    )
