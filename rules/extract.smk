# extract: one job per image: all its ROIs are extracted with the image read once (an image's
# series key is its unit; a pair without an image is a unit of its own).

# radflow's filter image types (extract.image_types) enter the memory/run-time model (the
# Laws cost model stands for all of them).
CUSTOM_IMAGE_TYPES = bool(config["extract"]["image_types"])
# radflow's own feature families (extract.families; a family not listed is on) add their cost.
FAMILIES_ON = any((f or {}).get("enabled", True) is not False
                  for f in config["extract"]["families"].values())
COST_FLAGS = (CUSTOM_IMAGE_TYPES, FAMILIES_ON)


rule extract_one:
    input:
        pairs=unit_pairs,
        # the params file of the image's modality (extract.params; README "Modality defaults")
        params=unit_params,
    output:
        features=f"{RES}/extract/{{case_id}}/{{unit}}.parquet",
        status=f"{RES}/extract/{{case_id}}/{{unit}}.json",
        # landmarks and Minkowski curves of radflow's own families (records.side)
        side=f"{RES}/extract/{{case_id}}/{{unit}}.side.json",
    params:
        image_types=config["extract"]["image_types"],
        families=config["extract"]["families"],
        params_set=unit_params_set,
        version=VERSION,
    log:
        f"{RES}/logs/extract/{{case_id}}/{{unit}}.log",
    benchmark:
        f"{RES}/benchmarks/extract/{{case_id}}/{{unit}}.tsv"
    threads: config["extract"]["threads"]
    # longest units first (modelled seconds; 0 until the pair records exist), so that the
    # biggest image does not start last and run alone (rsc.extract_priority)
    priority: lambda wc, input: rsc.extract_priority(input.pairs, input.params, *COST_FLAGS)
    resources:
        mem_mb=lambda wc, input: rsc.extract_mem_mb(input.pairs, input.params,
            custom_filters=CUSTOM_IMAGE_TYPES, families=FAMILIES_ON,
            floor_mb=config["extract"]["mem_mb"]),
        runtime=lambda wc, input: rsc.extract_runtime(input.pairs, input.params,
            custom_filters=CUSTOM_IMAGE_TYPES, families=FAMILIES_ON,
            floor_min=config["extract"]["runtime"]),
    conda:
        "../envs/radflow.yaml"
    script:
        "../scripts/extract_one.py"


rule extract:
    input:
        all_unit_files(f"{RES}/extract/{{case_id}}/{{unit}}.parquet"),
