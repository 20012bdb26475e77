# Input functions: the job lists that depend on a checkpoint's tables. Each is a thin call into
# radflow.plan / radflow.deidentify (where the decisions live); nothing else belongs here.


def plan():
    """The crawl checkpoint's plan (series to convert, pairs to build, extraction units).

    Called by every job's input function; read_plan reads the tables once per process and
    version of the tables (memoised), and every lookup after that is a dict access."""
    ck = checkpoints.crawl.get()
    return rw.read_plan(ck.output.series, ck.output.pair_plan, config["convert"]["scope"])


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


def all_unit_files(pattern):
    return lambda wildcards: rw.unit_files(plan(), pattern)
