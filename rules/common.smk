# Input functions: the job lists that depend on a checkpoint's tables. Each is a thin call into
# radflow.plan / radflow.deidentify (where the decisions live); nothing else belongs here.


_PLAN = []


def plan():
    """The crawl checkpoint's plan (series to convert, pairs to build, extraction units).

    Called by every job's input function. Until the crawl checkpoint is complete,
    checkpoints.crawl.get() raises (Snakemake re-evaluates the job after the crawl); once it
    succeeded, the crawl's tables are final for this process, so the plan is kept and every call
    after that is one list access (no checkpoint look-up, no stat of the tables)."""
    if not _PLAN:
        ck = checkpoints.crawl.get()
        _PLAN.append(rw.read_plan(ck.output.series, ck.output.pair_plan,
                                  config["convert"]["scope"]))
    return _PLAN[0]


def deid_source(wildcards):
    checkpoints.deid_crawl.get()
    return f"{PRIV}/deid_sources/{wildcards.series_key}.json"


def deid_records(wildcards):
    from radflow.deidentify import unit_keys  # deferred: most runs do not de-identify

    ck = checkpoints.deid_crawl.get()
    keys = unit_keys(ck.output.series, f"{PRIV}/deid_sources")
    return expand(f"{RES}/deid/.series/{{series_key}}.json", series_key=keys)


def all_sidecars(wildcards):
    return rw.all_sidecars(plan(), RES)


def all_pair_files(pattern):
    return lambda wildcards: expand(pattern, pair_id=plan().pairs["pair_id"])


def unit_pairs(wildcards):
    """The pair records of one extraction unit (an image and all its ROIs)."""
    return expand(f"{RES}/pair/{{pair_id}}.json", pair_id=rw.unit_pair_ids(plan(), wildcards.unit))


def unit_params(wildcards):
    """The PyRadiomics params file of the unit's modality ([] when it has none)."""
    return rw.extract_params(plan(), P.pyradiomics_params, wildcards.unit)


def unit_params_set(wildcards):
    """The unit's modality, params key and file, and normalisation (for the job's provenance)."""
    return rw.unit_params_set(plan(), P.pyradiomics_params, wildcards.unit)


def all_unit_files(pattern):
    return lambda wildcards: rw.unit_files(plan(), pattern)
