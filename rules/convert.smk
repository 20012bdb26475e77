# convert: one job per series (image series, RTSTRUCT, SEG, sheet file) -> NIfTI + JSON sidecar.


rule convert_one:
    input:
        unpack(lambda w: rw.convert_inputs(plan(), RES, PRIV, w.series_key)),
    output:
        sidecar=f"{RES}/convert/{{case_id}}/{{series_key}}.json",
    params:
        geometry=config["geometry"],
        # scope is for planning only: changing it must not make Snakemake re-run conversions
        convert={k: v for k, v in config["convert"].items() if k != "scope"},
        version=VERSION,
    log:
        f"{RES}/logs/convert/{{case_id}}/{{series_key}}.log",
    benchmark:
        f"{RES}/benchmarks/convert/{{case_id}}/{{series_key}}.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc, input: rsc.convert_mem_mb(
            f"{RES}/crawl/series.tsv", wc.series_key, input.source),
        runtime=lambda wc, input: rsc.convert_runtime(
            f"{RES}/crawl/series.tsv", wc.series_key, input.source),
    conda:
        "../envs/radflow.yaml"
    script:
        "../scripts/convert_one.py"


rule convert:
    input:
        all_sidecars,
