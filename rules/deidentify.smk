# De-identification (README, "Privacy"): enabled with --config deidentify=true; then the crawl and
# everything downstream read results/<cohort>/deid/. The crawl of the source tree stays private:
# its tables hold source series descriptions.


checkpoint deid_crawl:
    output:
        series=f"{PRIV}/deid_crawl/series.tsv",
        pair_plan=f"{PRIV}/deid_crawl/pair_plan.tsv",
        rois=f"{PRIV}/deid_crawl/rois.tsv",
    params:
        dicom_root=P.dicom_root,
        dicom_tree=DICOM_TREE,
        key_file=P.key_file,
        sources_dir=f"{PRIV}/deid_sources",
        settings=config["crawl"],
        rois=config["rois"],
        geometry=config["geometry"],
        deidentified=None,
        version=VERSION,
    log:
        f"{RES}/logs/deid_crawl.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    conda:
        "../envs/radflow.yaml"
    script:
        "../scripts/crawl.py"


rule deidentify_one:
    input:
        source=deid_source,
    output:
        record=f"{RES}/deid/.series/{{series_key}}.json",
    params:
        dicom_root=P.dicom_root,
        key_file=P.key_file,
        settings=config["deid"],
        version=VERSION,
    log:
        f"{RES}/logs/deid/{{series_key}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/radflow.yaml"
    script:
        "../scripts/deidentify_one.py"


rule deidentify:
    input:
        records=deid_records,
    output:
        actions=f"{RES}/deid/actions.tsv",
        series=f"{RES}/deid/series.tsv",
        pseudonyms=f"{PRIV}/pseudonyms.tsv",
        uid_map=f"{PRIV}/deid/uid_map.tsv",
    params:
        sources_dir=f"{PRIV}/deid_sources",
        key_file=P.key_file,
        retain_uids=config["deid"]["retain_uids"],
        version=VERSION,
    log:
        f"{RES}/logs/deidentify.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/radflow.yaml"
    script:
        "../scripts/deidentify.py"
