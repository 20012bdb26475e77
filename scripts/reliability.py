"""Rule reliability: the copies' feature table, the agreement table and the reliable list
(radflow.reliability.stage)."""

from radflow.logs import script_logging
from radflow.reliability.settings import reliability_settings
from radflow.reliability.stage import ReliabilityOutputs, run_reliability

with script_logging(snakemake.log[0]):
    i, o = snakemake.input, snakemake.output
    run_reliability(
        features_parquet=i.features,
        copy_files=list(i.copies),
        status_files=list(i.statuses),
        pair_plan_tsv=i.pair_plan,
        sheet=next(iter(i.sheet), ""),
        settings=reliability_settings(snakemake.params.settings),
        out=ReliabilityOutputs(o.features, o.agreement, o.reliable, o.copies),
    )
