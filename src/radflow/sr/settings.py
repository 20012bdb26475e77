"""The ``sr`` section of the configuration as a frozen dataclass (README, "DICOM SR (TID 1500)").

Built once with :func:`radflow.settings.from_mapping` (``from_mapping(SrSettings, mapping,
section="sr")``), so a typo in a key is a :class:`~radflow.errors.ConfigError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from radflow.settings import check_choices

#: ``sr.uncoded``: what happens to a feature row without an IBSI identifier.
Uncoded = Literal["private", "skip"]


@dataclass(frozen=True)
class SrSettings:
    """Settings of the ``sr`` stage.

    Attributes
    ----------
    enabled
        Add the stage to the ``all`` target (the rule does not read it).
    image_types
        Image types whose feature rows become measurements (``original``, ``wavelet-LLH``, ...);
        empty: every image type of the pair's rows.
    uncoded
        ``private``: a feature without an IBSI identifier is coded in radflow's private scheme
        ``99RADFLOW`` (:mod:`radflow.sr.codes`); ``skip``: it is left out of the report.
    """

    enabled: bool = False
    image_types: tuple[str, ...] = ()
    uncoded: Uncoded = "private"

    def __post_init__(self) -> None:
        check_choices(self, "sr")


__all__ = ["SrSettings", "Uncoded"]
