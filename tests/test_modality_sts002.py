"""Issue 14 on real data: the STS_002 patient (CT, T1 MR and PET, an RTSTRUCT each) through the
whole workflow with the shipped defaults, exactly as the README documents them.

Each pair must be extracted with its own modality's parameter file, the PET keeps its stored SUVs
(Units GML), the CT's re-segmentation range keeps values below -1000 HU out of the ROI, and the
low-dose screening profile fails the CT on the rules its header breaks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from workflow_helpers import snakemake

pytestmark = [pytest.mark.testdata, pytest.mark.slow]

#: ROI name -> the modality of its image (the RTSTRUCTs are named after their image).
ROI_MODALITY = {"GTV_Mass_CT": "CT", "GTV_Mass_MR_T1": "MR", "GTV_Mass_PET": "PT"}


@pytest.fixture(scope="module")
def run(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run of the default target on STS_002 with the shipped per-modality defaults and the
    shipped low-dose lung screening profile; returns the cohort's results folder."""
    work = tmp_path_factory.mktemp("sts_modality")
    config = {"cohort": "sts", "dicom_root": str(testdata / "sts_002_ct_mr_pet_rtstruct"),
              "key_file": str(work / "key"), "crawl": {"include_derived": True},
              "protocol": {"profile": "lung-screening-ldct"}}
    (work / "cohort.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    snakemake(work, ["--cores", "2", "--configfile", str(work / "cohort.yaml")])
    return work / "results" / "sts"


def test_each_pair_uses_its_modality_file(run: Path) -> None:
    wide = pd.read_csv(run / "merge" / "features_wide.csv", keep_default_na=False)
    assert sorted(wide["roi"]) == sorted(ROI_MODALITY)
    expected = {m: f"{m}:config/params/{m.lower()}.yaml" for m in ("CT", "MR", "PT")}
    for row in wide.to_dict("records"):
        assert row["params_set"] == expected[ROI_MODALITY[row["roi"]]], row["roi"]
    # one hash per set, and three different sets
    assert wide.groupby("params_set")["params_hash"].nunique().eq(1).all()
    assert wide["params_hash"].nunique() == 3
    # every file suits its modality: no modality QC warning (a small ROI may carry the families'
    # own note, fractal-roi-too-small: the PET GTV has 555 voxels)
    warnings = {w for text in wide["qc"] for w in text.split(",") if w}
    assert not warnings & {"fixed-bin-width-on-mr", "hu-resegmentation-on-non-ct"}
    assert warnings <= {"fractal-roi-too-small"}


def test_pet_keeps_its_stored_suvs(run: Path) -> None:
    sidecars = {p: json.loads(p.read_text(encoding="utf-8"))
                for p in (run / "convert").rglob("*.json")}
    pet = [(p, s) for p, s in sidecars.items()
           if (s.get("acquisition") or {}).get("Modality") == "PT"]
    assert len(pet) == 1
    path, sidecar = pet[0]
    assert sidecar["status"] == "ok"
    assert sidecar["suv"]["method"] == "stored-suv" and sidecar["suv"]["factor"] == 1.0
    image = sitk.ReadImage(str(path.parent / Path(sidecar["nifti"]).name))
    stats = sitk.StatisticsImageFilter()
    stats.Execute(image)
    assert 20.0 < stats.GetMaximum() < 23.0  # SUVs as stored (max 21.68), not Bq/ml


def test_ct_resegmentation_keeps_padding_and_air_out(run: Path) -> None:
    wide = pd.read_csv(run / "merge" / "features_wide.csv", keep_default_na=False)
    ct = wide[wide["roi"] == "GTV_Mass_CT"].iloc[0]
    assert float(ct["original_firstorder_Minimum"]) >= -1000
    assert float(ct["original_firstorder_Maximum"]) <= 400


def test_the_screening_profile_names_the_broken_rules(run: Path) -> None:
    wide = pd.read_csv(run / "merge" / "features_wide.csv", keep_default_na=False)
    ct = wide[wide["roi"] == "GTV_Mass_CT"].iloc[0]
    assert ct["protocol"] == "lung-screening-ldct" and ct["protocol_status"] == "fail"
    assert {"tube-voltage", "standard-series"} <= set(ct["protocol_failed"].split(","))
    # the MR and PET images are not CT: the built-in modality rule fails them
    for roi in ("GTV_Mass_MR_T1", "GTV_Mass_PET"):
        row = wide[wide["roi"] == roi].iloc[0]
        assert "modality" in row["protocol_failed"].split(",")
    table = pd.read_csv(run / "qc" / "protocol.tsv", sep="\t", keep_default_na=False)
    assert {"rule", "result"} <= set(table.columns)
