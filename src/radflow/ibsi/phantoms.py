"""radflow's features of the IBSI 1 phantoms, per configuration the IBSI manual defines.

The IBSI 1 reference data sets (manual, chapter "Reference data sets"):

* the **digital phantom** (5 × 4 × 4 voxels of 2 mm, grey levels 1-6): no image processing,
  discretisation with a bin width of 1 (which leaves the phantom as it is), texture distance 1,
  NGLDM coarseness 0. One configuration (:data:`DIGITAL`); texture reference values for six
  aggregation methods, of which PyRadiomics computes two (3D averaged / 3D with its default,
  2.5D direction-merged / 2.5D with ``force2D``);
* the **CT phantom** (lung cancer patient PAT1, GTV-1; IBSI data sets repository
  ``ibsi_1_ct_radiomics_phantom``): configurations A-E (:data:`CT_CONFIGURATIONS`, the manual's
  tables "Configuration A" ... "E"). A and B are 2D (texture in-slice: radflow computes the 2.5D
  aggregations), C-E 3D.

:func:`radflow_features` runs the extract stage's IBSI mode (``extract.ibsi: true``;
:func:`radflow.ibsi.mode.ibsi_mode`) on one configuration, written as PyRadiomics params: IBSI
interpolation (:meth:`~radflow.ibsi.mode.IbsiMode.prepare`), PyRadiomics with the
:func:`radflow.ibsi.ibsi_preset` params and the IBSI bin origin, :func:`radflow.ibsi.ibsi_adjust`
(:meth:`~radflow.ibsi.mode.IbsiMode.rows`); on the digital phantom also radflow's own feature
families that carry IBSI codes. Only configuration E's re-segmentation by a range and outliers at
once, which PyRadiomics' params cannot express, is added here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radflow.errors import InputFileError
from radflow.features.minkowski import MinkowskiSettings, minkowski_features
from radflow.features.semantic import SemanticSettings, semantic_features
from radflow.ibsi.codes import Aggregation, codes_table
from radflow.ibsi.mode import ibsi_mode
from radflow.ibsi.preset import ibsi_adjust
from radflow.ibsi.resample import ResampleSpec, intensity_mask

#: PyRadiomics' texture classes (IBSI GLCM, GLRLM, GLSZM, NGLDM, NGTDM).
TEXTURE_CLASSES: tuple[str, ...] = ("glcm", "glrlm", "glszm", "gldm", "ngtdm")
#: ResampleSpec interpolators -> PyRadiomics' ``interpolator`` names.
_INTERPOLATORS = {"linear": "sitkLinear", "bspline": "sitkBSpline",
                  "nearest": "sitkNearestNeighbor"}
#: radflow's families run on the digital phantom (their rows carry IBSI codes).
FAMILY_CLASSES: tuple[str, ...] = ("size", "density", "suv", "minkowski")


@dataclass(frozen=True)
class Configuration:
    """One IBSI 1 image processing configuration.

    Attributes
    ----------
    name
        ``digital`` or ``A`` ... ``E``.
    data
        The reference values' ``data`` column (``dig. phantom``, ``config. A`` ...).
    texture
        The texture aggregations radflow computes: ``"3D"`` (PyRadiomics default) and/or
        ``"2.5D"`` (``force2D``).
    resample
        IBSI interpolation, or None.
    value_range
        Re-segmentation range (HU), or None.
    outlier_sigma
        Outlier re-segmentation (mean ± sigma SD), or None.
    bin_width, bin_count
        Fixed bin size or fixed bin number (one of them).
    description
        The manual's settings in one line.
    """

    name: str
    data: str
    texture: tuple[Aggregation, ...]
    resample: ResampleSpec | None
    value_range: tuple[float, float] | None
    outlier_sigma: float | None
    bin_width: float | None
    bin_count: int | None
    description: str


DIGITAL = Configuration(
    "digital", "dig. phantom", ("3D", "2.5D"), None, None, None, 1.0, None,
    "no interpolation, no re-segmentation, bin width 1 (the phantom as it is)")

CT_CONFIGURATIONS: dict[str, Configuration] = {c.name: c for c in (
    Configuration("A", "config. A", ("2.5D",), None, (-500.0, 400.0), None, 25.0, None,
                  "2D, no interpolation, range [-500, 400] HU, bin width 25 HU"),
    Configuration("B", "config. B", ("2.5D",),
                  ResampleSpec((2.0, 2.0, 0.0), "linear", round_intensities=True),
                  (-500.0, 400.0), None, None, 32,
                  "2D, bilinear to 2 x 2 mm in-plane, range [-500, 400] HU, 32 bins"),
    Configuration("C", "config. C", ("3D",),
                  ResampleSpec((2.0, 2.0, 2.0), "linear", round_intensities=True),
                  (-1000.0, 400.0), None, 25.0, None,
                  "3D, trilinear to 2 mm, range [-1000, 400] HU, bin width 25 HU"),
    Configuration("D", "config. D", ("3D",),
                  ResampleSpec((2.0, 2.0, 2.0), "linear", round_intensities=True),
                  None, 3.0, None, 32, "3D, trilinear to 2 mm, 3 SD outlier filter, 32 bins"),
    Configuration("E", "config. E", ("3D",),
                  ResampleSpec((2.0, 2.0, 2.0), "bspline", round_intensities=True),
                  (-1000.0, 400.0), 3.0, None, 32,
                  "3D, tricubic spline to 2 mm, range [-1000, 400] HU and 3 SD filter, 32 bins"),
)}

#: One value radflow computed: (texture aggregation, feature_class, feature) -> value; the
#: aggregation is ``""`` for non-texture features.
Values = dict[tuple[str, str, str], float]


def phantom_files(folder: str | Path) -> tuple[Path, Path]:
    """The image and mask NIfTI files of a phantom folder.

    Accepted layouts: ``image/*.nii[.gz]`` + ``mask/*.nii[.gz]`` (radflow's reference data) or
    ``nifti/image/...`` + ``nifti/mask/...`` (the IBSI data sets repository).

    Raises
    ------
    InputFileError
        Not exactly one image and one mask file in either layout (``phantom-files``).
    """
    folder = Path(folder)
    for base in (folder, folder / "nifti"):
        images = sorted((base / "image").glob("*.nii*"))
        masks = sorted((base / "mask").glob("*.nii*"))
        if len(images) == 1 and len(masks) == 1:
            return images[0], masks[0]
    raise InputFileError(f"phantom folder {folder}: expected one image/*.nii[.gz] and one "
                         "mask/*.nii[.gz] (or under nifti/)", reason="phantom-files")


def read_phantom(folder: str | Path, *, ct: bool) -> tuple[sitk.Image, sitk.Image]:
    """Image (float64) and mask (uint8 0/1) of a phantom folder (:func:`phantom_files`).

    The CT phantom's intensities are rounded to integers, as the manual asks for its NIfTI
    version.
    """
    image_path, mask_path = phantom_files(folder)
    image = sitk.Cast(sitk.ReadImage(str(image_path)), sitk.sitkFloat64)
    if ct:
        rounded = sitk.GetImageFromArray(np.rint(sitk.GetArrayViewFromImage(image)))
        rounded.CopyInformation(image)
        image = rounded
    labels = sitk.ReadImage(str(mask_path))
    mask = sitk.GetImageFromArray((sitk.GetArrayViewFromImage(labels) > 0).astype(np.uint8))
    mask.CopyInformation(labels)
    return image, mask


def radflow_features(config: Configuration, image: sitk.Image, mask: sitk.Image, *,
                     families: bool = False) -> Values:
    """radflow's IBSI-mode values of one configuration (module docstring).

    Every PyRadiomics feature ``codes.tsv`` gives a code is computed (deprecated ones included
    when PyRadiomics computes them); texture once per aggregation in ``config.texture``.
    ``families``: also radflow's size, density, SUV (image taken as SUV) and Minkowski
    families, on the image as it is (they never resample or re-segment).
    """
    both = config.value_range is not None and config.outlier_sigma is not None
    round_intensities = config.resample is not None and config.resample.round_intensities
    coded = _coded_features()
    values: Values = {}
    prepared: tuple[sitk.Image, sitk.Image, sitk.Image] | None = None
    for n, aggregation in enumerate(config.texture):
        classes = TEXTURE_CLASSES if n else ("shape", "firstorder", *TEXTURE_CLASSES)
        runs = [(classes, "texture")]
        if both and "shape" in classes:
            runs = [(("shape",), "morphology"), (classes[1:], "texture")]
        for run_classes, which in runs:
            mode = ibsi_mode(_params(config, aggregation, {c: coded[c] for c in run_classes},
                                     resegment=not both), round_intensities=round_intensities)
            if prepared is None:  # the same interpolation for every run: once
                grid_image, morph_mask = mode.prepare(image, mask, label=1)
                # IBSI's combined re-segmentation (range and outliers) is not a PyRadiomics
                # resegmentMode: radflow builds the intensity mask, and shape is computed on
                # the morphological mask alone
                texture_mask = (intensity_mask(grid_image, morph_mask,
                                               value_range=config.value_range,
                                               outlier_sigma=config.outlier_sigma)
                                if both else morph_mask)
                prepared = (grid_image, morph_mask, texture_mask)
            grid_image, morph_mask, texture_mask = prepared
            run_mask = morph_mask if which == "morphology" else texture_mask
            if both and config.value_range is not None:
                rows = mode.rows(grid_image, run_mask, label=1,
                                 bin_origin=config.value_range[0])
            else:
                rows = mode.rows(grid_image, run_mask, label=1)
            for _, cls, feature, _, value in rows:
                values[(aggregation if cls in TEXTURE_CLASSES else "", cls, feature)] = value
    if families and prepared is not None:
        values.update(_family_values(prepared[0], prepared[1]))
    return values


def _coded_features() -> dict[str, list[str]]:
    """PyRadiomics features with an IBSI code, per class."""
    out: dict[str, list[str]] = {}
    for (cls, feature), entry in codes_table().items():
        if entry.ibsi_code and cls in ("shape", "firstorder", *TEXTURE_CLASSES):
            out.setdefault(cls, []).append(feature)
    return out


def _params(config: Configuration, aggregation: Aggregation, classes: dict[str, list[str]], *,
            resegment: bool) -> dict:
    setting: dict = {"force2D": aggregation == "2.5D", "force2Ddimension": 0, "distances": [1],
                     "gldm_a": 0}
    if config.resample is not None:  # radflow's IBSI mode interpolates them (ibsi_mode)
        setting["resampledPixelSpacing"] = list(config.resample.spacing)
        setting["interpolator"] = _INTERPOLATORS[config.resample.interpolator]
    if config.bin_count is not None:
        setting["binCount"] = config.bin_count
    else:
        setting["binWidth"] = config.bin_width
    if resegment and config.value_range is not None:
        setting.update(resegmentRange=list(config.value_range), resegmentMode="absolute")
    elif resegment and config.outlier_sigma is not None:
        setting.update(resegmentRange=[-config.outlier_sigma, config.outlier_sigma],
                       resegmentMode="sigma")
    return {"setting": setting, "imageType": {"Original": {}}, "featureClass": classes}


def _family_values(image: sitk.Image, mask: sitk.Image) -> Values:
    """radflow's coded families on the image as it is (:data:`FAMILY_CLASSES`)."""
    semantic = semantic_features(image, mask, SemanticSettings(), modality="PT").features
    minkowski = minkowski_features(image, mask, MinkowskiSettings(), image_type="original")
    named = [*semantic.items(), *((name.split("_", 1)[1], v)  # "<image_type>_minkowski_..."
                                  for name, v in minkowski.features.items())]
    rows = [("original", *_split(name), float(v)) for name, v in named]
    return {("", cls, feature): value for _, cls, feature, value in ibsi_adjust(rows)
            if cls in FAMILY_CLASSES}


def _split(name: str) -> tuple[str, str]:
    """``<feature_class>_<feature>`` -> its two parts."""
    cls, _, feature = name.partition("_")
    return cls, feature


__all__ = ["CT_CONFIGURATIONS", "DIGITAL", "FAMILY_CLASSES", "TEXTURE_CLASSES",
           "Configuration", "Values", "phantom_files", "radflow_features", "read_phantom"]
