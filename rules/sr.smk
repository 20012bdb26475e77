# sr: per extraction unit (an image and all its pairs) a DICOM SEG of each pair's mask on the
# source images (or a reference to the DICOM SEG it came from) and a Comprehensive 3D SR
# (TID 1500 Measurement Report) of its features; then the status table (README, "DICOM SR
# (TID 1500)"). Off by default (sr.enabled adds it to the all target; `radflow run sr` or
# `snakemake sr` runs it regardless). The DICOM files carry the source's patient and study:
# with deidentify: true (the de-identified tree) they go to results/<cohort>/sr/, otherwise to
# the private folder.

from radflow.sr import inputs as rsr

SR_DICOM = f"{RES}/sr" if DEID else f"{PRIV}/sr"


rule sr_one:
    input:
        unpack(lambda w: rsr.sr_inputs(plan(), RES, PRIV, w.unit)),
    output:
        status=f"{RES}/sr/{{case_id}}/{{unit}}.json",
        dicom=directory(f"{SR_DICOM}/{{case_id}}/{{unit}}"),
    params:
        # the section without its switch: turning it on does not redo the files
        settings={k: v for k, v in config["sr"].items() if k != "enabled"},
        pet_units=config["convert"]["pet_units"],
        version=VERSION,
    log:
        f"{RES}/logs/sr/{{case_id}}/{{unit}}.log",
    benchmark:
        f"{RES}/benchmarks/sr/{{case_id}}/{{unit}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/radflow.yaml"
    script:
        "../scripts/sr_one.py"


rule sr:
    input:
        records=all_unit_files(f"{RES}/sr/{{case_id}}/{{unit}}.json"),
    output:
        status=f"{RES}/sr/status.tsv",
    log:
        f"{RES}/logs/sr.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/radflow.yaml"
    script:
        "../scripts/sr.py"
