# radflow: DICOM cohort -> NIfTI -> image/mask pairs -> PyRadiomics features -> dataset.
# This file only declares; every decision lives in src/radflow (see README, "How it works").
import os

import radflow
from radflow import deidentify as rd
from radflow import resources as rsc
from radflow import workflow as rw
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config/config.yaml")


validate(config, os.path.join(workflow.basedir, "config/schema/config.schema.yaml"))

P = rw.resolve_paths(config, workflow.basedir)
RES = P.results
PRIV = P.private
VERSION = radflow.__version__
DEID = rw.deidentify_on(config)  # true: everything downstream reads the de-identified tree
# Walked only when a crawl job is planned, not at every parse of this file (cluster jobs parse it).
DICOM_TREE = rw.tree_fingerprint_param(P.dicom_root)

wildcard_constraints:
    **rw.KEY_PATTERNS,


def plan():
    """The crawl checkpoint's plan (series to convert, pairs to build)."""
    ck = checkpoints.crawl.get()
    return rw.read_plan(ck.output.series, ck.output.pairs, config["convert"]["scope"])


def all_sidecars(wildcards):
    c = plan().convert
    return [rw.sidecar_path(RES, cid, key) for cid, key in zip(c.case_id, c.series_key)]


def all_pair_files(pattern):
    return lambda wildcards: expand(pattern, pair_id=plan().pairs["pair_id"])


rule all:
    input:
        f"{RES}/merge/dataset.csv",
    default_target: True


def deid_source(wildcards):
    checkpoints.deid_crawl.get()
    return f"{PRIV}/deid_sources/{wildcards.series_key}.json"


def deid_records(wildcards):
    ck = checkpoints.deid_crawl.get()
    keys = rd.unit_keys(ck.output.series, f"{PRIV}/deid_sources")
    return expand(f"{RES}/deid/.series/{{series_key}}.json", series_key=keys)


# De-identification (README, "Privacy"). The crawl of the source tree stays private: its tables
# hold source series descriptions.
checkpoint deid_crawl:
    output:
        series=f"{PRIV}/deid_crawl/series.tsv",
        pairs=f"{PRIV}/deid_crawl/pairs.tsv",
        rois=f"{PRIV}/deid_crawl/rois.tsv",
    params:
        dicom_root=P.dicom_root,
        dicom_tree=DICOM_TREE,
        key_file=P.key_file,
        sources_dir=f"{PRIV}/deid_sources",
        settings=config["crawl"],
        rois=config["rois"],
        fallback_modalities=config["pair"]["fallback_modalities"],
        deidentified=None,
        version=VERSION,
    log:
        f"{RES}/logs/deid_crawl.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    conda:
        "envs/radflow.yaml"
    script:
        "scripts/crawl.py"


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
        "envs/radflow.yaml"
    script:
        "scripts/deidentify_one.py"


rule deidentify:
    input:
        records=deid_records,
    output:
        actions=f"{RES}/deid/actions.tsv",
        series=f"{RES}/deid/series.tsv",
        pseudonyms=f"{PRIV}/pseudonyms.tsv",
    params:
        sources_dir=f"{PRIV}/deid_sources",
        key_file=P.key_file,
        version=VERSION,
    log:
        f"{RES}/logs/deidentify.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "envs/radflow.yaml"
    script:
        "scripts/deidentify.py"


checkpoint crawl:
    input:
        sheet=[P.sheet] if P.sheet else [],
        deid=[f"{RES}/deid/actions.tsv"] if DEID else [],
    output:
        series=f"{RES}/crawl/series.tsv",
        pairs=f"{RES}/crawl/pairs.tsv",
        rois=f"{RES}/crawl/rois.tsv",
    params:
        dicom_root=(lambda w, input: rw.folder_of(input.deid)) if DEID else P.dicom_root,
        dicom_tree=DICOM_TREE,
        key_file=P.key_file,
        sources_dir=f"{PRIV}/sources",
        settings=config["crawl"],
        rois=config["rois"],
        fallback_modalities=config["pair"]["fallback_modalities"],
        deidentified={"uids_replaced": not config["deid"]["retain_uids"],
                      "source_root": P.dicom_root,
                      "sources_dir": f"{PRIV}/deid_sources"} if DEID else None,
        version=VERSION,
    log:
        f"{RES}/logs/crawl.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    conda:
        "envs/radflow.yaml"
    script:
        "scripts/crawl.py"


rule convert_one:
    input:
        unpack(lambda w: rw.convert_inputs(plan(), RES, PRIV, w.series_key)),
    output:
        sidecar=f"{RES}/convert/{{case_id}}/{{series_key}}.json",
    params:
        settings=config["crawl"]["geometry"],
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
        "envs/radflow.yaml"
    script:
        "scripts/convert.py"


rule convert:
    input:
        all_sidecars,


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
        "envs/radflow.yaml"
    script:
        "scripts/pair.py"


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
        "envs/radflow.yaml"
    script:
        "scripts/pair_table.py"


def unit_pairs(wildcards):
    return expand(f"{RES}/pair/{{pair_id}}.json", pair_id=rw.unit_pair_ids(plan(), wildcards.unit))


def all_unit_files(pattern):
    return lambda wildcards: rw.unit_files(plan(), pattern)


# One job per image: all its ROIs are extracted with the image read once (an image's series key
# is its unit; a pair without an image is a unit of its own).
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
    resources:
        mem_mb=lambda wc, input: rsc.extract_mem_mb(input.pairs, input.params,
            laws=bool(config["laws"]), floor_mb=config["extract"]["mem_mb"]),
        runtime=lambda wc, input: rsc.extract_runtime(input.pairs, input.params,
            laws=bool(config["laws"]), floor_min=config["extract"]["runtime"]),
    conda:
        "envs/radflow.yaml"
    script:
        "scripts/extract.py"


rule extract:
    input:
        all_unit_files(f"{RES}/extract/{{case_id}}/{{unit}}.parquet"),


rule merge:
    input:
        features=all_unit_files(f"{RES}/extract/{{case_id}}/{{unit}}.parquet"),
        statuses=all_unit_files(f"{RES}/extract/{{case_id}}/{{unit}}.json"),
        sidecars=all_sidecars,
        pairs=f"{RES}/pair/pairs.tsv",
        series=f"{RES}/crawl/series.tsv",
        clinical=[P.clinical] if P.clinical else [],
    output:
        features=f"{RES}/merge/features.parquet",
        features_wide=f"{RES}/merge/features_wide.csv",
        dataset_parquet=f"{RES}/merge/dataset.parquet",
        dataset_csv=f"{RES}/merge/dataset.csv",
    params:
        clinical_id=config["clinical_id"],
        clinical_sheet=config["clinical_sheet"],
        key_file=P.key_file,
        join_report=f"{RES}/merge/clinical_join_report.tsv",
        run_summary=f"{RES}/qc/run_summary.tsv",
        settings=config["merge"],
        strict=config["strict"],
        version=VERSION,
    log:
        f"{RES}/logs/merge.log",
    benchmark:
        f"{RES}/benchmarks/merge.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc, input: rsc.merge_mem_mb(input.size_mb),
        runtime=lambda wc, input: rsc.merge_runtime(input.size_mb),
    conda:
        "envs/radflow.yaml"
    script:
        "scripts/merge.py"
