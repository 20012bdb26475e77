"""Rule analyse: the merged dataset -> redundancy clusters, associations, model-ready export,
baseline (radflow.analyse)."""

from radflow.analyse import AnalyseOutputs, run_analyse_stage
from radflow.logs import script_logging

with script_logging(snakemake.log[0]):
    i, o = snakemake.input, snakemake.output
    run_analyse_stage(
        dataset=i.dataset,
        features_wide=i.features_wide,
        clinical_columns=i.clinical_columns,
        settings=snakemake.params.settings,
        reliable_features=next(iter(i.reliable), ""),
        control_features=next(iter(i.controls), ""),
        out=AnalyseOutputs(o.clusters, o.associations, o.model_ready_parquet,
                           o.model_ready_csv, o.standardisation, o.baseline,
                           o.control_associations),
    )
