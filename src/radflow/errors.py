"""Exceptions raised by radflow.

Every error is a :class:`RadflowError` *and* the builtin exception it stands in for, so callers
that catch ``ValueError`` or ``OSError`` keep working. Messages name the object (pseudonymous key,
file name inside the cohort, DICOM tag) and the rule that was broken; they never carry patient
names, IDs, birth dates or accession numbers.

Where a per-case problem is recorded in a manifest instead of raised, the exception's
:attr:`RadflowError.reason` is the short machine-readable reason (``missing-slice``,
``empty-mask``, ...) that goes after ``failed:`` / ``excluded:`` in the ``status`` column.
"""

from __future__ import annotations


class RadflowError(Exception):
    """Base class of all radflow errors.

    Parameters
    ----------
    message
        Human-readable message naming the object and the rule broken.
    reason
        Short, closed-vocabulary reason for manifests (``[a-z0-9-]+``); defaults to the
        class's :attr:`default_reason`.
    """

    default_reason = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or self.default_reason


class ConfigError(RadflowError, ValueError):
    """The configuration (config.yaml, --config, cohort sheet columns) is invalid."""

    default_reason = "config"


class KeyFileError(RadflowError, OSError):
    """The pseudonymisation key is missing, unreadable or too short."""

    default_reason = "key"


class InputFileError(RadflowError, OSError):
    """An input file (DICOM, NIfTI, table) cannot be read."""

    default_reason = "unreadable"


class PartialFileError(InputFileError):
    """A file whose beginning could be read but not the rest; ``series_uid`` is what its partial
    header says ("" when the header ends before it), so that the file fails its own series."""

    def __init__(self, message: str, *, reason: str, series_uid: str = "") -> None:
        super().__init__(message, reason=reason)
        self.series_uid = series_uid


class TruncatedFileError(PartialFileError):
    """A file ends early (reason ``truncated``)."""

    def __init__(self, message: str, *, series_uid: str = "") -> None:
        super().__init__(message, reason="truncated", series_uid=series_uid)


class DicomError(RadflowError, ValueError):
    """A DICOM object violates a rule radflow relies on (missing tag, bad value)."""

    default_reason = "invalid-dicom"


class SeriesGeometryError(RadflowError, ValueError):
    """A DICOM series does not form a valid regular volume (missing slice, mixed orientation...)."""

    default_reason = "geometry"


class PairingError(RadflowError, ValueError):
    """An image and a mask cannot be paired (grid mismatch, absent label, empty mask)."""

    default_reason = "pairing"


class ExtractionError(RadflowError, RuntimeError):
    """Feature extraction failed for one pair."""

    default_reason = "extraction"


class FilterError(RadflowError, ValueError):
    """A filter was given invalid options or an invalid image."""

    default_reason = "filter"


class MergeError(RadflowError, ValueError):
    """Feature tables and clinical data cannot be joined under the configured rules."""

    default_reason = "merge"


class AgreementError(RadflowError, ValueError):
    """A feature table or agreement table cannot give agreement statistics or a reliable list
    (:mod:`radflow.reliability.agreement`): unknown ``source``, duplicate rating, missing
    column, a rule that judges no source."""

    default_reason = "agreement"


class StrictModeError(RadflowError, RuntimeError):
    """``strict: true`` and at least one case failed."""

    default_reason = "strict"


class StatusError(RadflowError, ValueError):
    """A text that is not a ``kind:reason`` status (:class:`radflow.records.Status`), or a
    reason of the closed vocabulary under another kind."""

    default_reason = "bad-status"


class SuvError(RadflowError, ValueError):
    """A PET series' header does not allow standardised uptake values to be computed safely
    (:mod:`radflow.dicom.suv`); the reason is one of the ``suv-*`` reasons of
    :data:`radflow.dicom.reasons.REASONS`."""

    default_reason = "suv-units-unknown"


class AnalysisError(RadflowError, ValueError):
    """The merged dataset cannot give the analysis the outcome spec asks for
    (:mod:`radflow.analyse`): an outcome column with other values than its type allows, too few
    subjects for a split or a test, no volume feature to pick a subject's largest lesion by."""

    default_reason = "analysis"
