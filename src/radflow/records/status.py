"""The stage status ``kind:reason`` (:class:`Status`), checked against the closed reason
vocabulary :data:`radflow.dicom.reasons.REASONS` (the one place the reasons live)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from radflow.dicom.reasons import reason_kind
from radflow.errors import StatusError

OK, EXCLUDED, FAILED, SKIPPED = "ok", "excluded", "failed", "skipped"
#: A reason: lower-case letters, digits and dashes (``RadflowError.reason``).
_REASON = re.compile(r"[a-z0-9-]+")
#: Prefixes the later stages put before an earlier stage's reason (``failed:image-<reason>``).
RELAYED_PREFIXES = ("image-", "mask-")


@dataclass(frozen=True)
class Status:
    """A stage status: ``ok``, ``excluded:<reason>``, ``failed:<reason>`` or
    ``skipped:<status>`` (the extract stage skipping a pair whose pair status is not ``ok``).

    A reason of the closed vocabulary (:data:`radflow.dicom.reasons.REASONS`) must come with its
    own kind (``failed:colour-image`` is refused); a relayed reason (``image-<reason>``,
    ``mask-<reason>``) and the reasons of the later stages (``grid-mismatch``, ...) are checked
    for their characters only.

    Attributes
    ----------
    kind
        ``ok``, ``excluded``, ``failed`` or ``skipped``.
    detail
        ``""`` for ``ok``; the reason; for ``skipped`` the skipped status's text.
    """

    kind: str
    detail: str = ""

    def __post_init__(self) -> None:
        if self.kind == OK:
            if self.detail:
                raise StatusError(f"status 'ok' takes no reason (got {self.detail!r})")
        elif self.kind == SKIPPED:
            Status.parse(self.detail)
        elif self.kind in (EXCLUDED, FAILED):
            if not _REASON.fullmatch(self.detail):
                raise StatusError(f"status {self.kind}:{self.detail}: a reason is [a-z0-9-]+")
            known = reason_kind(self.detail)
            if known is not None and known != self.kind:
                raise StatusError(f"status {self.kind}:{self.detail}: reason {self.detail!r} is of "
                                  f"kind {known} (radflow.dicom.reasons.REASONS)")
        else:
            raise StatusError(f"status kind {self.kind!r}: expected ok, excluded, failed or "
                              "skipped")

    @classmethod
    def parse(cls, text: str) -> Status:
        """The status written as ``text`` (``str(Status.parse(t)) == t``)."""
        kind, sep, detail = str(text).partition(":")
        if kind != OK and not sep:
            raise StatusError(f"status {text!r}: expected 'ok' or '<kind>:<reason>'")
        return cls(kind, detail)

    @classmethod
    def ok(cls) -> Status:
        return cls(OK)

    @classmethod
    def excluded(cls, reason: str) -> Status:
        return cls(EXCLUDED, reason)

    @classmethod
    def failed(cls, reason: str) -> Status:
        return cls(FAILED, reason)

    @classmethod
    def skipped(cls, status: Status | str) -> Status:
        return cls(SKIPPED, str(status))

    @classmethod
    def of_reason(cls, reason: str, default: str = FAILED) -> Status:
        """The status of ``reason`` under its vocabulary kind (``default`` when unknown)."""
        return cls(reason_kind(reason) or default, reason)

    @property
    def is_ok(self) -> bool:
        return self.kind == OK

    @property
    def is_non_image(self) -> bool:
        """``excluded:non-image-<modality or SOP class>``: a series that is no image (a mask
        object, a report, ...)."""
        return self.kind == EXCLUDED and self.detail.startswith("non-image")

    @property
    def reason(self) -> str:
        """The reason (``""`` for ``ok``; of a skipped status, the skipped status's reason)."""
        return Status.parse(self.detail).reason if self.kind == SKIPPED else self.detail

    def __str__(self) -> str:
        return self.kind if self.kind == OK else f"{self.kind}:{self.detail}"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


__all__ = ["EXCLUDED", "FAILED", "OK", "RELAYED_PREFIXES", "SKIPPED", "Status", "StatusError"]
