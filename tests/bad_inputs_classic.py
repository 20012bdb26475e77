"""Bad-input cases about classic multi-frame objects and colour images (collected in
bad_inputs_corpus.CASES)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from bad_inputs_base import ORIGIN, SPACING, STORED, Case, study_of, uid

from radflow.demo.synthetic import MR_IMAGE_STORAGE, Patient
from radflow.demo.synthetic_classic import (
    FRAME_TIME,
    NM_IMAGE_STORAGE,
    SLICE_VECTOR,
    US_MULTIFRAME_STORAGE,
    write_classic_multiframe,
    write_colour_series,
)
from radflow.demo.synthetic_multiframe import ENHANCED_MR_STORAGE

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
#: PixelSpacing as DICOM stores it (row spacing, column spacing).
PIXEL_SPACING = (SPACING[1], SPACING[0])
#: Stored values made non-negative for the unsigned classic objects.
UNSIGNED = (STORED - STORED.min()).astype(np.uint16)
N_FRAMES = STORED.shape[0]


def _classic(**kwargs: Any) -> Callable[[Path, Patient], None]:
    def build(folder: Path, patient: Patient) -> None:
        write_classic_multiframe(folder / "multiframe.dcm", UNSIGNED, patient=patient,
                                 study=study_of(patient), series_uid=uid(patient), **kwargs)
    return build


_NM_RECON = dict(sop_class=NM_IMAGE_STORAGE, modality="NM",
                 image_type=("ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"), position=ORIGIN,
                 orientation=AXIAL, pixel_spacing=PIXEL_SPACING, in_detector=True,
                 frame_increment_pointer=[SLICE_VECTOR],
                 attributes={"SpacingBetweenSlices": SPACING[2],
                             "SliceVector": list(range(1, N_FRAMES + 1)),
                             "NumberOfSlices": N_FRAMES})
_NM = {"image_modalities": ["CT", "MR", "PT", "NM"]}

#: RGB slices from the clean series: R = stored, G = its mirror, B = constant.
_SCALED = ((STORED - STORED.min()) * 255 // (STORED.max() - STORED.min())).astype(np.uint8)
RGB = np.stack([_SCALED, _SCALED[:, :, ::-1], np.full_like(_SCALED, 77)], axis=-1)


def _colour(planar: int) -> Callable[[Path, Patient], None]:
    def build(folder: Path, patient: Patient) -> None:
        write_colour_series(folder, RGB, patient=patient, study=study_of(patient),
                            series_uid=uid(patient), planar_configuration=planar,
                            sop_class=MR_IMAGE_STORAGE, image_type=("ORIGINAL", "PRIMARY"),
                            spacing=SPACING, origin=ORIGIN)
    return build


def _rgb_check(image: Any, info: dict[str, Any]) -> None:
    assert image.GetNumberOfComponentsPerPixel() == 3
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), RGB)
    assert image.GetSpacing() == SPACING and image.GetOrigin() == ORIGIN
    assert (info["samples_per_pixel"], info["photometric"]) == (3, "RGB")


CLASSIC_CASES = [
    Case("classic-nm-recon-tomo", _classic(**_NM_RECON), {"#1": "ok"}, settings=_NM,
         expect={"#1": UNSIGNED}),
    Case("classic-nm-static", _classic(sop_class=NM_IMAGE_STORAGE, modality="NM",
                                       image_type=("ORIGINAL", "PRIMARY", "STATIC", "EMISSION"),
                                       pixel_spacing=PIXEL_SPACING),
         {"#1": "excluded:nm-projection"}, settings=_NM),
    Case("classic-us-cine", _classic(sop_class=US_MULTIFRAME_STORAGE, modality="US",
                                     frame_increment_pointer=[FRAME_TIME],
                                     attributes={"FrameTime": 33.3}),
         {"#1": "excluded:cine-no-geometry"}, settings={"image_modalities": ["US"]}),
    Case("classic-single-position-stack",
         _classic(sop_class=ENHANCED_MR_STORAGE, position=ORIGIN, orientation=AXIAL,
                  pixel_spacing=PIXEL_SPACING, in_shared_groups=True,
                  attributes={"SpacingBetweenSlices": SPACING[2]}),
         {"#1": "ok"}, expect={"#1": UNSIGNED}, qc={"#1": ("frame-positions-assumed",)}),
    Case("classic-without-geometry", _classic(sop_class=ENHANCED_MR_STORAGE,
                                              attributes={"SpacingBetweenSlices": 1.2}),
         {"#1": "failed:unsupported-multiframe"}),
    Case("colour-rgb", _colour(0), {"#1": "ok"}, convert={"#1": "excluded:colour-image"},
         expect={"#1": _rgb_check}, qc={"#1": ("colour-image",)}),
    Case("colour-rgb-planar-1", _colour(1), {"#1": "ok"},
         convert={"#1": "excluded:colour-image"}, expect={"#1": _rgb_check},
         qc={"#1": ("colour-image",)}),
]
