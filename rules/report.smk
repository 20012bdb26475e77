# report: one HTML page per cohort (results/<cohort>/report/index.html, assets beside it): the
# run summary, one QC picture per pair (qc/<pair_id>.png), feature distributions, the correlation
# heatmap with the redundancy clusters, associations, Kaplan-Meier curves, provenance (README,
# "Report"). Reads the analysis tables when analyse.enabled. Off by default (report.enabled adds
# it to the all target; `radflow run report` runs it regardless). The whole folder, and each QC
# picture, are marked for Snakemake's own report (`snakemake --report report.zip`).
from radflow.report.resources import report_runtime


rule report:
    input:
        pair_records=all_pair_files(f"{RES}/pair/{{pair_id}}.json"),
        series=f"{RES}/crawl/series.tsv",
        run_summary=f"{RES}/qc/run_summary.tsv",
        join_report=f"{RES}/merge/clinical_join_report.tsv",
        dataset=f"{RES}/merge/dataset.parquet",
        features_wide=f"{RES}/merge/features_wide.csv",
        # the RECIST overlays; the merge always writes it (no rows when the families are off)
        landmarks=f"{RES}/merge/landmarks.tsv",
        analysis=([f"{RES}/analysis/redundancy_clusters.tsv", f"{RES}/analysis/associations.tsv",
                   f"{RES}/analysis/model_ready.parquet", f"{RES}/analysis/baseline.tsv"]
                  if config["analyse"]["enabled"] else []),
    output:
        html=f"{RES}/report/index.html",
        # the page with its assets, for `snakemake --report report.zip` (a folder needs a zip)
        site=report(directory(f"{RES}/report"), htmlindex="index.html",
                    caption="report/radflow_report.rst", category="radflow report"),
        qc=report(directory(f"{RES}/report/qc"), patterns=["{pair_id}.png"],
                  caption="report/qc_picture.rst", category="QC pictures",
                  labels={"pair": "{pair_id}"}),
    params:
        # the section without its switch: turning it on does not redo the page
        settings={k: v for k, v in config["report"].items() if k != "enabled"},
        cohort=config["cohort"],
        config=config,
        version=VERSION,
    log:
        f"{RES}/logs/report.log",
    benchmark:
        f"{RES}/benchmarks/report.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc, input: rsc.merge_mem_mb(rsc.inputs_mb(input)),
        runtime=lambda wc, input: report_runtime(len(input.pair_records)),
    conda:
        "../envs/radflow.yaml"
    script:
        "../scripts/report.py"
