# reliability: perturbed copies and negative controls of every pair, each extracted like the
# original (same params set, filters, families); then each feature's agreement over the copies,
# the controls and repeat scans, and the reliable list (README, "Reliability: perturbations,
# negative controls, test-retest"). One job per image x perturbation chain, plus one per image
# for the negative controls (the pseudo-chain "controls"). Off by default: reliability.enabled
# adds it to the all target; `radflow run reliability` runs it regardless.
from radflow.plan import reliability as rwr

RELIABILITY = config["reliability"]
RELIABILITY_JOBS = rwr.reliability_jobs(RELIABILITY)


rule reliability_one:
    input:
        pairs=unit_pairs,
        params=unit_params,
    output:
        features=f"{RES}/reliability/{{case_id}}/{{unit}}.{{chain}}.parquet",
        status=f"{RES}/reliability/{{case_id}}/{{unit}}.{{chain}}.json",
    wildcard_constraints:
        chain=r"[a-z0-9][a-z0-9-]*",
    params:
        # only what makes the copies: a changed rule or confidence does not redo them
        settings={k: RELIABILITY[k] for k in ("perturbation", "negative_controls")},
        image_types=config["extract"]["image_types"],
        families=config["extract"]["families"],
        params_set=unit_params_set,
        version=VERSION,
    log:
        f"{RES}/logs/reliability/{{case_id}}/{{unit}}.{{chain}}.log",
    benchmark:
        f"{RES}/benchmarks/reliability/{{case_id}}/{{unit}}.{{chain}}.tsv"
    threads: RELIABILITY["threads"]
    # memory of one extraction + one copy (copies are made one at a time); time x copies
    resources:
        mem_mb=lambda wc, input: rwr.reliability_mem_mb(input.pairs, input.params,
            custom_filters=CUSTOM_IMAGE_TYPES, families=FAMILIES_ON,
            floor_mb=RELIABILITY["mem_mb"]),
        runtime=lambda wc, input: rwr.reliability_runtime(input.pairs, input.params,
            rwr.job_copies(RELIABILITY, wc.chain), custom_filters=CUSTOM_IMAGE_TYPES,
            families=FAMILIES_ON, floor_min=RELIABILITY["runtime"]),
    conda:
        "../envs/radflow.yaml"
    script:
        "../scripts/reliability_one.py"


rule reliability:
    input:
        features=f"{RES}/merge/features.parquet",
        copies=lambda wc: rwr.reliability_files(plan(),
            f"{RES}/reliability/{{case_id}}/{{unit}}.{{chain}}.parquet", RELIABILITY_JOBS),
        statuses=lambda wc: rwr.reliability_files(plan(),
            f"{RES}/reliability/{{case_id}}/{{unit}}.{{chain}}.json", RELIABILITY_JOBS),
        pair_plan=f"{RES}/crawl/pair_plan.tsv",
        sheet=[P.sheet] if P.sheet else [],
    output:
        features=f"{RES}/reliability/features.parquet",
        agreement=f"{RES}/reliability/agreement.tsv",
        reliable=f"{RES}/reliability/reliable_features.tsv",
        copies=f"{RES}/reliability/copies.tsv",
    params:
        settings=RELIABILITY,
        version=VERSION,
    log:
        f"{RES}/logs/reliability.log",
    benchmark:
        f"{RES}/benchmarks/reliability.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc, input: rsc.merge_mem_mb(rsc.inputs_mb(input)),
        runtime=lambda wc, input: rsc.merge_runtime(rsc.inputs_mb(input)),
    conda:
        "../envs/radflow.yaml"
    script:
        "../scripts/reliability.py"
