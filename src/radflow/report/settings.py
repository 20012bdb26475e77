"""The report's settings (config section ``report``; README, "Report").

Built once with :func:`radflow.settings.from_mapping` (:func:`settings_from`), so a typo in a key
is a :class:`~radflow.errors.ConfigError`; the ``Literal`` choices are checked when the dataclass
is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from radflow.errors import ConfigError
from radflow.settings import check_choices, from_mapping

#: A plane of the QC picture, through the ROI's centre.
Plane = Literal["axial", "coronal", "sagittal"]
PLANES: tuple[Plane, ...] = ("axial", "coronal", "sagittal")
#: ``report.ct_window``: ``auto`` picks the lung window when the ROI's surroundings are aerated.
CtWindow = Literal["auto", "soft-tissue", "lung"]


@dataclass(frozen=True)
class ReportSettings:
    """The report (config section ``report``; ``enabled`` is the Snakefile's switch).

    Attributes
    ----------
    thumbnails_per_page
        QC thumbnails on one page of the gallery (the page's script pages and filters them).
    planes
        The planes of every QC picture, in this order (``axial``, ``coronal``, ``sagittal``).
    margin_mm
        Context around the ROI's bounding box in each picture (mm, each side).
    ct_window
        CT display window: ``soft-tissue`` (W 400 / L 40 HU), ``lung`` (W 1500 / L -600 HU) or
        ``auto``: lung when the median of the picture's voxels outside the ROI is below -400 HU.
    percentile_window
        MR, PET and other modalities: the display window from these percentiles of the voxels
        around the ROI (the picture's crop).
    distribution_features
        Features whose distributions are plotted (the top-ranked associations, else cluster
        representatives).
    heatmap_max_features
        The correlation heatmap's largest size; with more analysed features it shows the cluster
        representatives.
    top_associations
        Rows per outcome and statistic in the association tables and the forest plots.
    """

    thumbnails_per_page: int = 24
    planes: tuple[Plane, ...] = PLANES
    margin_mm: float = 20.0
    ct_window: CtWindow = "auto"
    percentile_window: tuple[float, float] = (1.0, 99.0)
    distribution_features: int = 12
    heatmap_max_features: int = 2000
    top_associations: int = 15

    def __post_init__(self) -> None:
        check_choices(self, "report")
        if not self.planes or len(set(self.planes)) != len(self.planes) \
                or not set(self.planes) <= set(PLANES):
            raise ConfigError(f"report.planes must be distinct planes of {', '.join(PLANES)}, "
                              f"got {list(self.planes)}")
        low, high = self.percentile_window
        if not 0 <= low < high <= 100:
            raise ConfigError("report.percentile_window must be [low, high] with "
                              f"0 <= low < high <= 100, got {list(self.percentile_window)}")
        for name in ("thumbnails_per_page", "distribution_features", "heatmap_max_features",
                     "top_associations"):
            if getattr(self, name) < 1:
                raise ConfigError(f"report.{name} must be at least 1")
        if self.margin_mm < 0:
            raise ConfigError("report.margin_mm must be >= 0")


def settings_from(mapping: Mapping[str, Any] | None) -> ReportSettings:
    """:class:`ReportSettings` from the config's ``report`` section (``enabled`` ignored)."""
    values = {k: v for k, v in (mapping or {}).items() if k != "enabled"}
    return from_mapping(ReportSettings, values, section="report")


__all__ = ["PLANES", "CtWindow", "Plane", "ReportSettings", "settings_from"]
