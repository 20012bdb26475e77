"""The closed vocabulary of DICOM statuses: every ``excluded:<reason>`` / ``failed:<reason>`` the
crawl (headers) and the convert stage (pixels) can give a DICOM series or file.

:data:`REASONS` maps each reason to ``(kind, stage, meaning)``. Three reasons are families with a
suffix built from a closed set of characters (``[a-z0-9-]``): ``non-image-<modality or SOP class>``,
``modality-<modality>`` and ``duplicate-of-<series_key>``; one QC warning is a family too
(``duplicate-copy-of-<series_key>``). :func:`is_known_status` tells whether a status string
belongs to the vocabulary; the tests hold every status radflow produces against it, and the
README section "What radflow does with difficult DICOM" documents each entry.
"""

from __future__ import annotations

import re

EXCLUDED = "excluded"
FAILED = "failed"

#: reason -> (kind, stage, meaning). ``stage`` is where the reason is decided: ``crawl`` (headers
#: only), ``convert`` (pixel data), or ``crawl/convert`` (the shared geometry check); and
#: ``protocol`` (the protocol QC gate, a status of a pair), ``reliability`` (a perturbed copy or
#: negative control of a pair), ``sr`` (the DICOM SEG and SR of a pair).
REASONS: dict[str, tuple[str, str, str]] = {
    # --- files that are not (usable) DICOM ------------------------------------------------------
    "empty-file": (FAILED, "crawl", "zero-byte file"),
    "not-dicom": (FAILED, "crawl", "no DICM prefix and not a raw DICOM data set"),
    "non-dicom-file": (EXCLUDED, "crawl",
                       "a known non-DICOM file in the tree (NIfTI, text, checksum list, ...)"),
    "truncated": (FAILED, "crawl", "the file ends inside a data element or its pixel data"),
    "unreadable": (FAILED, "crawl", "malformed DICOM that cannot be parsed"),
    "unreadable-private-data": (FAILED, "crawl",
                                "a private element cannot be parsed and hides the rest of the "
                                "file"),
    "missing-sop-class-uid": (FAILED, "crawl", "no SOPClassUID (0008,0016)"),
    "missing-series-uid": (FAILED, "crawl", "no SeriesInstanceUID (0020,000E)"),
    "dicomdir": (EXCLUDED, "crawl", "a DICOMDIR media directory"),
    "invalid-rtstruct": (FAILED, "crawl", "an RTSTRUCT without a usable structure set"),
    "invalid-seg": (FAILED, "crawl", "a DICOM SEG that highdicom cannot read as a segmentation"),
    # --- what a series is -----------------------------------------------------------------------
    "non-image": (EXCLUDED, "crawl",
                  "family non-image-<modality>: RTSTRUCT, SEG, SR, RTDOSE, PR, KO, raw data, ..."),
    "modality": (EXCLUDED, "crawl", "family modality-<modality>: not in crawl.image_modalities"),
    "localizer": (EXCLUDED, "crawl", "ImageType holds LOCALIZER, SCOUT or TOPOGRAM"),
    "derived": (EXCLUDED, "crawl",
                "ImageType value 1 is DERIVED (unless crawl.include_derived: true)"),
    "secondary-capture": (EXCLUDED, "crawl",
                          "Secondary Capture SOP class (unless crawl.include_derived: true)"),
    "too-few-slices": (FAILED, "crawl",
                       "fewer slices than geometry.min_slices (not a volume)"),
    "ambiguous-split": (EXCLUDED, "crawl",
                        "several images per position and no echo / b-value / time point / "
                        "acquisition split gives one image per position"),
    "duplicate-of": (EXCLUDED, "crawl",
                     "family duplicate-of-<series_key>: the same slices and pixel data as that "
                     "image series of the same patient (a re-exported copy), with "
                     "crawl.duplicate_copies: keep-first"),
    "inconsistent-series": (FAILED, "crawl/convert",
                            "SOP class, modality, patient, study or frame of reference differ "
                            "within one SeriesInstanceUID"),
    "conflicting-duplicates": (FAILED, "crawl",
                               "two files with one SOPInstanceUID, or two slices at one position, "
                               "hold different content"),
    "missing-pixel-data": (FAILED, "crawl/convert", "no Pixel Data (7FE0,0010)"),
    "unsupported-photometric": (FAILED, "crawl/convert",
                                "not MONOCHROME1/2 with one sample per pixel nor 8-bit RGB / "
                                "YBR_FULL / YBR_FULL_422 / YBR_RCT / YBR_ICT (e.g. PALETTE "
                                "COLOR, 16-bit colour), or colour and monochrome in one series"),
    "unsupported-multiframe": (FAILED, "crawl/convert",
                               "multi-frame object whose frames cannot be placed: no per-frame "
                               "plane positions and no NM reconstruction or single plane "
                               "position with a slice spacing (the message names what is "
                               "missing)"),
    "nm-projection": (EXCLUDED, "crawl/convert",
                      "NM multi-frame object that is not a reconstructed volume (ImageType "
                      "value 3 STATIC, WHOLE BODY, DYNAMIC, GATED, TOMO, GATED TOMO: planar "
                      "images or projections)"),
    "cine-no-geometry": (EXCLUDED, "crawl/convert",
                         "multi-frame cine object (Frame Increment Pointer: Frame Time / Frame "
                         "Time Vector; US, XA, RF loops) without ImagePositionPatient / "
                         "ImageOrientationPatient: frames are time points without patient "
                         "coordinates"),
    "invalid-rescale": (FAILED, "crawl/convert",
                        "RescaleSlope/RescaleIntercept not a finite number, or slope 0"),
    "inconsistent-rescale-type": (FAILED, "crawl/convert",
                                  "RescaleType differs between slices (e.g. HU and US)"),
    # --- geometry (the one check shared by crawl and convert) -----------------------------------
    "no-slices": (FAILED, "crawl/convert", "no image slice at all"),
    "missing-geometry": (FAILED, "crawl/convert",
                         "ImagePositionPatient, ImageOrientationPatient or PixelSpacing missing"),
    "inconsistent-dimensions": (FAILED, "crawl/convert", "Rows/Columns differ between slices"),
    "mixed-orientation": (FAILED, "crawl/convert",
                          "ImageOrientationPatient differs between slices"),
    "invalid-orientation": (FAILED, "crawl/convert",
                            "ImageOrientationPatient is not two orthogonal unit vectors"),
    "inconsistent-pixel-spacing": (FAILED, "crawl/convert", "PixelSpacing differs between slices"),
    "invalid-pixel-spacing": (FAILED, "crawl/convert", "PixelSpacing not positive"),
    "duplicate-position": (FAILED, "convert",
                           "two slices of an explicit file list at one position (the crawl "
                           "resolves these first: split, de-duplicated or conflicting-duplicates)"),
    "gantry-tilt": (FAILED, "crawl/convert",
                    "slices shifted in-plane (tilted gantry or sheared stack), with "
                    "geometry.gantry_tilt: fail"),
    "missing-slice": (FAILED, "crawl/convert",
                      "a gap of about k x the usual slice spacing (k >= 2): never interpolated"),
    "uneven-spacing": (FAILED, "crawl/convert",
                       "slice gaps differ by more than geometry.slice_spacing_rtol, with "
                       "geometry.uneven_spacing: fail"),
    # --- pixel data (convert) -------------------------------------------------------------------
    "missing-decoder": (FAILED, "convert",
                        "compressed pixel data and no decoder installed (the message names the "
                        "package)"),
    "unsupported-transfer-syntax": (FAILED, "convert", "no decoder exists for the syntax"),
    "invalid-pixel-data": (FAILED, "convert",
                           "pixel data cannot be decoded or has the wrong size"),
    "unsupported-modality-lut": (FAILED, "convert",
                                 "Modality LUT Sequence instead of RescaleSlope/Intercept"),
    "non-finite-values": (FAILED, "convert", "NaN or infinite voxel values after rescale"),
    "colour-image": (EXCLUDED, "convert",
                     "a colour (RGB) series: its NIfTI is written (RGB24) for viewing, but "
                     "radiomics needs grey values, so pairing and extraction skip it"),
    "bias-correction-failed": (FAILED, "convert",
                               "convert.mr_bias_correction: true and N4 bias-field correction "
                               "cannot run on the MR series (no foreground above the Otsu "
                               "threshold, or SimpleITK's N4 raised an error)"),
    # --- PET standardised uptake values (radflow.dicom.suv, convert.pet_units) ------------------
    "suv-units-unknown": (FAILED, "convert",
                          "PET Units (0054,1001) missing or not convertible to the asked SUV: "
                          "not BQML, not CNTS with a Philips SUV or activity-concentration "
                          "scale factor (7053,1000) / (7053,1009), not stored SUVs (GML, "
                          "CM2ML) of the asked or a convertible SUVType"),
    "suv-not-attenuation-corrected": (FAILED, "convert",
                                      "CorrectedImage (0028,0051) does not list ATTN: the "
                                      "voxel values are not quantitative"),
    "suv-decay-unknown": (FAILED, "convert",
                          "DecayCorrection (0054,1102) missing or not START / ADMIN / NONE, or "
                          "contradicting CorrectedImage (DECY); NONE without ActualFrameDuration, "
                          "in a multi-frame object or on a resampled volume"),
    "suv-missing-weight": (FAILED, "convert",
                           "PatientWeight (0010,1030) missing, not positive or 1000 kg or more"),
    "suv-missing-dose": (FAILED, "convert",
                         "RadionuclideTotalDose (0018,1074) missing, not positive or below "
                         "0.1 MBq (a dose written in MBq instead of Bq?)"),
    "suv-missing-half-life": (FAILED, "convert",
                              "RadionuclideHalfLife (0018,1075) missing or not positive"),
    "suv-missing-start-time": (FAILED, "convert",
                               "no readable RadiopharmaceuticalStartDateTime (0018,1078) or "
                               "RadiopharmaceuticalStartTime (0018,1072): the injection time"),
    "suv-missing-scan-time": (FAILED, "convert",
                              "no readable SeriesDate/SeriesTime or AcquisitionDate/"
                              "AcquisitionTime to decay the dose to"),
    "suv-implausible-times": (FAILED, "convert",
                              "the injection lies after the scan time or more than 10 "
                              "half-lives before it"),
    "suv-missing-height-or-sex": (FAILED, "convert",
                                  "convert.pet_units suv-lbm needs PatientSize (0010,1020, a "
                                  "height in m) and PatientSex M or F; suv-bsa needs "
                                  "PatientSize"),
    "suv-inconsistent-headers": (FAILED, "convert",
                                 "units, corrections, patient weight, size or sex, dose, "
                                 "half-life, injection or series time, or the vendor scale "
                                 "factor differ between the images of one PET series"),
    # --- radflow itself -------------------------------------------------------------------------
    "internal-error": (FAILED, "crawl/convert",
                       "an unexpected error while checking one series (a radflow bug: please "
                       "report it with the traceback from the crawl log); the other series are "
                       "not affected"),
    # --- Siemens mosaic (radflow.dicom.mosaic) --------------------------------------------------
    "mosaic-unreadable": (FAILED, "crawl/convert",
                          "a Siemens mosaic (ImageType MOSAIC) whose tiles cannot be placed: no "
                          "or a broken CSA image header, no NumberOfImagesInMosaic or "
                          "SliceNormalVector, a mosaic that does not divide into its tile grid, "
                          "no slice spacing, a slice normal not parallel to the orientation's, "
                          "or tiles in reverse protocol order (the message names which)"),
    # --- parameter sets per modality (radflow.params_sets; an extract status) -------------------
    "no-params-for-modality": (EXCLUDED, "extract",
                               "extract.params is a mapping with no file for the image's "
                               "modality key (CT, MR, PT) and no default file: the pairs of the "
                               "image are not extracted"),
    # --- protocol QC gates (radflow.protocol; a pair status, not a series status) ---------------
    "protocol-failed": (EXCLUDED, "protocol",
                        "the pair's image series or its study fails a rule of the cohort's "
                        "protocol profile, with protocol.on_fail: exclude (or strict: true)"),
    # --- reliability stage (radflow.reliability; the status of one copy of a pair) --------------
    "empty-region": (FAILED, "reliability",
                     "a negative control on the non-roi region of a pair whose ROI fills the "
                     "whole image: the region has no voxel"),
    "roi-too-large": (FAILED, "reliability",
                      "a volume perturbation would grow the ROI by more voxels than the image "
                      "has outside it"),
    # --- sr stage (radflow.sr; the DICOM SEG and SR of one pair) ---------------------------------
    "no-dicom-source": (EXCLUDED, "sr",
                        "the pair's image is not a DICOM series (a NIfTI/NRRD file named in the "
                        "cohort sheet): no SR or SEG can reference it"),
    "source-grid-mismatch": (FAILED, "sr",
                             "the pair's mask cannot be placed on the source DICOM images' "
                             "pixels (a resampled volume: gantry tilt or uneven spacing; "
                             "several multi-frame images, one volume of a split multi-frame "
                             "image), so no SEG can reference them"),
    "sr-error": (FAILED, "sr",
                 "highdicom refused to build the pair's SEG or SR, or the pair has no feature "
                 "row to report (the message says why)"),
}

#: QC warnings (not statuses): recorded in ``SeriesRecord.qc`` (crawl) or, for the CT value
#: checks decided on pixels (``hu-out-of-range``, ``hu-rescale-suspect``, ``padding-present``),
#: in the convert sidecar's ``qc`` with a count; logged as warnings.
QC_WARNINGS: dict[str, str] = {
    "charset-corrected": "a non-conformant SpecificCharacterSet (e.g. ISO_IR 149) was read as "
                         "the conformant term it stands for (e.g. ISO 2022 IR 149)",
    "charset-unknown": "an unknown SpecificCharacterSet: text read as ASCII/Latin-1",
    "charset-decode-error": "text bytes invalid in the declared character set: replaced",
    "duplicate-files-ignored": "identical copies of files (same SOPInstanceUID, same content) "
                               "were read once",
    "duplicate-slices-ignored": "slices with another SOPInstanceUID but the same position and "
                                "identical content were read once",
    "unreadable-file-in-folder": "a file in one of the series' folders could not be read and "
                                 "names no series: it may be a lost slice",
    "colour-image": "a colour (RGB) series: converted, then excluded from pairing and "
                    "extraction (convert status excluded:colour-image)",
    "duplicate-copy-of": "family duplicate-copy-of-<series_key>: another image series of the "
                         "same patient has the same slices and pixel data (a re-exported copy; "
                         "crawl.duplicate_copies decides which stays ok)",
    "frame-positions-assumed": "the frames of a classic multi-frame object were placed by an "
                               "assumption (one plane position, frames stacked along the "
                               "normal at SpacingBetweenSlices or SliceThickness)",
    "implausible-extent": "the in-plane extent (Rows x spacing or Columns x spacing) exceeds "
                          "what the modality acquires (MR 700 mm, CT 850 mm, PT/NM 1000 mm, "
                          "others 700 mm): e.g. an unrecognised mosaic",
    "acquisition-matrix-mismatch": "a single slice whose Rows and Columns are both at least 3 "
                                   "times its AcquisitionMatrix: several images tiled into "
                                   "one (e.g. an unrecognised mosaic)",
    # parameter sets (radflow.params_sets.qc_warnings): in the extract status and the feature
    # rows' ``qc`` column, for a single params file or the default file used on such an image
    "fixed-bin-width-on-mr": "an MR image extracted with a fixed bin width (no binCount) and no "
                             "normalisation: its raw intensities are arbitrary units",
    "hu-resegmentation-on-non-ct": "an image that is not CT extracted with an absolute "
                                   "resegmentRange whose lower bound is -100 or below (HU)",
    # radflow's own feature families (radflow.extract.families): in the extract status and the
    # pair's rows' ``qc`` column
    "fractal-roi-too-small": "the ROI's bounding box allows fewer than two box sizes: its "
                             "fractal dimensions are NaN (the pair's other features are kept)",
    # IBSI mode (extract.ibsi; radflow.ibsi.mode): in the extract status and the rows' ``qc``
    "ibsi-deviation": "family ibsi-deviation-<key> (filters): with extract.ibsi on, a "
                      "difference from IBSI 1 the parameter set keeps (radflow.ibsi.Deviation; "
                      "README, \"IBSI mode\")",
    "hu-out-of-range": "a CT volume has values (after rescale, padding not counted) below "
                       "-1100 HU or above 31743 HU, the limits of any CT number scale; the "
                       "count is the number of such voxels",
    "hu-rescale-suspect": "with hu-out-of-range: RescaleSlope/RescaleIntercept are not 1 and "
                          "-1024, -1000 or 0, or RescaleType is neither HU nor absent; the "
                          "count is the number of such slices (the rescale is the likely cause)",
    "padding-present": "a CT volume holds padding (PixelPaddingValue, or -3024 / -2000 HU as "
                       "the volume's minimum without it): voxels outside the reconstruction "
                       "circle; the count is the number of padding voxels (exclude them with a "
                       "resegmentation range)",
}

_FAMILIES = ("non-image", "modality", "duplicate-of")
_STATUS = re.compile(r"^(excluded|failed):([a-z0-9]+(?:-[a-z0-9]+)*)$")


def reason_kind(reason: str) -> str | None:
    """``"excluded"`` / ``"failed"`` for a known reason (families included), else ``None``."""
    if reason in REASONS:
        return REASONS[reason][0]
    for family in _FAMILIES:
        if reason.startswith(family + "-") and len(reason) > len(family) + 1:
            return REASONS[family][0]
    return None


def is_known_status(status: str) -> bool:
    """Whether ``status`` is ``ok`` or ``<kind>:<reason>`` with a reason of :data:`REASONS`
    under its own kind."""
    if status == "ok":
        return True
    match = _STATUS.match(status)
    return match is not None and reason_kind(match.group(2)) == match.group(1)


__all__ = ["EXCLUDED", "FAILED", "QC_WARNINGS", "REASONS", "is_known_status", "reason_kind"]
