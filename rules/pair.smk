# pair: one job per image x mask x label -> pair record (mask on the image grid); then the table.


rule pair_one:
    input:
        unpack(lambda w: rw.pair_sidecars(plan(), RES, w.pair_id)),
        plan=f"{RES}/crawl/pairs/{{pair_id}}.json",
    output:
        record=f"{RES}/pair/{{pair_id}}.json",
    params:
        settings=config["pair"],
        version=VERSION,
    log:
        f"{RES}/logs/pair/{{pair_id}}.log",
    benchmark:
        f"{RES}/benchmarks/pair/{{pair_id}}.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc, input: rsc.pair_mem_mb(input.get("image")),
        runtime=lambda wc, input: rsc.pair_runtime(input.get("image")),
    conda:
        "../envs/radflow.yaml"
    script:
        "../scripts/pair_one.py"


rule pair:
    input:
        records=all_pair_files(f"{RES}/pair/{{pair_id}}.json"),
        rois=f"{RES}/crawl/rois.tsv",
    output:
        pairs=f"{RES}/pair/pairs.tsv",
        roi_names=f"{RES}/pair/roi_names.tsv",
    log:
        f"{RES}/logs/pair.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/radflow.yaml"
    script:
        "../scripts/pair.py"
