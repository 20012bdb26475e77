"""The files an ``sr_one`` job reads (the Snakefile's input function; a few dict look-ups)."""

from __future__ import annotations

from radflow.errors import ConfigError
from radflow.plan import Plan


def sr_inputs(plan: Plan, results: str, private: str, unit: str) -> dict[str, list[str] | str]:
    """Inputs of ``sr_one`` for one extraction unit.

    Parameters
    ----------
    plan
        The crawl checkpoint's plan.
    results, private
        The cohort's results and private folders.
    unit
        The extraction unit (an image's series key, or the pair id of a pair without image).

    Returns
    -------
    dict
        ``pairs`` (the pair records), ``features`` and ``extract_status`` (the unit's extract
        outputs), ``sources`` (the crawl's source records of the image and the masks of the
        unit's pairs that are converted; their files are the DICOM the SEG and SR reference).
    """
    if unit not in plan.units:
        raise ConfigError(f"extraction unit {unit} is not in the crawl's pair_plan.tsv")
    case, pair_ids = plan.units[unit]
    keys = [unit]
    for pair_id in pair_ids:
        row = plan.pair_rows.get(pair_id)
        if row is not None and row["mask_key"]:
            keys.append(row["mask_key"])
    sources = [f"{private}/sources/{k}.json" for k in dict.fromkeys(keys) if k in plan.converted]
    return {"pairs": [f"{results}/pair/{p}.json" for p in pair_ids],
            "features": f"{results}/extract/{case}/{unit}.parquet",
            "extract_status": f"{results}/extract/{case}/{unit}.json",
            "sources": sources}


__all__ = ["sr_inputs"]
