# qc: the run summary and the clinical join report (never fails on the data, so both are there
# to read when the merge then rejects the join or strict mode fails the run).
# merge: every feature table + the clinical table -> the analysis-ready dataset; the families'
# side records -> landmarks.tsv and minkowski_curves.parquet.
from radflow.merge.dictionary import checked_dictionary, joins_on_timepoint

# The clinical data dictionary, read and checked now so that a broken one stops the run before
# any job ("" = none: no clinical column but the join key reaches the results).
CLINICAL_DICTIONARY = checked_dictionary(P.clinical_dictionary, P.clinical, config["clinical_id"])
# A dictionary with a timepoint column joins on (subject, timepoint): each pair's timepoint comes
# from its cohort-sheet row, through the crawl's pair plan (radflow.merge.timepoints).
TIMEPOINT_JOIN = joins_on_timepoint(CLINICAL_DICTIONARY, config["clinical_id"])


rule qc:
    input:
        features=all_unit_files(f"{RES}/extract/{{case_id}}/{{unit}}.parquet"),
        statuses=all_unit_files(f"{RES}/extract/{{case_id}}/{{unit}}.json"),
        sidecars=all_sidecars,
        pairs=f"{RES}/pair/pairs.tsv",
        series=f"{RES}/crawl/series.tsv",
        clinical=[P.clinical] if P.clinical else [],
        dictionary=[CLINICAL_DICTIONARY] if CLINICAL_DICTIONARY else [],
        pair_plan=[f"{RES}/crawl/pair_plan.tsv"] if TIMEPOINT_JOIN else [],
        cohort_sheet=[P.sheet] if TIMEPOINT_JOIN and P.sheet else [],
    output:
        join_report=f"{RES}/merge/clinical_join_report.tsv",
        run_summary=f"{RES}/qc/run_summary.tsv",
        violations=f"{RES}/merge/clinical_violations.tsv",
    params:
        clinical_id=config["clinical_id"],
        clinical_sheet=config["clinical_sheet"],
        date_shift=rw.clinical_date_shift(config),
        key_file=P.key_file,
        settings=config["merge"],
    log:
        f"{RES}/logs/qc.log",
    benchmark:
        f"{RES}/benchmarks/qc.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc, input: rsc.merge_mem_mb(rsc.inputs_mb(input)),
        runtime=lambda wc, input: rsc.merge_runtime(rsc.inputs_mb(input)),
    conda:
        "../envs/radflow.yaml"
    script:
        "../scripts/qc.py"


rule merge:
    input:
        features=all_unit_files(f"{RES}/extract/{{case_id}}/{{unit}}.parquet"),
        statuses=all_unit_files(f"{RES}/extract/{{case_id}}/{{unit}}.json"),
        sidecars=all_sidecars,
        pairs=f"{RES}/pair/pairs.tsv",
        series=f"{RES}/crawl/series.tsv",
        clinical=[P.clinical] if P.clinical else [],
        dictionary=[CLINICAL_DICTIONARY] if CLINICAL_DICTIONARY else [],
        pair_plan=[f"{RES}/crawl/pair_plan.tsv"] if TIMEPOINT_JOIN else [],
        cohort_sheet=[P.sheet] if TIMEPOINT_JOIN and P.sheet else [],
        qc=rules.qc.output,
        protocol=[f"{RES}/qc/protocol_pairs.tsv"] if PROTOCOL_PROFILE else [],
        sides=all_unit_files(f"{RES}/extract/{{case_id}}/{{unit}}.side.json"),
    output:
        features=f"{RES}/merge/features.parquet",
        # landmarks and Minkowski curves of radflow's own feature families
        landmarks=f"{RES}/merge/landmarks.tsv",
        curves=f"{RES}/merge/minkowski_curves.parquet",
        features_wide=f"{RES}/merge/features_wide.csv",
        dataset_parquet=f"{RES}/merge/dataset.parquet",
        dataset_csv=f"{RES}/merge/dataset.csv",
        clinical_columns=f"{RES}/merge/clinical_columns.tsv",
    params:
        clinical_id=config["clinical_id"],
        clinical_sheet=config["clinical_sheet"],
        date_shift=rw.clinical_date_shift(config),
        key_file=P.key_file,
        settings=config["merge"],
        strict=config["strict"],
        version=VERSION,
    log:
        f"{RES}/logs/merge.log",
    benchmark:
        f"{RES}/benchmarks/merge.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc, input: rsc.merge_mem_mb(rsc.inputs_mb(input)),
        runtime=lambda wc, input: rsc.merge_runtime(rsc.inputs_mb(input)),
    conda:
        "../envs/radflow.yaml"
    script:
        "../scripts/merge.py"
