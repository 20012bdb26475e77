"""A pair's features as a DICOM Comprehensive 3D SR, TID 1500 Measurement Report (highdicom).

One report per pair: the observer context is the device radflow (its version), and one TID 1411
volumetric measurement group per image type of the pair's feature rows (``original``,
``wavelet-LLH``, ...) and software that computed them (PyRadiomics for its feature classes,
radflow for radflow's own families), each with the ROI's tracking identifier and UID, the
referenced segment (the SEG's SOP instance and segment number, and the source image series by
UID), the algorithm identification (TID 4019: PyRadiomics or radflow, its version, and as
parameters ``image_type=``, ``params_hash=``, ``params_set=``, ``normalisation=``,
``radflow_version=``), and one TID 300 measurement per feature row: concept, unit and method of
:mod:`radflow.sr.codes`. The algorithm sits on the group, not on each of the ~1,000
measurements: per measurement it tripled the report's size and build time.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
import pandas as pd
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from radflow.sr.codes import (
    NOT_MEASUREMENTS,
    PRIVATE_SCHEME,
    SCHEMES,
    feature_concept,
    intensity_unit,
)

#: Feature classes computed by PyRadiomics (the others are radflow's own families).
PYRADIOMICS_CLASSES = frozenset({"shape", "shape2D", "firstorder", "glcm", "glrlm", "glszm",
                                 "gldm", "ngtdm"})
#: SpecificCharacterSet of radflow's SR and SEG: UTF-8 (the source's text is decoded first).
CHARSET = "ISO_IR 192"
#: Parameter names of the algorithm identification (``name=value`` text items).
IMAGE_TYPE, PARAMS_HASH, PARAMS_SET, NORMALISATION, RADFLOW_VERSION = (
    "image_type", "params_hash", "params_set", "normalisation", "radflow_version")


def uid_of(*parts: str) -> str:
    """A deterministic UID ``2.25.<128 bits of SHA-256 of the parts>`` (PS3.5 B.2).

    radflow's SR and SEG get UIDs derived from the pair id (a keyed pseudonym) and the content,
    so a rerun on the same inputs writes the same UIDs and no source UID can be recovered.
    """
    digest = hashlib.sha256("\x1f".join(("radflow-sr", *parts)).encode("utf-8")).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


@dataclass(frozen=True)
class SegmentRef:
    """The segment a report's measurements refer to."""

    sop_class_uid: str
    sop_instance_uid: str
    segment_number: int
    source_series_uid: str


@dataclass(frozen=True)
class ReportIdentity:
    """UIDs and numbers of one report."""

    series_uid: str
    instance_uid: str
    tracking_uid: str
    tracking_id: str
    series_number: int = 9001


@dataclass(frozen=True)
class ReportContext:
    """What the units depend on and what is left out (:class:`radflow.sr.settings.SrSettings`)."""

    modality: str
    pet_units: str
    uncoded: str = "private"


def _params(pairs: Sequence[tuple[str, str]]) -> list[str]:
    return [f"{k}={v}" for k, v in pairs if v]


def measurement_groups(rows: pd.DataFrame, segment: SegmentRef, identity: ReportIdentity,
                       context: ReportContext, version: str
                       ) -> tuple[list[hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations],
                                  dict[str, int]]:
    """The TID 1411 groups of one pair's feature rows, and counts of rows left out.

    Returns
    -------
    groups, counts
        ``counts``: ``measurements`` written, and the rows left out: ``non-finite`` (NaN /
        infinite values: a DICOM numeric value cannot hold them), ``uncoded`` (no IBSI code,
        with ``sr.uncoded: skip``), ``not-a-measurement``.
    """
    left_out = {"measurements": 0, "non-finite": 0, "uncoded": 0, "not-a-measurement": 0}
    tracking = hd.sr.TrackingIdentifier(uid=identity.tracking_uid,
                                        identifier=identity.tracking_id)
    engine = rows["feature_class"].map(lambda c: "PyRadiomics" if c in PYRADIOMICS_CLASSES
                                       else "radflow")
    groups = []
    for (image_type, name), part in rows.groupby([rows["image_type"], engine], sort=False):
        first = part.iloc[0]
        intensity = intensity_unit(context.modality, str(image_type),
                                   str(first.get("normalisation", "")), context.pet_units)
        measurements = []
        for row in part.itertuples(index=False):
            key = (str(row.feature_class), str(row.feature))
            value = float(row.value)
            if key in NOT_MEASUREMENTS:
                left_out["not-a-measurement"] += 1
                continue
            if not math.isfinite(value):
                left_out["non-finite"] += 1
                continue
            concept = feature_concept(*key, str(row.ibsi_code or ""), intensity=intensity)
            if concept.name.scheme_designator == PRIVATE_SCHEME and context.uncoded == "skip":
                left_out["uncoded"] += 1
                continue
            measurements.append(hd.sr.Measurement(
                name=concept.name, value=value, unit=concept.unit, method=concept.method))
        if not measurements:
            continue
        left_out["measurements"] += len(measurements)
        reference = hd.sr.ReferencedSegment(
            sop_class_uid=segment.sop_class_uid, sop_instance_uid=segment.sop_instance_uid,
            segment_number=segment.segment_number,
            source_series=hd.sr.SourceSeriesForSegmentation(segment.source_series_uid))
        algorithm = hd.sr.AlgorithmIdentification(
            name=str(name), version=str(first["pyradiomics_version"]) if name == "PyRadiomics"
            else version, parameters=_params([
                (IMAGE_TYPE, str(image_type)), (PARAMS_HASH, str(first.get("params_hash", ""))),
                (PARAMS_SET, str(first.get("params_set", ""))),
                (NORMALISATION, str(first.get("normalisation", ""))),
                (RADFLOW_VERSION, version)]))
        groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking, referenced_segment=reference, algorithm_id=algorithm,
            measurements=measurements))
    return groups, left_out


def build_report(evidence: Sequence[Dataset],
                 groups: Sequence[hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations],
                 identity: ReportIdentity, version: str) -> hd.sr.Comprehensive3DSR:
    """The Comprehensive 3D SR (TID 1500) of one pair.

    Parameters
    ----------
    evidence
        The source images' and the SEG's headers (Current Requested Procedure Evidence).
    groups
        :func:`measurement_groups`.
    identity
        UIDs and numbers of the report.
    version
        radflow's version (the observer device and the software versions).
    """
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=uid_of("device", version), name="radflow", manufacturer_name="radflow",
            model_name=f"radflow {version}"[:64]))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=codes.SCT.ImagingProcedure, imaging_measurements=list(groups),
        title=codes.cid7021.ImagingMeasurementReport)
    schemes = [CodingSchemeIdentificationItem(designator=d, name=name,
                                             responsible_organization=org)
               for d, (name, org) in SCHEMES.items()]
    return hd.sr.Comprehensive3DSR(
        evidence=list(evidence), content=report[0], series_instance_uid=identity.series_uid,
        series_number=identity.series_number, sop_instance_uid=identity.instance_uid,
        instance_number=1, manufacturer="radflow", is_complete=True, is_final=True,
        series_description="radflow features", coding_schemes=schemes,
        software_versions=version, manufacturer_model_name="radflow",
        specific_character_set=CHARSET)


__all__ = ["IMAGE_TYPE", "NORMALISATION", "PARAMS_HASH", "PARAMS_SET", "PYRADIOMICS_CLASSES",
           "RADFLOW_VERSION",
           "ReportContext", "ReportIdentity", "SegmentRef", "build_report",
           "measurement_groups", "uid_of"]
