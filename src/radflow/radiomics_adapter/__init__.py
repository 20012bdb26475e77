"""The one package that talks to PyRadiomics (``radiomics``, distribution ``pyradiomics-bhklab``).

PyRadiomics' camelCase settings, ``**kwargs`` bags, params schema (pykwalify), feature naming
(``<imageType>_<class>_<Feature>``) and logging stay here; the rest of radflow sees plain dicts,
:class:`ImageTypeSpec` and long :class:`pandas.DataFrame` tables (or, for extraction jobs, which
do not import pandas, the same rows as tuples: :func:`feature_rows`).

Logging: PyRadiomics attaches a stderr handler to the ``radiomics`` logger at import. This package
replaces it with a :class:`logging.NullHandler` (PyRadiomics' ``_applyParams`` reads
``handlers[0]`` of that logger) and sets the ``radiomics`` logger to WARNING, so PyRadiomics
messages propagate to the root logger (configured by the application) exactly once, and only
warnings and errors by default (lower the ``radiomics`` logger's level to see more).

Custom image types (radflow filters such as Laws) plug into PyRadiomics' own image-type protocol
through :func:`register_image_types`: a generator ``get<Type>Image(image, mask, **kwargs)`` that
yields ``(filtered_image, name, kwargs)``, exactly like ``imageoperations.getLoGImage``. They are
never written in the params file (its schema rejects unknown image types).

The package is split by concern: :mod:`.params` (params files: PyRadiomics' schema, the
effective settings, their hash; versions), :mod:`.features` (features of one ROI, custom image
types). Nothing else in radflow imports ``radiomics``.
"""

from __future__ import annotations

import logging

import radiomics

from radflow.radiomics_adapter.features import (
    FEATURE_COLUMNS,
    FeatureRow,
    ImageTypeSpec,
    compute_features,
    feature_names,
    feature_rows,
    register_image_types,
)
from radflow.radiomics_adapter.params import load_params, params_hash, versions


def _neutralise_radiomics_logging() -> None:
    """Detach PyRadiomics' import-time stderr handler; let its records reach the root logger."""
    rlog = logging.getLogger("radiomics")
    own = getattr(radiomics, "handler", None)
    for handler in list(rlog.handlers):
        if handler is own:
            rlog.removeHandler(handler)
    if not any(isinstance(h, logging.NullHandler) for h in rlog.handlers):
        # PyRadiomics' _applyParams hands handlers[0] to pykwalify when no handler exists;
        # a NullHandler there emits nothing, records still propagate to the root logger.
        rlog.addHandler(logging.NullHandler())
    rlog.setLevel(logging.WARNING)
    rlog.propagate = True


_neutralise_radiomics_logging()


__all__ = ["FEATURE_COLUMNS", "FeatureRow", "ImageTypeSpec", "compute_features", "feature_names",
           "feature_rows", "load_params", "params_hash", "register_image_types", "versions"]
