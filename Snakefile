# radflow: DICOM cohort -> NIfTI -> image/mask pairs -> PyRadiomics features -> dataset.
# This file only declares: config, paths, targets, and one rules/<stage>.smk per stage (the rule,
# its script, its package in src/radflow and its results folder share the stage's name). Every
# decision lives in src/radflow (see the README, "Development").
import os

import radflow
from radflow import plan as rw
from radflow.plan import resources as rsc
from radflow.config_check import check_config_or_exit
from radflow.keys import KEY_PATTERNS
from snakemake.utils import min_version

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config/config.yaml")


# Retired keys, --config text, schema (and its defaults): a few lines on error, exit status 1;
# RADFLOW_VERBOSE=1 or snakemake --verbose for the full report (README, "Configuration").
check_config_or_exit(config, os.path.join(workflow.basedir, "config/schema/config.schema.yaml"),
                     verbose=getattr(workflow.output_settings, "verbose", False))

P = rw.resolve_paths(config, workflow.basedir)
RES = P.results
PRIV = P.private
VERSION = radflow.__version__
DEID = rw.deidentify_on(config)  # true: everything downstream reads the de-identified tree
# Walked only when a crawl job is planned, not at every parse of this file (cluster jobs parse it).
DICOM_TREE = rw.tree_fingerprint_param(P.dicom_root)

wildcard_constraints:
    **KEY_PATTERNS,


rule all:
    input:
        f"{RES}/merge/dataset.csv",
        # reliability.enabled: the reliability stage's tables too (README, "Reliability")
        [f"{RES}/reliability/reliable_features.tsv"] if config["reliability"]["enabled"] else [],
        # analyse.enabled: the analysis tables too (README, "Analysis")
        [f"{RES}/analysis/associations.tsv"] if config["analyse"]["enabled"] else [],
        # sr.enabled: a DICOM SEG and SR (TID 1500) per pair (README, "DICOM SR (TID 1500)")
        [f"{RES}/sr/status.tsv"] if config["sr"]["enabled"] else [],
        # report.enabled: the HTML report with its QC pictures (README, "Report")
        [f"{RES}/report/index.html"] if config["report"]["enabled"] else [],
    default_target: True


include: "rules/common.smk"
include: "rules/deidentify.smk"
include: "rules/crawl.smk"
include: "rules/convert.smk"
include: "rules/pair.smk"
include: "rules/extract.smk"
include: "rules/protocol.smk"
include: "rules/merge.smk"
include: "rules/reliability.smk"
include: "rules/analyse.smk"
include: "rules/sr.smk"
include: "rules/report.smk"


# The end-of-run summary (README, "Set-up"): where the results are, the status counts per stage,
# warnings. Not on dry runs; `radflow run` passes --no-hooks and prints it itself.
onsuccess:
    from radflow.summary import print_run_summary

    print_run_summary(RES, config["merge"], convert_scope=config["convert"]["scope"])


onerror:
    from radflow.summary import print_run_summary

    print_run_summary(RES, config["merge"], failed=True,
                      convert_scope=config["convert"]["scope"])
