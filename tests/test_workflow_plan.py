"""radflow.plan helpers the Snakefile calls: extraction units and the lazy tree fingerprint."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from radflow import plan as rw
from radflow.errors import ConfigError


def _plan(tmp_path) -> rw.Plan:
    series = pd.DataFrame([
        {"case_id": "c1", "series_key": k, "source": "dicom", "role": "image", "status": "ok"}
        for k in ("sA", "sB")])
    pairs = pd.DataFrame([
        {"pair_id": "p3", "case_id": "c1", "image_key": "sA", "mask_key": "sM"},
        {"pair_id": "p1", "case_id": "c1", "image_key": "sA", "mask_key": "sM"},
        {"pair_id": "p2", "case_id": "c2", "image_key": "sB", "mask_key": "sN"},
        {"pair_id": "p9", "case_id": "c2", "image_key": "", "mask_key": "sR"},  # no image
    ]).assign(status="ok", image_status="ok", mask_status="ok")
    series.to_csv(tmp_path / "series.tsv", sep="\t", index=False)
    pairs.to_csv(tmp_path / "pair_plan.tsv", sep="\t", index=False)
    return rw.read_plan(str(tmp_path / "series.tsv"), str(tmp_path / "pair_plan.tsv"), "paired")


def test_one_extraction_unit_per_image(tmp_path) -> None:
    plan = _plan(tmp_path)
    units = rw.extract_units(plan)
    assert units.to_dict("records") == [
        {"unit": "p9", "case_id": "c2", "pair_id": "p9"},
        {"unit": "sA", "case_id": "c1", "pair_id": "p1"},
        {"unit": "sA", "case_id": "c1", "pair_id": "p3"},
        {"unit": "sB", "case_id": "c2", "pair_id": "p2"},
    ]
    assert rw.unit_pair_ids(plan, "sA") == ["p1", "p3"]
    assert rw.unit_files(plan, "R/extract/{case_id}/{unit}.json") == [
        "R/extract/c2/p9.json", "R/extract/c1/sA.json", "R/extract/c2/sB.json"]
    with pytest.raises(ConfigError, match="sZ"):
        rw.unit_pair_ids(plan, "sZ")


def test_unit_wildcard_matches_series_keys_and_pair_ids() -> None:
    import re

    from radflow.keys import KEY_PATTERNS

    pattern = re.compile(KEY_PATTERNS["unit"])
    assert pattern.fullmatch("s0123456789abcdef") and pattern.fullmatch("p0123456789abcdef")
    assert not pattern.fullmatch("c0123456789ab") and not pattern.fullmatch("s0123")


def test_tree_fingerprint_is_computed_only_when_asked_and_once(tmp_path, monkeypatch) -> None:
    (tmp_path / "a.dcm").write_bytes(b"x")
    walks: list[str] = []
    real_walk = os.walk

    def counting_walk(top, *args, **kwargs):
        walks.append(str(top))
        return real_walk(top, *args, **kwargs)

    monkeypatch.setattr(os, "walk", counting_walk)
    param = rw.tree_fingerprint_param(str(tmp_path))
    assert walks == [], "parsing the Snakefile must not walk the DICOM tree"
    value = param(None)
    assert value == param(None) == rw.tree_fingerprint(str(tmp_path))
    assert len(walks) == 2  # once for the param (then cached), once for the direct call
    assert rw.tree_fingerprint_param("")(None) == ""
