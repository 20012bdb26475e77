"""Frame geometry of classic multi-frame objects (no per-frame functional groups).

Enhanced objects carry a plane position per frame (:mod:`radflow.dicom.frames`). Classic
multi-frame objects (NM, US, XA, RF, multi-frame SC, and enhanced objects written without
functional groups) do not; :func:`classic_frame_geometry` decides what their frames are, first
match wins:

1. **NM reconstructed volume** (SOP class NM Image Storage or Modality NM, ImageType value 3
   ``RECON TOMO`` or ``RECON GATED TOMO``): PS3.3 C.8.4.15 defines the geometry. The first frame
   lies at ImagePositionPatient / ImageOrientationPatient of the Detector Information Sequence
   (top level when absent there); the frame of slice ``s`` (Slice Vector (0054,0080), frame order
   when absent) lies ``(s - 1) x SpacingBetweenSlices`` along the normal (row x column cosines);
   the sign of SpacingBetweenSlices gives the stacking direction. Gated reconstructions get one
   time point per (R-R interval, time slot), which the crawl splits into volumes (``_t01``, ...).
   Position source ``nm-reconstruction``.
2. **Other NM** (STATIC, WHOLE BODY, DYNAMIC, GATED, TOMO, GATED TOMO): planar images or
   projections, not a volume in patient space: ``excluded:nm-projection``.
3. **Cine** (Frame Increment Pointer (0028,0009) names Frame Time (0018,1063) or Frame Time
   Vector (0018,1065); US, XA, RF loops) without ImagePositionPatient and
   ImageOrientationPatient: frames are time points of a projection or a probe position that has
   no patient coordinates: ``excluded:cine-no-geometry``. With patient geometry, every frame lies
   in the one plane (a single-slice time series, split by time point).
4. **Stack with one plane position** (ImagePositionPatient, ImageOrientationPatient and
   PixelSpacing at the top level or in the shared functional groups, and SpacingBetweenSlices
   or else SliceThickness): frame ``k`` is *assumed* to lie ``k x spacing`` along the normal
   from that position. Position source ``assumed-stack``; the crawl adds QC
   ``frame-positions-assumed``.
5. Anything else: ``failed:unsupported-multiframe``, naming the attributes that are missing.

NM reconstructions whose SpacingBetweenSlices is empty or zero use SliceThickness as well, and
are then ``assumed-stack`` too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from radflow.dicom.headers import get_float, get_floats, get_strs, get_value
from radflow.errors import DicomError

NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
#: NM ImageType value 3 of reconstructed volumes (PS3.3 C.8.4.9.1.1).
NM_VOLUME_TYPES = frozenset({"RECON TOMO", "RECON GATED TOMO"})
#: Frame Increment Pointer targets that make frames time points (PS3.3 C.7.6.5.1).
TIME_POINTERS = frozenset({0x00181063, 0x00181065})

#: Position source code -> (is it an assumption, what it means). Recorded in the sidecar.
POSITION_SOURCES: dict[str, tuple[bool, str]] = {
    "nm-reconstruction": (False, "NM RECON TOMO: frame positions from the first frame's "
                                 "ImagePositionPatient (Detector Information Sequence), the "
                                 "Slice Vector and SpacingBetweenSlices (PS3.3 C.8.4.15)"),
    "assumed-stack": (True, "classic multi-frame: frame k assumed to lie k x spacing along the "
                            "slice normal from the one ImagePositionPatient (spacing = "
                            "SpacingBetweenSlices, else SliceThickness)"),
}

_PLANE = (("ImagePositionPatient", "(0020,0032)", "PlanePositionSequence", 3),
          ("ImageOrientationPatient", "(0020,0037)", "PlaneOrientationSequence", 6),
          ("PixelSpacing", "(0028,0030)", "PixelMeasuresSequence", 2))


@dataclass(frozen=True)
class ClassicFrames:
    """Geometry of the frames of a classic multi-frame object.

    Attributes
    ----------
    positions
        ImagePositionPatient per frame (LPS, mm).
    orientation
        ImageOrientationPatient shared by all frames.
    pixel_spacing
        PixelSpacing ``(row spacing, column spacing)``.
    source
        Key of :data:`POSITION_SOURCES`; ``""`` for the frames of a time series, which all lie
        at the one position the object gives.
    time_points
        Per frame, a 1-based time point, or ``None`` when frames are not a time series.
    """

    positions: tuple[tuple[float, float, float], ...]
    orientation: tuple[float, ...]
    pixel_spacing: tuple[float, float]
    source: str
    time_points: tuple[int, ...] | None = None


def _item(ds: Dataset | None, sequence: str) -> Dataset | None:
    if ds is None:
        return None
    seq = get_value(ds, sequence)
    return seq[0] if seq else None


def _pointers(ds: Dataset) -> set[int]:
    value = get_value(ds, "FrameIncrementPointer")
    if value is None or value == "":
        return set()
    values = value if isinstance(value, list | tuple | MultiValue) else [value]
    out = set()
    for v in values:
        try:
            out.add(int(v))
        except (TypeError, ValueError):
            continue
    return out


def _plane(ds: Dataset, places: Sequence[Dataset | None]) -> dict[str, tuple[float, ...] | None]:
    """IPP, IOP and PixelSpacing from the first of ``places`` (functional group items or data
    sets) that has them, else the top level of ``ds``."""
    found: dict[str, tuple[float, ...] | None] = {}
    for keyword, _, sequence, n in _PLANE:
        value = None
        for place in places:
            item = _item(place, sequence) if place is not None else None
            for candidate in (item, place):
                if candidate is not None and value is None:
                    value = get_floats(candidate, keyword, n)
        found[keyword] = value if value is not None else get_floats(ds, keyword, n)
    return found


def _missing(found: dict[str, tuple[float, ...] | None], where: str) -> DicomError | None:
    absent = [f"{k} {tag}" for k, tag, _, _ in _PLANE if found[k] is None]
    if not absent:
        return None
    return DicomError(f"classic multi-frame object without per-frame functional groups "
                      f"(PerFrameFunctionalGroupsSequence (5200,9230)): {', '.join(absent)} "
                      f"missing {where}", reason="unsupported-multiframe")


def _normal(orientation: Sequence[float]) -> np.ndarray:
    return np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:6], float))


def _spacing(ds: Dataset, signed: bool) -> tuple[float | None, bool]:
    """``(spacing, assumed)``: SpacingBetweenSlices (its sign kept for NM), else SliceThickness
    (an assumption: contiguous slices); ``None`` when neither is usable."""
    between = get_float(ds, "SpacingBetweenSlices")
    if between is not None and between != 0 and (signed or between > 0):
        return between, False
    thickness = get_float(ds, "SliceThickness")
    if thickness is not None and thickness > 0:
        return thickness, True
    return None, True


def _vector(ds: Dataset, keyword: str, n: int) -> list[int] | None:
    values = get_floats(ds, keyword)
    if values is None or len(values) != n or not all(v == int(v) for v in values):
        return None
    return [int(v) for v in values]


def classic_frame_geometry(ds: Dataset, n_frames: int, shared: Dataset | None) -> ClassicFrames:
    """Frame geometry of a multi-frame object without per-frame functional groups.

    Parameters
    ----------
    ds
        The data set (header is enough).
    n_frames
        NumberOfFrames (> 1).
    shared
        The item of SharedFunctionalGroupsSequence, if any.

    Raises
    ------
    DicomError
        ``nm-projection`` / ``cine-no-geometry`` (kind ``excluded``) or
        ``unsupported-multiframe`` naming the missing attributes; see the module notes.
    """
    image_type = [v.upper() for v in get_strs(ds, "ImageType")]
    sop_class = str(get_value(ds, "SOPClassUID") or "")
    modality = str(get_value(ds, "Modality") or "").upper()
    if sop_class == NM_IMAGE_STORAGE or modality == "NM":
        kind = image_type[2] if len(image_type) > 2 else ""
        if kind in NM_VOLUME_TYPES:
            return _nm_reconstruction(ds, n_frames, kind)
        raise DicomError(f"NM object with {n_frames} frames and ImageType value 3 "
                         f"{kind or '(none)'}: planar or projection frames, not a reconstructed "
                         "volume (RECON TOMO)", reason="nm-projection")
    found = _plane(ds, [shared])
    cine = bool(_pointers(ds) & TIME_POINTERS)
    if cine and (found["ImagePositionPatient"] is None
                 or found["ImageOrientationPatient"] is None):
        raise DicomError(f"cine object with {n_frames} frames (Frame Increment Pointer "
                         "(0028,0009) names Frame Time / Frame Time Vector) and no "
                         "ImagePositionPatient / ImageOrientationPatient: frames are time "
                         "points without patient coordinates", reason="cine-no-geometry")
    error = _missing(found, "(top level and SharedFunctionalGroupsSequence)")
    if error is not None:
        raise error
    if cine:  # every frame in the one plane: a single-slice time series
        position = tuple(found["ImagePositionPatient"])  # type: ignore[arg-type]
        return ClassicFrames((position,) * n_frames,  # type: ignore[arg-type]
                             tuple(found["ImageOrientationPatient"]),  # type: ignore[arg-type]
                             tuple(found["PixelSpacing"]),  # type: ignore[arg-type]
                             "", tuple(range(1, n_frames + 1)))
    spacing, _ = _spacing(_merged_spacing(ds, shared), signed=False)
    if spacing is None:
        raise DicomError(f"classic multi-frame object with {n_frames} frames and one plane "
                         "position: SpacingBetweenSlices (0018,0088) and SliceThickness "
                         "(0018,0050) missing or not positive, so the frames cannot be placed",
                         reason="unsupported-multiframe")
    return _stack(found, list(range(n_frames)), spacing, "assumed-stack")


def _merged_spacing(ds: Dataset, shared: Dataset | None) -> Dataset:
    """A data set with SpacingBetweenSlices / SliceThickness from the shared Pixel Measures
    (where enhanced objects keep them), else from the top level."""
    out = Dataset()
    measures = _item(shared, "PixelMeasuresSequence")
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = get_value(measures, keyword) if measures is not None else None
        if value is None or value == "":
            value = get_value(ds, keyword)
        if value is not None and value != "":
            setattr(out, keyword, value)
    return out


def _stack(found: dict[str, tuple[float, ...] | None], steps: Sequence[float], spacing: float,
           source: str, time_points: tuple[int, ...] | None = None) -> ClassicFrames:
    origin = np.asarray(found["ImagePositionPatient"], float)
    orientation = tuple(found["ImageOrientationPatient"])  # type: ignore[arg-type]
    normal = _normal(orientation)
    positions = tuple(tuple(float(v) for v in origin + s * spacing * normal) for s in steps)
    return ClassicFrames(positions, orientation,  # type: ignore[arg-type]
                         tuple(found["PixelSpacing"]),  # type: ignore[arg-type]
                         source, time_points)


def _nm_reconstruction(ds: Dataset, n_frames: int, kind: str) -> ClassicFrames:
    detector = get_value(ds, "DetectorInformationSequence")
    found = _plane(ds, [detector[0] if detector else None])
    error = _missing(found, "(Detector Information Sequence (0054,0022) and top level)")
    if error is not None:
        raise DicomError(f"NM {kind}: {error}", reason="unsupported-multiframe")
    spacing, assumed = _spacing(ds, signed=True)
    if spacing is None:
        raise DicomError(f"NM {kind} with {n_frames} frames: SpacingBetweenSlices (0018,0088) "
                         "and SliceThickness (0018,0050) missing or zero, so the slices cannot "
                         "be placed", reason="unsupported-multiframe")
    slices = _vector(ds, "SliceVector", n_frames)
    steps = [s - 1 for s in slices] if slices is not None else list(range(n_frames))
    time_points = None
    if kind == "RECON GATED TOMO":
        intervals = _vector(ds, "RRIntervalVector", n_frames) or [1] * n_frames
        slots = _vector(ds, "TimeSlotVector", n_frames)
        if slots is None:
            raise DicomError(f"NM {kind} with {n_frames} frames: Time Slot Vector (0054,0070) "
                             "missing or not one value per frame", reason="unsupported-multiframe")
        pairs = sorted(set(zip(intervals, slots, strict=True)))
        rank = {p: k + 1 for k, p in enumerate(pairs)}
        time_points = tuple(rank[p] for p in zip(intervals, slots, strict=True))
    return _stack(found, steps, spacing, "assumed-stack" if assumed else "nm-reconstruction",
                  time_points)


__all__ = ["NM_IMAGE_STORAGE", "NM_VOLUME_TYPES", "POSITION_SOURCES", "TIME_POINTERS",
           "ClassicFrames", "classic_frame_geometry"]
