"""ROI name rules: exclude, include, map (first match), unmapped policy; the name report."""

from __future__ import annotations

import pandas as pd
import pytest

from radflow.errors import ConfigError
from radflow.rois import NAME_COLUMNS, check_rules, decide, name_report
from radflow.settings import RoiSettings, from_mapping

RULES = from_mapping(RoiSettings, {
    "exclude": ["z_.*", ".*ring.*"],
    "map": {"GTV_node": "gtv_?(n|node).*", "GTV": ["GTV.*", "gtv_primary"],
            "Liver": "liver|leber"},
}, section="rois")


@pytest.mark.parametrize("name, roi, match, status", [
    ("GTV_Mass_CT", "GTV", "mapped", "ok"),
    ("gtv_primary", "GTV", "mapped", "ok"),
    ("GTVn_2", "GTV_node", "mapped", "ok"),        # the first matching entry wins
    ("GTV_node1", "GTV_node", "mapped", "ok"),
    ("LEBER", "Liver", "mapped", "ok"),            # case-insensitive
    ("liver_2", "liver_2", "unmapped", "ok"),      # whole-name match: "liver" != "liver_2"
    ("z_opt_ptv", "", "excluded", "excluded:roi-excluded"),
    ("GTV ring 5mm", "", "excluded", "excluded:roi-excluded"),  # exclude before map
    ("  Body\n", "Body", "unmapped", "ok"),        # cleaned first
])
def test_decisions(name, roi, match, status) -> None:
    d = decide(name, RULES)
    assert (d.roi, d.match, d.status) == (roi, match, status)


def test_include_and_unmapped_drop() -> None:
    rules = from_mapping(RoiSettings, {"include": ["gtv.*", "liver"], "unmapped": "drop",
                                       "map": {"GTV": "gtv.*"}})
    assert decide("GTVp", rules).roi == "GTV"
    assert decide("Liver", rules).status == "excluded:roi-unmapped"
    assert decide("Heart", rules).status == "excluded:roi-not-included"


def test_map_forms_and_validation() -> None:
    assert RULES.map[0] == ("GTV_node", ("gtv_?(n|node).*",))
    assert RULES.map[1] == ("GTV", ("GTV.*", "gtv_primary"))
    with pytest.raises(ConfigError, match=r"rois.map.GTV: '\(' is not a valid"):
        check_rules(RoiSettings(map={"GTV": "("}))
    with pytest.raises(ConfigError, match=r"rois\.exclude"):
        check_rules(RoiSettings(exclude=("[",)))
    with pytest.raises(ConfigError, match="unmapped"):
        RoiSettings(unmapped="ignore")
    with pytest.raises(ConfigError, match="contours_outside_image"):
        RoiSettings(contours_outside_image="clip")
    with pytest.raises(ConfigError, match="fractional_threshold"):
        RoiSettings(fractional_threshold=0)


def test_name_report_counts_unmatched_names_first() -> None:
    rows = []
    for case, names in {"c1": ["GTV_1", "liver_2", "z_x"], "c2": ["liver_2", "GTVp"],
                        "c3": ["liver_2", "Spleen"]}.items():
        for label, name in enumerate(names, start=1):
            d = decide(name, RULES)
            rows.append({"case_id": case, "mask_key": f"s{case}", "label": label,
                         "roi_source": d.source_name, "roi": d.roi, "match": d.match,
                         "status": d.status})
    report = name_report(pd.DataFrame(rows))
    assert list(report.columns) == NAME_COLUMNS
    assert report.to_dict("records")[:2] == [
        {"roi_source": "liver_2", "match": "unmapped", "roi": "liver_2", "count": 3,
         "n_cases": 3},
        {"roi_source": "Spleen", "match": "unmapped", "roi": "Spleen", "count": 1,
         "n_cases": 1}]
    assert set(report.loc[report["match"] == "mapped", "roi"]) == {"GTV"}
    assert report.loc[report["roi_source"] == "z_x", "match"].item() == "excluded"
    assert name_report(pd.DataFrame(columns=list(rows[0]))).empty
