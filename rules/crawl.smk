# crawl: DICOM headers (and the cohort sheet) -> series.tsv, pair_plan.tsv, rois.tsv. A checkpoint:
# the jobs of every later stage are planned from its tables (plan() in the Snakefile).


checkpoint crawl:
    input:
        sheet=[P.sheet] if P.sheet else [],
        deid=[f"{RES}/deid/actions.tsv"] if DEID else [],
        uid_map=[f"{PRIV}/deid/uid_map.tsv"] if DEID else [],
    output:
        series=f"{RES}/crawl/series.tsv",
        pair_plan=f"{RES}/crawl/pair_plan.tsv",
        rois=f"{RES}/crawl/rois.tsv",
        acquisition=f"{RES}/crawl/acquisition.tsv",
    params:
        dicom_root=(lambda w, input: rw.folder_of(input.deid)) if DEID else P.dicom_root,
        dicom_tree=DICOM_TREE,
        key_file=P.key_file,
        sources_dir=f"{PRIV}/sources",
        settings=config["crawl"],
        rois=config["rois"],
        geometry=config["geometry"],
        deidentified={"uids_replaced": not config["deid"]["retain_uids"],
                      "source_root": P.dicom_root,
                      "uid_map": f"{PRIV}/deid/uid_map.tsv"} if DEID else None,
        version=VERSION,
    log:
        f"{RES}/logs/crawl.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    conda:
        "../envs/radflow.yaml"
    script:
        "../scripts/crawl.py"
