"""The reliability stage's settings: config section ``reliability`` (README, "Reliability:
perturbations, negative controls, test–retest"), built once by
:func:`radflow.settings.from_mapping`.

Kept beside the stage rather than in :mod:`radflow.settings`, because it is made of the
perturbation, control and rule settings of :mod:`radflow.reliability` (which import
:mod:`radflow.settings` themselves).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from radflow.errors import ConfigError
from radflow.reliability.controls import NegativeControlSettings
from radflow.reliability.perturb import Chain, PerturbationSettings
from radflow.reliability.reliable import ReliableRule
from radflow.settings import from_mapping

#: The job name of a unit's negative controls (a pseudo-chain: ``<unit>.controls.parquet``); no
#: perturbation chain may have this name.
CONTROLS_JOB = "controls"


@dataclass(frozen=True)
class ReliabilitySettings:
    """Config section ``reliability``.

    Attributes
    ----------
    enabled
        The stage's outputs are part of the workflow's ``all`` target (default false).
    perturbation
        Chains and perturbation settings
        (:class:`~radflow.reliability.perturb.PerturbationSettings`; a mapping is built with
        :func:`from_mapping`). ``chains: []``: no perturbation.
    negative_controls
        Kinds x regions (:class:`~radflow.reliability.controls.NegativeControlSettings`); None:
        no negative control.
    retest
        Use the cohort sheet's ``timepoint`` column: the pairs of one subject and ROI at two or
        more timepoints are repeat scans (test–retest agreement).
    rule
        Which features are reliable (:class:`~radflow.reliability.reliable.ReliableRule`).
    confidence
        Level of the agreement statistics' two-sided intervals.
    threads, mem_mb, runtime
        Threads of a ``reliability_one`` job and the smallest memory (MB) and run-time
        (minutes) requests (radflow asks for more when the model says so).
    """

    enabled: bool = False
    perturbation: PerturbationSettings = field(default_factory=PerturbationSettings)
    negative_controls: NegativeControlSettings | None = field(
        default_factory=NegativeControlSettings)
    retest: bool = True
    rule: ReliableRule = field(default_factory=ReliableRule)
    confidence: float = 0.95
    threads: int = 1
    mem_mb: int = 1000
    runtime: int = 10

    def __post_init__(self) -> None:
        for name, cls in (("perturbation", PerturbationSettings), ("rule", ReliableRule)):
            value = getattr(self, name)
            if isinstance(value, Mapping):
                object.__setattr__(self, name, from_mapping(cls, value,
                                                            section=f"reliability.{name}"))
        if isinstance(self.negative_controls, Mapping):
            object.__setattr__(self, "negative_controls", from_mapping(
                NegativeControlSettings, self.negative_controls,
                section="reliability.negative_controls"))
        if not isinstance(self.enabled, bool) or not isinstance(self.retest, bool):
            raise ConfigError("reliability.enabled and reliability.retest must be true or false")
        if any(c.name == CONTROLS_JOB for c in self.perturbation.chains):
            raise ConfigError(f"reliability.perturbation.chains: the name {CONTROLS_JOB!r} is "
                              "the negative controls' job; choose another chain name")
        if not self.perturbation.chains and not self.retest:
            raise ConfigError("reliability: no perturbation chain and retest false: no source "
                              "the reliable list could judge")
        if not 0.0 < float(self.confidence) < 1.0:
            raise ConfigError(f"reliability.confidence must be in (0, 1), got {self.confidence}")

    @property
    def jobs(self) -> tuple[str, ...]:
        """The per-unit jobs: each chain's name, then :data:`CONTROLS_JOB` when controls are on."""
        names = tuple(c.name for c in self.perturbation.chains)
        return names + ((CONTROLS_JOB,) if self.negative_controls is not None else ())

    def chain(self, name: str) -> Chain:
        """The chain called ``name``.

        Raises
        ------
        ConfigError
            No chain has that name.
        """
        for chain in self.perturbation.chains:
            if chain.name == name:
                return chain
        raise ConfigError(f"reliability: no perturbation chain {name!r} (chains: "
                          f"{', '.join(c.name for c in self.perturbation.chains) or 'none'})")


def reliability_settings(section: Mapping[str, Any] | None) -> ReliabilitySettings:
    """The :class:`ReliabilitySettings` of the config's ``reliability`` section."""
    return from_mapping(ReliabilitySettings, section, section="reliability")


__all__ = ["CONTROLS_JOB", "ReliabilitySettings", "reliability_settings"]
