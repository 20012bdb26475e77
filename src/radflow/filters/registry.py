"""The filter registry: filter name -> settings class, image function, feature-prefix function.

``extract.image_types`` entries of the config (``{filter: laws, kernel: L5E5E5, ...}``) are built
through :func:`build_filter`, with the one settings path (:func:`radflow.settings.from_mapping`):
an unknown filter, an unknown or missing option, or an invalid value is a
:class:`~radflow.errors.ConfigError` naming the key (``extract.image_types[0].kernel: ...``).

Adding a filter (README, "Extending radflow"): write the filter module (a frozen settings
dataclass that checks itself in ``__post_init__``, raising :class:`~radflow.errors.FilterError`
``"<option>: ..."``; an image function ``(sitk.Image, settings) -> sitk.Image``; a prefix function
``settings -> str``), add one line to :data:`FILTERS`, and one entry to the schema
(``config/schema/config.schema.yaml``, ``extract.image_types``).

Feature prefixes (image-type names) must not collide with PyRadiomics' own image types
(``original``, ``log-sigma-*``, ``wavelet*``, ...; see
:class:`radflow.radiomics_adapter.ImageTypeSpec`): ``laws-L5E5E5-ri-max-e7``, ``mean-s5``,
``ibsi-log-s1-5mm``, ``ibsi-wavelet-haar-LLH-l1``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import SimpleITK as sitk

from radflow.errors import ConfigError, FilterError
from radflow.filters.laws import LawsSettings, laws_feature_prefix, laws_image
from radflow.filters.log import LogSettings, log_feature_prefix, log_image
from radflow.filters.mean import MeanSettings, mean_feature_prefix, mean_image
from radflow.filters.wavelet import WaveletSettings, wavelet_feature_prefix, wavelet_image
from radflow.settings import from_mapping


@dataclass(frozen=True)
class FilterEntry:
    """One registered filter.

    Attributes
    ----------
    settings
        Frozen dataclass of the filter's options (the config entry's keys other than ``filter``).
    image
        ``image(sitk.Image, settings) -> sitk.Image``: the response map, float64, same geometry.
    prefix
        ``prefix(settings) -> str``: the image-type name that starts every feature name.
    """

    settings: type[Any]
    image: Callable[[sitk.Image, Any], sitk.Image]
    prefix: Callable[[Any], str]


#: Filters selectable in ``extract.image_types`` (and by ``radflow filter --filter``).
FILTERS: dict[str, FilterEntry] = {
    "laws": FilterEntry(LawsSettings, laws_image, laws_feature_prefix),
    "mean": FilterEntry(MeanSettings, mean_image, mean_feature_prefix),
    "log": FilterEntry(LogSettings, log_image, log_feature_prefix),
    "wavelet": FilterEntry(WaveletSettings, wavelet_image, wavelet_feature_prefix),
}


@dataclass(frozen=True)
class BuiltFilter:
    """A configured filter: ``name`` (the feature prefix), its ``settings`` and ``entry``."""

    name: str
    settings: Any
    entry: FilterEntry

    def image(self, image: sitk.Image) -> sitk.Image:
        """The response map of ``image`` (a 3-D SimpleITK image)."""
        return self.entry.image(image, self.settings)


def build_filter(values: Mapping[str, Any], *, section: str) -> BuiltFilter:
    """Build one configured filter from ``{filter: <name>, <option>: <value>, ...}``.

    Parameters
    ----------
    values
        The config entry; ``filter`` names a key of :data:`FILTERS`, the other keys are fields
        of its settings class.
    section
        Where the entry is in the config (``extract.image_types[0]``), for messages.

    Raises
    ------
    ConfigError
        No or an unknown ``filter``; an unknown or missing option; an invalid option value.
    """
    if not isinstance(values, Mapping):
        raise ConfigError(f"{section}: expected a mapping {{filter: <name>, ...}}, "
                          f"got {values!r}")
    options = dict(values)
    name = options.pop("filter", None)
    if name not in FILTERS:
        raise ConfigError(f"{section}.filter: {name!r} is not a known filter; expected one of "
                          f"{', '.join(sorted(FILTERS))}")
    entry = FILTERS[name]
    try:
        settings = from_mapping(entry.settings, options, section=section)
    except FilterError as exc:  # the settings' own checks: "<option>: <message>"
        raise ConfigError(f"{section}.{exc}") from exc
    return BuiltFilter(entry.prefix(settings), settings, entry)


__all__ = ["FILTERS", "BuiltFilter", "FilterEntry", "build_filter"]
