"""Which SOP classes are images, and the manifest reason for objects that are not.

Image or not is decided by SOP Class: a SOP class whose registered name (pydicom's UID dictionary)
contains "Image Storage" (CT, MR, PET, their enhanced and legacy-converted variants, NM, CR, DX,
SC, US, ...) is an image; everything else (SR, RTSTRUCT, SEG, RTDOSE, RTPLAN, PR, KO, Raw Data,
Parametric Map, private or unknown classes) is not.
"""

from __future__ import annotations

import re

from pydicom.uid import UID

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
#: Modality codes of imaging objects; a non-image object with one of these gets its reason from
#: the SOP class name instead.
IMAGING_MODALITIES = frozenset({
    "CT", "MR", "PT", "NM", "CR", "DX", "MG", "US", "XA", "RF", "OT", "SC", "IO", "PX", "OP",
    "OPT", "ES", "XC", "GM", "SM", "RG", "BI", "DG", "TG", "HC", "LS", "OCT", "IVUS", "IVOCT",
})


def is_image_sop_class(uid: str) -> bool:
    """Whether ``uid`` is an image storage SOP class (its name contains "Image Storage")."""
    return bool(uid) and "Image Storage" in UID(uid).name


def is_secondary_capture(uid: str) -> bool:
    """Whether ``uid`` is one of the Secondary Capture image SOP classes (single or multi-frame)."""
    return bool(uid) and "Secondary Capture" in UID(uid).name


def non_image_reason(modality: str, sop_class: str) -> str:
    """``non-image-<modality>`` or, for imaging/empty modality codes, from the SOP class name."""
    if modality and modality not in IMAGING_MODALITIES:
        return f"non-image-{slug(modality)}"
    name = UID(sop_class).name if sop_class else ""
    if not name or name == sop_class:
        return "non-image-unknown-sop-class"
    return "non-image-" + slug(re.sub(r"\s*Storage.*$", "", name))


def slug(text: str) -> str:
    """Lower-case ``text`` with runs of other characters than a-z, 0-9 replaced by ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


__all__ = [
    "DICOMDIR_SOP_CLASS",
    "IMAGING_MODALITIES",
    "is_image_sop_class",
    "is_secondary_capture",
    "non_image_reason",
    "slug",
]
