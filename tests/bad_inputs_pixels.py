"""Bad-input cases about pixel data: transfer syntaxes, multi-frame objects, 4-D series,
stored values and rescale (collected in bad_inputs_corpus.CASES)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from bad_inputs_base import (
    CLEAN,
    COLS,
    INTERCEPT,
    ORIGIN,
    SPACING,
    STORED,
    Case,
    N,
    clean,
    study_of,
    uid,
)
from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from radflow.demo.synthetic import Patient
from radflow.demo.synthetic_multiframe import recompress, write_enhanced, write_legacy_converted

# --- transfer syntaxes ---------------------------------------------------------------------------

def _compress(syntax: Any, **options: Any) -> Callable[[int, Dataset], None]:
    return lambda k, ds: ds.compress(syntax, **options)


def _recompressed(syntax: Any) -> Callable[[Path, Patient], None]:
    def build(folder: Path, patient: Patient) -> None:
        for f in clean(folder, patient):
            recompress(f, syntax)
    return build


#: 8-bit variant for JPEG baseline (8-bit only): MR, no rescale.
STORED8 = ((STORED - STORED.min()) // 4).astype(np.uint16)


def _to_8_bit(k: int, ds: Dataset) -> None:
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = STORED8[k].astype(np.uint8).tobytes()


def _jpeg_baseline(folder: Path, patient: Patient) -> None:
    for f in clean(folder, patient, stored=STORED8, modality="MR", intercept=0.0,
                   per_slice=_to_8_bit):
        recompress(f, JPEGBaseline8Bit, quality=100)


def near(reference: np.ndarray, max_abs: float) -> Callable[[Any, dict[str, Any]], None]:
    """A lossy codec: within ``max_abs`` of the original everywhere (stated per codec)."""
    def check(image: Any, info: dict[str, Any]) -> None:
        import SimpleITK as sitk

        diff = np.abs(sitk.GetArrayFromImage(image).astype(np.float64) - reference)
        assert 0 < diff.max() <= max_abs, diff.max()
    return check


TRANSFER_SYNTAX_CASES = [
    Case("ts-explicit-little", lambda f, p: clean(f, p), {"#1": "ok"}, expect={"#1": CLEAN}),
    Case("ts-implicit-little", lambda f, p: clean(f, p, transfer_syntax=ImplicitVRLittleEndian),
         {"#1": "ok"}, expect={"#1": CLEAN}),
    Case("ts-big-endian", lambda f, p: clean(f, p, transfer_syntax=ExplicitVRBigEndian),
         {"#1": "ok"}, expect={"#1": CLEAN}),
    Case("ts-deflated", lambda f, p: clean(f, p, transfer_syntax=DeflatedExplicitVRLittleEndian),
         {"#1": "ok"}, expect={"#1": CLEAN}),
    Case("ts-rle", lambda f, p: clean(f, p, per_slice=_compress(RLELossless)), {"#1": "ok"},
         expect={"#1": CLEAN}),
    Case("ts-jpeg-ls-lossless", lambda f, p: clean(f, p, per_slice=_compress(JPEGLSLossless)),
         {"#1": "ok"}, expect={"#1": CLEAN}),
    # JPEG-LS near-lossless guarantees |error| <= NEAR (here 3)
    Case("ts-jpeg-ls-near-lossless",
         lambda f, p: clean(f, p, per_slice=_compress(JPEGLSNearLossless, jls_error=3)),
         {"#1": "ok"}, expect={"#1": near(CLEAN, 3)}),
    Case("ts-j2k-lossless", lambda f, p: clean(f, p, per_slice=_compress(JPEG2000Lossless)),
         {"#1": "ok"}, expect={"#1": CLEAN}),
    # J2K lossy at compression ratio 4 on the smooth series: <= 16 (measured 1-8); equality
    # with GDCM's own decoder is asserted separately
    Case("ts-j2k-lossy", lambda f, p: clean(f, p, per_slice=_compress(JPEG2000, j2k_cr=[4])),
         {"#1": "ok"}, expect={"#1": near(CLEAN, 16)}),
    Case("ts-jpeg-lossless-p14", _recompressed(JPEGLossless), {"#1": "ok"},
         expect={"#1": CLEAN}),
    Case("ts-jpeg-lossless-sv1", _recompressed(JPEGLosslessSV1), {"#1": "ok"},
         expect={"#1": CLEAN}),
    # JPEG baseline (8-bit) at quality 100: all quantisation steps are 1, what is left is the
    # rounding of the DCT (measured max 1; at quality 95 it was 6); bound 2
    Case("ts-jpeg-baseline", _jpeg_baseline, {"#1": "ok"},
         expect={"#1": near(STORED8.astype(np.float64), 2)}),
]


# --- enhanced and legacy-converted multi-frame ------------------------------------------------

def _positions(order: list[int] | None = None) -> list[tuple[float, float, float]]:
    order = order if order is not None else list(range(N))
    return [(ORIGIN[0], ORIGIN[1], ORIGIN[2] + k * SPACING[2]) for k in order]


def _enhanced(modality: str) -> Callable[[Path, Patient], None]:
    order = [3, 0, 4, 1, 2]   # frames written out of order: sorted along the normal

    def build(folder: Path, patient: Patient) -> None:
        slopes = [1.0, 2.0, 0.5, 1.0, 4.0]
        stored = np.stack([np.round((CLEAN[k] - INTERCEPT) / slopes[k]) for k in order])
        write_enhanced(folder / "enhanced.dcm", stored.astype(np.int16), patient=patient,
                       study=study_of(patient), series_uid=uid(patient), modality=modality,
                       positions=_positions(order), pixel_spacing=(SPACING[1], SPACING[0]),
                       slope=[slopes[k] for k in order], intercept=INTERCEPT)
    return build


def _enhanced_expected() -> np.ndarray:
    slopes = [1.0, 2.0, 0.5, 1.0, 4.0]
    return np.stack([np.round((CLEAN[k] - INTERCEPT) / slopes[k]) * slopes[k] + INTERCEPT
                     for k in range(N)])


def _legacy(folder: Path, patient: Patient) -> None:
    scratch = folder / "single-frame"
    files = clean(scratch, patient, name="source", slope=[1.0, 2.0, 1.0, 0.5, 1.0])
    write_legacy_converted(files, folder / "legacy.dcm", series_uid=uid(patient))
    shutil.rmtree(scratch)


_SLOPES = [1.0, 2.0, 1.0, 0.5, 1.0]
MULTIFRAME_CASES = [
    Case("enhanced-ct", _enhanced("CT"), {"#1": "ok"}, expect={"#1": _enhanced_expected()}),
    Case("enhanced-mr", _enhanced("MR"), {"#1": "ok"}, expect={"#1": _enhanced_expected()}),
    Case("legacy-converted-ct", _legacy, {"#90": "ok"},
         expect={"#90": np.stack([STORED[k] * _SLOPES[k] + INTERCEPT for k in range(N)])}),
]


# --- 4-D series ----------------------------------------------------------------------------------

def _volumes(folder: Path, patient: Patient, n: int, attributes: Callable[[int], dict[str, Any]],
             **kwargs: Any) -> None:
    """``n`` copies of the clean series under one UID; copy ``v`` holds ``STORED + 100 v``."""
    for v in range(n):
        clean(folder, patient, stored=(STORED + 100 * v).astype(np.int16), uid_seed=f"v{v}",
              file_names=[f"V{v}_{k}.dcm" for k in range(N)], acquisition=attributes(v),
              modality="MR", intercept=0.0, **kwargs)


def _private_b(group: int, creator: str, values: Callable[[int], Any], vr: str) \
        -> Callable[[Path, Patient], None]:
    def build(folder: Path, patient: Patient) -> None:
        for v in range(2):
            def plant(k: int, ds: Dataset, v: int = v) -> None:
                block = ds.private_block(group, creator, create=True)
                block.add_new(0x0C if group == 0x0019 else 0x39, vr, values(v))
            clean(folder, patient, stored=(STORED + 100 * v).astype(np.int16), uid_seed=f"v{v}",
                  file_names=[f"V{v}_{k}.dcm" for k in range(N)], modality="MR", intercept=0.0,
                  per_slice=plant)
    return build


def _copy(v: int) -> np.ndarray:
    return (STORED + 100 * v).astype(np.float64)


def _enhanced_4d(**dims: Any) -> Callable[[Path, Patient], None]:
    def build(folder: Path, patient: Patient) -> None:
        stored = np.concatenate([STORED + 100 * v for v in range(2)]).astype(np.int16)
        write_enhanced(folder / "4d.dcm", stored, patient=patient, study=study_of(patient),
                       series_uid=uid(patient), positions=_positions() * 2,
                       pixel_spacing=(SPACING[1], SPACING[0]), **dims)
    return build


def _ambiguous_dwi(folder: Path, patient: Patient) -> None:
    # b = 0 once and b = 800 in two gradient directions per position: radflow does not split
    # by direction, so the b = 800 group still has two images per position
    for v, (b, direction) in enumerate([(0, [0, 0, 0]), (800, [1, 0, 0]), (800, [0, 1, 0])]):
        clean(folder, patient, stored=(STORED + 100 * v).astype(np.int16), uid_seed=f"v{v}",
              file_names=[f"V{v}_{k}.dcm" for k in range(N)], modality="MR", intercept=0.0,
              acquisition={"DiffusionBValue": b, "DiffusionGradientOrientation": direction})


FOUR_D_CASES = [
    Case("4d-echo-numbers",
         lambda f, p: _volumes(f, p, 2, lambda v: {"EchoNumbers": v + 1,
                                                   "EchoTime": 10.0 * (v + 1)}),
         {"#1_e1": "ok", "#1_e2": "ok"}, expect={"#1_e1": _copy(0), "#1_e2": _copy(1)}),
    Case("4d-echo-times-only",
         lambda f, p: _volumes(f, p, 2, lambda v: {"EchoTime": 30.0 - 10.0 * v}),
         {"#1_e1": "ok", "#1_e2": "ok"}, expect={"#1_e1": _copy(1), "#1_e2": _copy(0)}),
    Case("4d-dynamic-temporal-position",
         lambda f, p: _volumes(f, p, 3, lambda v: {"TemporalPositionIdentifier": v + 1,
                                                   "NumberOfTemporalPositions": 3}),
         {"#1_t01": "ok", "#1_t02": "ok", "#1_t03": "ok"},
         expect={"#1_t01": _copy(0), "#1_t03": _copy(2)}),
    Case("4d-dwi-b-values",
         lambda f, p: _volumes(f, p, 2, lambda v: {"DiffusionBValue": 800.0 * v}),
         {"#1_b0": "ok", "#1_b800": "ok"}, expect={"#1_b0": _copy(0), "#1_b800": _copy(1)}),
    Case("4d-dwi-siemens-private", _private_b(0x0019, "SIEMENS MR HEADER",
                                              lambda v: str(1000 * v), "IS"),
         {"#1_b0": "ok", "#1_b1000": "ok"}, expect={"#1_b1000": _copy(1)}),
    # GE flags some b-values with +1e9; the b-value is the remainder
    Case("4d-dwi-ge-private", _private_b(0x0043, "GEMS_PARM_01",
                                         lambda v: [str(1_000_000_000 + 800 * v), "8", "0", "0"],
                                         "IS"),
         {"#1_b0": "ok", "#1_b800": "ok"}, expect={"#1_b800": _copy(1)}),
    Case("4d-acquisitions",
         lambda f, p: _volumes(f, p, 2, lambda v: {"AcquisitionNumber": 7 + v}),
         {"#1_a01": "ok", "#1_a02": "ok"}, expect={"#1_a02": _copy(1)}),
    Case("4d-enhanced-echoes", _enhanced_4d(echo_times=[12.0] * N + [40.0] * N),
         {"#1_e1": "ok", "#1_e2": "ok"}, expect={"#1_e1": _copy(0), "#1_e2": _copy(1)}),
    Case("4d-enhanced-dwi", _enhanced_4d(b_values=[0.0] * N + [1000.0] * N),
         {"#1_b0": "ok", "#1_b1000": "ok"}, expect={"#1_b1000": _copy(1)}),
    Case("4d-enhanced-dynamic", _enhanced_4d(temporal_positions=[1] * N + [2] * N),
         {"#1_t01": "ok", "#1_t02": "ok"}, expect={"#1_t02": _copy(1)}),
    Case("4d-ambiguous-split", _ambiguous_dwi, {"#1": "excluded:ambiguous-split"}),
]


# --- pixel values --------------------------------------------------------------------------------

_RESCALE = ([0.5, 2.0, 1.0, 0.25, 3.0], [-1024.0, 10.0, 0.0, -5.5, 1000.0])
U16 = (np.abs(STORED.astype(np.int32)) * 60).astype(np.uint16)       # up to ~60 000
S12 = np.clip(STORED, -2048, 2047).astype(np.int16)


def _twelve_bit(k: int, ds: Dataset) -> None:
    # signed 12-bit values in 16-bit words, not sign-extended (high bits 0), as many CTs store
    ds.BitsStored, ds.HighBit = 12, 11
    ds.PixelData = (S12[k].astype(np.int32) & 0x0FFF).astype(np.uint16).tobytes()


PAD = -2000
PADDED = STORED.copy()
PADDED[:, :3, :] = PAD  # 3 rows of padding per slice


def _padding(as_us: bool) -> Callable[[int, Dataset], None]:
    def plant(k: int, ds: Dataset) -> None:
        ds.add_new(0x00280120, "US" if as_us else "SS", PAD + 65536 if as_us else PAD)
    return plant


def _padding_check(image: Any, info: dict[str, Any]) -> None:
    import SimpleITK as sitk

    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), PADDED + INTERCEPT)
    assert info["padding"] == {"stored_value": PAD if info["padding"]["stored_value"] < 0
                               else PAD + 65536, "voxels": 3 * COLS * N}


def _rescale_type(k: int, ds: Dataset) -> None:
    if k == 3:
        ds.RescaleType = "US"


VALUE_CASES = [
    Case("per-slice-rescale", lambda f, p: clean(f, p, slope=_RESCALE[0], intercept=_RESCALE[1]),
         {"#1": "ok"},
         expect={"#1": np.stack([STORED[k] * _RESCALE[0][k] + _RESCALE[1][k] for k in range(N)])}),
    Case("mixed-rescale-type", lambda f, p: clean(f, p, per_slice=_rescale_type),
         {"#1": "failed:inconsistent-rescale-type"}),
    Case("unsigned-16-bit", lambda f, p: clean(f, p, stored=U16, modality="MR", intercept=0.0),
         {"#1": "ok"}, expect={"#1": U16.astype(np.float64)}),
    Case("signed-12-bit", lambda f, p: clean(f, p, stored=S12, per_slice=_twelve_bit),
         {"#1": "ok"}, expect={"#1": S12 + INTERCEPT}),
    Case("mr-without-rescale", lambda f, p: clean(f, p, modality="MR", intercept=0.0),
         {"#1": "ok"}, expect={"#1": STORED.astype(np.float64)}),
    Case("padding-value", lambda f, p: clean(f, p, stored=PADDED, per_slice=_padding(False)),
         {"#1": "ok"}, expect={"#1": _padding_check}),
    Case("padding-value-written-unsigned",
         lambda f, p: clean(f, p, stored=PADDED, per_slice=_padding(True)),
         {"#1": "ok"}, expect={"#1": _padding_check}),
    Case("infinite-after-rescale",
         lambda f, p: clean(f, p, stored=np.full_like(STORED, 30000), slope=[1, 1, 1e305, 1, 1]),
         {"#1": "ok"}, convert={"#1": "failed:non-finite-values"}),
]


