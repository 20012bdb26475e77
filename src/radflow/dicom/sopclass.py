"""Which SOP classes are images, and the manifest reason for objects that are not.

Image or not is decided by SOP Class: a SOP class whose registered name contains "Image Storage"
(CT, MR, PET, their enhanced and legacy-converted variants, NM, CR, DX, SC, US, ...) is an image;
everything else (SR, RTSTRUCT, SEG, RTDOSE, RTPLAN, PR, KO, Raw Data, Parametric Map, private or
unknown classes) is not. Registered names come from pydicom's UID dictionary, completed by
:data:`NAMES_MISSING_FROM_PYDICOM` for classes newer than the installed pydicom (Label Map
Segmentation Storage).
"""

from __future__ import annotations

import re

from pydicom.uid import UID

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
#: Standard SOP classes whose name the installed pydicom may not know (pydicom 3.0 predates them).
NAMES_MISSING_FROM_PYDICOM = {
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation Storage",
}
#: Modality codes of imaging objects; a non-image object with one of these gets its reason from
#: the SOP class name instead.
IMAGING_MODALITIES = frozenset({
    "CT", "MR", "PT", "NM", "CR", "DX", "MG", "US", "XA", "RF", "OT", "SC", "IO", "PX", "OP",
    "OPT", "ES", "XC", "GM", "SM", "RG", "BI", "DG", "TG", "HC", "LS", "OCT", "IVUS", "IVOCT",
})


def sop_class_name(uid: str) -> str:
    """The registered name of SOP class ``uid``; ``""`` for an empty, private or unknown UID."""
    if not uid:
        return ""
    name = NAMES_MISSING_FROM_PYDICOM.get(uid) or UID(uid).name
    return "" if name == uid else name


def is_image_sop_class(uid: str) -> bool:
    """Whether ``uid`` is an image storage SOP class (its name contains "Image Storage")."""
    return "Image Storage" in sop_class_name(uid)


def is_secondary_capture(uid: str) -> bool:
    """Whether ``uid`` is one of the Secondary Capture image SOP classes (single or multi-frame)."""
    return "Secondary Capture" in sop_class_name(uid)


def non_image_reason(modality: str, sop_class: str) -> str:
    """``non-image-<modality>`` or, for imaging/empty modality codes, from the SOP class name."""
    if modality and modality not in IMAGING_MODALITIES:
        return f"non-image-{slug(modality)}"
    name = sop_class_name(sop_class)
    if not name:
        return "non-image-unknown-sop-class"
    return "non-image-" + slug(re.sub(r"\s*Storage.*$", "", name))


def non_image_message(sop_class: str) -> str:
    """Why an object is no image, naming its SOP class by registered name (never by UID):
    ``not an image (SOP class 'Basic Text SR Storage')`` or ``not an image (a private or unknown
    SOP class)``."""
    name = sop_class_name(sop_class)
    return f"not an image ({f'SOP class {name!r}' if name else 'a private or unknown SOP class'})"


def slug(text: str) -> str:
    """Lower-case ``text`` with runs of other characters than a-z, 0-9 replaced by ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


__all__ = [
    "DICOMDIR_SOP_CLASS",
    "IMAGING_MODALITIES",
    "NAMES_MISSING_FROM_PYDICOM",
    "is_image_sop_class",
    "is_secondary_capture",
    "non_image_message",
    "non_image_reason",
    "slug",
    "sop_class_name",
]
