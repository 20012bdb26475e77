# protocol: acquisition-protocol QC gates (README, "Protocol QC gates"). Runs only when the
# cohort's config names a profile (protocol.profile); the merge then reads its pair table.
from radflow.protocol.profile import checked_profile

# The profile file, read and checked now so that a broken profile stops the run before any job.
PROTOCOL_PROFILE = checked_profile(config["protocol"]["profile"], workflow.basedir)


rule protocol:
    input:
        series=f"{RES}/crawl/series.tsv",
        acquisition=f"{RES}/crawl/acquisition.tsv",
        pair_plan=f"{RES}/crawl/pair_plan.tsv",
        sidecars=all_sidecars,
        profile=[PROTOCOL_PROFILE] if PROTOCOL_PROFILE else [],
    output:
        table=f"{RES}/qc/protocol.tsv",
        pairs=f"{RES}/qc/protocol_pairs.tsv",
    params:
        settings=config["protocol"],
        strict=config["strict"],
        version=VERSION,
    log:
        f"{RES}/logs/protocol.log",
    benchmark:
        f"{RES}/benchmarks/protocol.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=120,
    conda:
        "../envs/radflow.yaml"
    script:
        "../scripts/protocol.py"
