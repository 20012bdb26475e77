"""Rule protocol: acquisition-protocol QC gates (radflow.protocol)."""

from radflow.logs import script_logging
from radflow.protocol import run_protocol
from radflow.settings import ProtocolSettings, from_mapping

with script_logging(snakemake.log[0]):
    i, o, p = snakemake.input, snakemake.output, snakemake.params
    run_protocol(
        profile=next(iter(i.profile), ""),
        series_tsv=i.series,
        acquisition_tsv=i.acquisition,
        pair_plan_tsv=i.pair_plan,
        sidecars=list(i.sidecars),
        settings=from_mapping(ProtocolSettings, p.settings, section="protocol"),
        strict=p.strict,
        table_tsv=o.table,
        pairs_tsv=o.pairs,
    )
