# extract: one job per image: all its ROIs are extracted with the image read once (an image's
# series key is its unit; a pair without an image is a unit of its own).


rule extract_one:
    input:
        pairs=unit_pairs,
        params=P.pyradiomics_params,
    output:
        features=f"{RES}/extract/{{case_id}}/{{unit}}.parquet",
        status=f"{RES}/extract/{{case_id}}/{{unit}}.json",
    params:
        laws=config["laws"],
        version=VERSION,
    log:
        f"{RES}/logs/extract/{{case_id}}/{{unit}}.log",
    benchmark:
        f"{RES}/benchmarks/extract/{{case_id}}/{{unit}}.tsv"
    threads: config["extract"]["threads"]
    # longest units first (modelled seconds; 0 until the pair records exist), so that the
    # biggest image does not start last and run alone (rsc.extract_priority)
    priority: lambda wc, input: rsc.extract_priority(input.pairs, input.params, bool(config["laws"]))
    resources:
        mem_mb=lambda wc, input: rsc.extract_mem_mb(input.pairs, input.params,
            laws=bool(config["laws"]), floor_mb=config["extract"]["mem_mb"]),
        runtime=lambda wc, input: rsc.extract_runtime(input.pairs, input.params,
            laws=bool(config["laws"]), floor_min=config["extract"]["runtime"]),
    conda:
        "../envs/radflow.yaml"
    script:
        "../scripts/extract.py"


rule extract:
    input:
        all_unit_files(f"{RES}/extract/{{case_id}}/{{unit}}.parquet"),
