# analyse: the merged dataset -> redundancy clusters, univariate associations with the declared
# outcomes, a model-ready export with its split and scaling, a cross-validated baseline (README,
# "Analysis"). Outcomes: analyse.outcomes, or (null) the clinical data dictionary's role: outcome
# columns. With reliability.enabled it reads the reliable list too, and with negative controls
# configured their features (reliability/features.parquet), flagging the associations a control
# reproduces. Off by default (analyse.enabled adds it to the all target; `radflow run analyse`
# runs it regardless).


rule analyse:
    input:
        dataset=f"{RES}/merge/dataset.parquet",
        features_wide=f"{RES}/merge/features_wide.csv",
        clinical_columns=f"{RES}/merge/clinical_columns.tsv",
        reliable=([f"{RES}/reliability/reliable_features.tsv"]
                  if config["reliability"]["enabled"] else []),
        controls=([f"{RES}/reliability/features.parquet"]
                  if config["reliability"]["enabled"]
                  and config["reliability"]["negative_controls"] else []),
    output:
        clusters=f"{RES}/analysis/redundancy_clusters.tsv",
        associations=f"{RES}/analysis/associations.tsv",
        model_ready_parquet=f"{RES}/analysis/model_ready.parquet",
        model_ready_csv=f"{RES}/analysis/model_ready.csv",
        standardisation=f"{RES}/analysis/standardisation.tsv",
        baseline=f"{RES}/analysis/baseline.tsv",
        control_associations=f"{RES}/analysis/control_associations.tsv",
    params:
        # the section without its switch: turning it on does not redo the tables
        settings={k: v for k, v in config["analyse"].items() if k != "enabled"},
        version=VERSION,
    log:
        f"{RES}/logs/analyse.log",
    benchmark:
        f"{RES}/benchmarks/analyse.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc, input: rsc.merge_mem_mb(rsc.inputs_mb(input)),
        runtime=lambda wc, input: rsc.merge_runtime(rsc.inputs_mb(input)),
    conda:
        "../envs/radflow.yaml"
    script:
        "../scripts/analyse.py"
