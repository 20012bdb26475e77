"""IBSI 1 codes of radflow's features (``src/radflow/ibsi/codes.tsv``) and the IBSI mode preset.

The table must cover every feature radflow can emit (PyRadiomics' classes, deprecated ones
included, and radflow's own families), with a well-formed code or an explicit empty one and a
note; its codes must be those the IBSI manual prints for the named feature (checked against the
reference values parsed from the manual, when the reference data is present).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from radflow.errors import ConfigError, ExtractionError
from radflow.features.fractal import FEATURE_NAMES as FRACTAL_NAMES
from radflow.features.minkowski import FEATURE_NAMES as MINKOWSKI_NAMES
from radflow.features.semantic import SemanticSettings, semantic_features
from radflow.ibsi import (
    codes_table,
    ibsi_adjust,
    ibsi_bin_origin,
    ibsi_code,
    ibsi_preset,
    texture_aggregation,
    with_ibsi_codes,
)
from radflow.ibsi.codes import CODE_RE, COLUMNS, parse_codes
from radflow.ibsi.preset import FILTERS, FIXED_BIN_SIZE, RESAMPLING_GRID
from radflow.ibsi.reference import read_reference_csv
from radflow.radiomics_adapter import feature_names
from radflow.radiomics_adapter.features import ibsi_bin_edges

PYRADIOMICS_CLASSES = ("firstorder", "glcm", "gldm", "glrlm", "glszm", "ngtdm", "shape", "shape2D")


def _family_names() -> set[tuple[str, str]]:
    """Every (class, feature) of radflow's families, semantic ones from a run on PET."""
    arr = np.zeros((7, 9, 9), np.float32)
    arr[2:5, 2:7, 3:6] = 4.0
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((1.5, 1.5, 3.0))
    mask = sitk.GetImageFromArray((arr > 0).astype(np.uint8))
    mask.CopyInformation(image)
    semantic = semantic_features(image, mask, SemanticSettings(), modality="PT").features
    names = {tuple(name.split("_", 1)) for name in semantic}
    names |= {("fractal", f) for f in FRACTAL_NAMES} | {("minkowski", f) for f in MINKOWSKI_NAMES}
    return names  # type: ignore[return-value]


def test_every_feature_radflow_can_emit_is_in_the_table_and_nothing_else() -> None:
    emitted = {(cls, f) for cls, feats in feature_names().items() for f in feats}
    assert {cls for cls, _ in emitted} == set(PYRADIOMICS_CLASSES)
    emitted |= _family_names()
    table = set(codes_table())
    assert emitted - table == set(), "features without a row in codes.tsv"
    assert table - emitted == set(), "rows of codes.tsv radflow cannot emit"


def test_rows_are_well_formed() -> None:
    for (cls, feature), entry in codes_table().items():
        if entry.ibsi_code:
            assert CODE_RE.match(entry.ibsi_code), (cls, feature)
            assert CODE_RE.match(entry.aggregation_code), (cls, feature)
            assert CODE_RE.match(entry.aggregation_code_force2d), (cls, feature)
            assert entry.ibsi_name and entry.ibsi_family and entry.source.startswith("ibsi-doc@")
        else:
            assert entry.note, f"{cls} {feature}: an empty code needs a note"
            assert not (entry.adjust or entry.requires or entry.aggregation_code)


def test_codes_are_unique_per_aggregation_among_pyradiomics_features() -> None:
    for aggregation in ("3D", "2.5D"):
        codes = Counter(e.code({"force2D": aggregation == "2.5D"}, adjusted=True)
                        for (cls, _), e in codes_table().items()
                        if cls in PYRADIOMICS_CLASSES and e.ibsi_code)
        assert [c for c, n in codes.items() if n > 1] == []


def test_aggregation_codes_follow_the_family() -> None:
    expected = {"shape": ("DHQ4", "DHQ4"), "firstorder": ("DHQ4", "DHQ4"),
                "glcm": ("ITBB", "JJUI"), "glrlm": ("ITBB", "JJUI"), "glszm": ("KOBO", "62GR"),
                "gldm": ("KOBO", "62GR"), "ngtdm": ("KOBO", "62GR")}
    for (cls, feature), e in codes_table().items():
        if e.ibsi_code and cls in expected:
            assert (e.aggregation_code, e.aggregation_code_force2d) == expected[cls], feature


def test_codes_match_the_ibsi_manual(testdata: Path) -> None:
    """Every coded row names the feature the manual prints that code under (reference values
    parsed from the manual's source; identifiers corrected where that source is wrong)."""
    refs = read_reference_csv(testdata / "ibsi1_digital_phantom" / "reference_values"
                              / "ibsi1_digital_phantom_reference_values_manual.csv")
    manual = {r.ibsi_code: (r.family, r.feature) for r in refs}
    assert len(manual) == len({(r.family, r.feature) for r in refs}), "one code per feature"
    for (cls, feature), e in codes_table().items():
        if e.ibsi_code:
            assert manual.get(e.ibsi_code) == (e.ibsi_family, e.ibsi_name), (cls, feature)


def test_code_of_a_row() -> None:
    assert ibsi_code("shape", "VoxelVolume") == "YEKZ"
    assert ibsi_code("glcm", "Contrast") == "ACUI/ITBB"
    assert ibsi_code("glcm", "Contrast", settings={"force2D": True}) == "ACUI/JJUI"
    assert ibsi_code("glszm", "SmallAreaEmphasis", settings={"force2D": True}) == "5QRC/62GR"
    assert ibsi_code("glcm", "Contrast", settings={"symmetricalGLCM": False}) == ""
    assert ibsi_code("ngtdm", "Busyness", settings={"weightingNorm": "euclidean"}) == ""
    assert ibsi_code("firstorder", "Mean", settings={"weightingNorm": "euclidean"}) == "Q4LE"
    assert ibsi_code("firstorder", "Energy") == "N8CA"
    assert ibsi_code("firstorder", "Energy", settings={"voxelArrayShift": 1000}) == ""
    assert ibsi_code("firstorder", "Kurtosis") == ""
    assert ibsi_code("firstorder", "Kurtosis", adjusted=True) == "IPH6"
    assert ibsi_code("glcm", "MCC") == ""
    assert ibsi_code("size", "VoxelVolume") == "YEKZ"
    assert ibsi_code("suv", "SUVpeak") == "0F91"
    assert ibsi_code("nosuch", "Feature") == ""
    assert texture_aggregation(None) == "3D"
    assert texture_aggregation({"force2D": True}) == "2.5D"
    assert texture_aggregation({"weightingNorm": "manhattan"}) is None


def test_malformed_tables_are_refused() -> None:
    header = "\t".join(COLUMNS)
    good = "shape\tVoxelVolume\tYEKZ\tVolume\tMorph\tDHQ4\tDHQ4\t\t\t\tibsi-doc@x"
    assert parse_codes(f"# comment\n{header}\n{good}\n")[("shape", "VoxelVolume")].ibsi_code \
        == "YEKZ"
    bad = [good.replace("YEKZ", "yekz"), good.replace("DHQ4\tDHQ4", "DHQ4\t"),
           "shape\tX\t\t\t\t\t\t\t\t\t", good.replace("\t\t\t\t", "\tsquare\t\t\t"),
           good.replace("\t\t\t\t", "\t\tvoxelArrayShift=zero\t\t"), good + "\textra"]
    for line in bad:
        with pytest.raises(ConfigError):
            parse_codes(f"{header}\n{line}\n")
    with pytest.raises(ConfigError, match="twice"):
        parse_codes(f"{header}\n{good}\n{good}\n")
    with pytest.raises(ConfigError, match="header"):
        parse_codes(f"{good}\n")


def test_adjustments_and_codes_of_rows() -> None:
    rows = [("original", "firstorder", "Kurtosis", 2.645),
            ("original", "shape", "MinorAxisLength", 9.2449),
            ("original", "shape", "VoxelVolume", 592.0),
            ("log-sigma-1-0-mm-3D", "firstorder", "Kurtosis", 4.0),
            ("original", "glcm", "Contrast", 5.0)]
    adjusted = ibsi_adjust(rows, voxel_volume=8.0)
    assert adjusted[0][3] == pytest.approx(-0.355)
    assert adjusted[1][3] == pytest.approx(9.2449 * math.sqrt(74 / 73))
    assert adjusted[2:] == [rows[2], ("log-sigma-1-0-mm-3D", "firstorder", "Kurtosis", 1.0),
                            rows[4]]
    coded = with_ibsi_codes(rows, ibsi_mode=True, voxel_volume=8.0)
    assert [c[3] for c in coded] == ["IPH6", "P9VJ", "YEKZ", "IPH6", "ACUI/ITBB"]
    # without the voxel volume the axis length keeps PyRadiomics' value and gets no code
    no_volume = with_ibsi_codes(rows, ibsi_mode=True)
    assert no_volume[1] == ("original", "shape", "MinorAxisLength", "", 9.2449)
    default = with_ibsi_codes(rows, settings={"force2D": True})
    assert [c[3] for c in default] == ["", "", "YEKZ", "", "ACUI/JJUI"]
    assert [c[4] for c in default] == [r[3] for r in rows]
    # radflow's size family brings its own voxel count
    size = [("original", "size", "MajorAxisLength", 10.0), ("original", "size", "VoxelCount", 5.0)]
    assert ibsi_adjust(size)[0][3] == pytest.approx(10.0 * math.sqrt(5 / 4))


def test_preset_sets_what_pyradiomics_allows_and_lists_the_rest() -> None:
    params = {"setting": {"binWidth": 25, "voxelArrayShift": 1000, "weightingNorm": "manhattan",
                          "symmetricalGLCM": False, "resegmentShape": True,
                          "resampledPixelSpacing": [2, 2, 2], "interpolator": "sitkBSpline",
                          "resegmentRange": [-1000, 400]},
              "imageType": {"Original": {}, "LoG": {"sigma": [1.0]}}}
    out, deviations = ibsi_preset(params)
    assert params["setting"]["voxelArrayShift"] == 1000  # not modified
    setting = out["setting"]
    assert setting["voxelArrayShift"] == 0 and setting["symmetricalGLCM"] is True
    assert "weightingNorm" not in setting and setting["resegmentShape"] is False
    assert setting["binWidth"] == 25 and setting["resampledPixelSpacing"] == [2, 2, 2]
    assert deviations == [FIXED_BIN_SIZE, RESAMPLING_GRID, FILTERS]
    out, deviations = ibsi_preset(params, radflow_resampling=True, radflow_binning=True)
    assert "resampledPixelSpacing" not in out["setting"] and "interpolator" not in out["setting"]
    assert deviations == [FILTERS]
    assert ibsi_preset({"setting": {"binCount": 32}})[1] == []
    assert ibsi_bin_origin(params) == -1000.0
    assert ibsi_bin_origin({"setting": {"binWidth": 25}}) == "minimum"
    assert ibsi_bin_origin({"setting": {"resegmentRange": [-3, 3],
                                        "resegmentMode": "sigma"}}) == "minimum"
    assert ibsi_bin_origin({"setting": {"binCount": 16}}) is None


def test_ibsi_bin_edges_give_the_ibsi_discretisation() -> None:
    values = np.array([-990.0, -975.0, -900.5, 0.0, 399.0, 400.0])
    edges = ibsi_bin_edges(values, 25.0, -1000.0)
    assert np.array_equal(np.digitize(values, edges), np.floor((values + 1000) / 25) + 1)
    edges = ibsi_bin_edges(values, 25.0, "minimum")
    assert np.digitize(values, edges)[0] == 1 and edges[0] == -990.0
    with pytest.raises(ExtractionError, match="below the first bin"):
        ibsi_bin_edges(values, 25.0, -500.0)
