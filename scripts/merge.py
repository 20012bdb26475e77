"""Rule merge: features of all pairs + clinical table -> datasets (radflow.merge)."""

from radflow.logs import script_logging
from radflow.merge import ClinicalInput, MergeOutputs, run_merge
from radflow.settings import MergeSettings, from_mapping

with script_logging(snakemake.log[0]):
    i, o, p = snakemake.input, snakemake.output, snakemake.params
    run_merge(
        feature_files=list(i.features),
        status_files=list(i.statuses),
        pairs_tsv=i.pairs,
        series_tsv=i.series,
        sidecars=list(i.sidecars),
        clinical=ClinicalInput(next(iter(i.clinical), ""), p.clinical_id, p.clinical_sheet,
                               next(iter(i.dictionary), ""), p.date_shift,
                               next(iter(i.pair_plan), ""), next(iter(i.cohort_sheet), "")),
        key_file=p.key_file,
        settings=from_mapping(MergeSettings, p.settings, section="merge"),
        strict=p.strict,
        protocol_pairs=next(iter(i.protocol), ""),
        side_files=list(i.sides),
        out=MergeOutputs(o.features, o.features_wide, o.dataset_parquet, o.dataset_csv,
                         o.landmarks, o.curves, o.clinical_columns),
    )
