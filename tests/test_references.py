"""Pairing order of SEG/RTSTRUCT objects with image series (radflow.dicom.references.link_mask)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from radflow.dicom.grid import Grid
from radflow.dicom.references import ImageCandidate, MaskObject, MaskRoi, link_mask

AXIAL = (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)
SMALL = Grid((10, 10, 5), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), AXIAL)     # x, y 0..9, z 0..8 mm
LARGE = Grid((50, 50, 20), (1.0, 1.0, 2.0), (-20.0, -20.0, -10.0), AXIAL)


def _image(key: str, folder: str, *, uid: str = "", frame: str = "F1", modality: str = "CT",
           status: str = "ok", grid: Grid | None = LARGE) -> ImageCandidate:
    return ImageCandidate(key, uid or f"uid-{key}", frame, modality, status,
                          Path("/root") / folder, grid)


def _mask(*, series: tuple[str, ...] = (), instances: frozenset[str] = frozenset(),
          frame: str = "F1", points=((2.0, 2.0, 2.0), (7.0, 7.0, 4.0))) -> MaskObject:
    return MaskObject("rtstruct", "1.2.3", frame, series, instances,
                      (MaskRoi(1, "GTV", "", frozenset()),), np.asarray(points, float))


INSTANCES = {"sA": frozenset({"i1", "i2"}), "sB": frozenset({"i3"}), "sC": frozenset({"i4"})}


def _link(mask, images, file="/root/p/rs/rs.dcm", modalities=()):
    return link_mask(mask, Path(file), images, lambda c: INSTANCES.get(c.series_key,
                                                                       frozenset()), modalities)


def test_referenced_series_first() -> None:
    link = _link(_mask(series=("uid-sB",), instances=frozenset({"i1"})),
                 [_image("sA", "p/a"), _image("sB", "p/b")])
    assert (link.image.series_key, link.reason, link.status) == ("sB", "referenced-series", "ok")


def test_split_series_narrowed_by_instances() -> None:
    images = [_image("sA", "p/a", uid="u"), _image("sB", "p/a", uid="u")]
    link = _link(_mask(series=("u",), instances=frozenset({"i3"})), images)
    assert (link.image.series_key, link.reason) == ("sB", "referenced-series")
    both = _link(_mask(series=("u",), instances=frozenset({"i1", "i3"})), images)
    assert (both.status, both.candidates) == ("failed:ambiguous-reference", ("sA", "sB"))


def test_referenced_instances_when_the_series_uid_is_gone() -> None:
    link = _link(_mask(series=("re-exported",), instances=frozenset({"i4"})),
                 [_image("sA", "p/a"), _image("sC", "p/c", status="failed:missing-slice")])
    assert (link.image.series_key, link.reason) == ("sC", "referenced-instances")


def test_frame_of_reference_with_extent_and_modality() -> None:
    images = [_image("sA", "p/a", grid=LARGE), _image("sB", "p/b", grid=SMALL),
              _image("sC", "p/c", frame="F2")]
    inside_small = _link(_mask(), images)  # both sA and sB contain the points: folder decides
    assert (inside_small.reason, inside_small.status) == ("common-folder",
                                                          "failed:ambiguous-reference")
    assert inside_small.candidates == ("sA", "sB")
    beyond_small = _link(_mask(points=((2, 2, 2), (15, 15, 4))), images)
    assert (beyond_small.image.series_key, beyond_small.reason) == ("sA", "frame-of-reference")
    pet = [_image("sA", "p/a"), _image("sP", "p/a", modality="PT")]
    assert _link(_mask(), pet).status == "failed:ambiguous-reference"
    only_ct = _link(_mask(), pet, modalities=("CT",))
    assert (only_ct.image.series_key, only_ct.reason) == ("sA", "frame-of-reference")


def test_unknown_extent_keeps_a_series_a_candidate() -> None:
    """A same-frame series excluded before its geometry check (e.g. DERIVED) may be the one."""
    images = [_image("sCT", "p/ct/image"), _image("sMR", "p/mr/image", grid=None,
                                                  status="excluded:derived")]
    link = _link(_mask(), images, file="/root/p/mr/mask/rs.dcm")
    assert (link.image.series_key, link.reason) == ("sMR", "common-folder")


def test_common_folder_and_what_is_no_candidate() -> None:
    images = [_image("sA", "p/s1/ct", frame="X"), _image("sB", "p/s2/ct", frame="X"),
              _image("sL", "p/s1/scout", frame="X", status="excluded:localizer")]
    link = _link(_mask(), images, file="/root/p/s1/rs/rs.dcm")
    assert (link.image.series_key, link.reason) == ("sA", "common-folder")
    tie = _link(_mask(), images, file="/root/p/rs/rs.dcm")
    assert (tie.status, tie.candidates) == ("failed:ambiguous-reference", ("sA", "sB"))
    assert "sA, sB" in tie.message


@pytest.mark.parametrize("images", [[], [_image("sL", "p", status="excluded:localizer")]])
def test_nothing_to_pair_with(images) -> None:
    link = _link(_mask(), images)
    assert (link.image, link.status) == (None, "failed:reference-not-found")
