"""Extract stage: PyRadiomics features of the image/mask pairs of one image, with provenance.

One job is one *extraction unit*: every pair whose image is the same series (all ROIs of one
image), so that the image is read and hashed once however many ROIs it has (see
:func:`radflow.plan.extract_units`). Inputs are the pair stage's records
``results/<cohort>/pair/<pair_id>.json``; outputs are one long feature table (one row per pair x
feature) and one status record listing every pair's status. Per-pair problems (pair not ``ok``,
unreadable volume, a volume that changed since pairing, PyRadiomics failure) never raise: they
give an empty table (same columns and dtypes) and a ``skipped:...`` / ``failed:<reason>`` status,
so the cohort goes on (``strict: true`` is enforced downstream). An invalid params file or custom
image type is a configuration error and raises :class:`~radflow.errors.ConfigError`.

The params file is the one of the image's modality (:mod:`radflow.params_sets`, chosen when the
workflow is planned); a unit whose modality has none records ``excluded:no-params-for-modality``
for each pair. Every row names its parameter set (``params_set``), normalisation and the set's QC
warnings on that modality (``qc``); :mod:`radflow.extract.params_set` prepares the set.

radflow's own feature families (``extract.families``: RECIST and semantic size, fractal
dimensions, Minkowski functionals; :mod:`radflow.extract.families`) add rows to the same table
after PyRadiomics' (image type ``original``, their own ``feature_class``, an ``ibsi_code`` where
IBSI defines the feature), and their landmarks and Minkowski curves go to the unit's side record
``extract/<case_id>/<unit>.side.json`` (:mod:`radflow.records.side`). The Python API runs them
only when given ``families``; the workflow passes the config's.

A job (:func:`run_extract`) does not import pandas (~0.3 s and ~100 MB per process): it keeps
the table as rows and writes the Parquet file with pyarrow alone (:func:`write_rows`); the
DataFrame API (:func:`extract_pair`, :func:`extract_unit`) imports pandas when called.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import SimpleITK as sitk

from radflow.errors import ConfigError, ExtractionError, InputFileError
from radflow.extract.families import (
    FeatureFamilies,
    family_features,
    feature_families,
    ibsi_family_rows,
)
from radflow.extract.params_set import Normaliser, UnitParams, pyradiomics_rows, unit_params
from radflow.extract.table import COLUMNS, Row, empty_table, frame, write_rows
from radflow.io.nifti import read_image, voxel_hash
from radflow.params_sets import NO_PARAMS, ParamsChoice, modality_key
from radflow.radiomics_adapter import ImageTypeSpec, versions
from radflow.records import (
    ExtractStatus,
    PairStatus,
    Status,
    read_pair_json,
    write_extract_status,
)
from radflow.records.side import ExtractSide, PairSide, write_extract_side

if TYPE_CHECKING:  # pandas only for the table API; a job writes its rows with pyarrow alone
    import pandas as pd

logger = logging.getLogger(__name__)

#: Keys a pair record must have.
PAIR_KEYS: tuple[str, ...] = ("pair_id", "case_id", "image_key", "mask_key", "roi", "label",
                              "status", "image", "mask", "image_hash", "mask_hash")


def image_types(configs: Sequence[Mapping[str, Any]] | None, *,
                section: str = "extract.image_types") -> tuple[ImageTypeSpec, ...]:
    """Custom image types of the config's ``extract.image_types`` list.

    Parameters
    ----------
    configs
        One mapping per image type: ``filter`` (a name in :data:`radflow.filters.registry.FILTERS`:
        ``laws``, ``mean``, ``log``, ``wavelet``) and the fields of that filter's settings class
        (e.g. :class:`radflow.filters.laws.LawsSettings`).
    section
        Where the list is in the config, for messages.

    Returns
    -------
    tuple of ImageTypeSpec
        Named by the filter's prefix function (e.g. ``laws-L5E5E5-ri-max-e7``, ``mean-s5``);
        each filters the pre-processed image with the filter's image function. ``options`` are
        the settings' fields (for the params hash).

    Raises
    ------
    ConfigError
        Unknown filter, unknown/missing/invalid option (naming the key), or two entries giving
        the same image-type name.
    """
    from radflow.filters.registry import build_filter

    specs = []
    for i, config in enumerate(configs or ()):
        built = build_filter(config, section=f"{section}[{i}]")
        specs.append(ImageTypeSpec(name=built.name, make=built.image,
                                   options=dataclasses.asdict(built.settings)))
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{section}: image type(s) {', '.join(duplicates)} configured twice "
                          "(entries that differ only in options not in the name)")
    return tuple(specs)


def extract_pair(pair: Mapping[str, Any], params_path: str | Path | None, *,
                 extra_image_types: Sequence[ImageTypeSpec] = (),
                 choice: ParamsChoice | None = None,
                 families: FeatureFamilies | None = None
                 ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Extract the features of one pair (:func:`extract_unit` with a single pair).

    Parameters
    ----------
    pair
        Pair record (see :data:`PAIR_KEYS`); ``image``/``mask`` are NIfTI paths, ``*_hash`` their
        :func:`~radflow.io.nifti.voxel_hash` at pairing time.
    params_path
        Native PyRadiomics params file (YAML/JSON) of the image's modality; None: the modality
        has no parameter set (the pair is ``excluded:no-params-for-modality``).
    extra_image_types
        Custom image types computed besides the params' ones.
    choice
        The planned parameter set (modality, key, file, normalisation;
        :class:`radflow.params_sets.ParamsChoice`). None: ``params_path`` for an image of
        unknown modality, normalised as the file says.
    families
        radflow's own feature families (:func:`radflow.extract.families.feature_families`);
        None: none (PyRadiomics' features only). Their settings enter ``params_hash``.

    Returns
    -------
    table : pandas.DataFrame, shape (n_features, 22)
        Columns :data:`COLUMNS`; empty (same columns/dtypes) unless the status is ``ok``.
    status : dict
        ``pair_id``; ``status`` (``ok``, ``skipped:<pair status>``,
        ``excluded:no-params-for-modality`` or ``failed:<reason>``); ``reason`` (short reason,
        e.g. ``label-absent``, or the pair's own reason when skipped; None when ok);
        ``message`` (human-readable, None when ok); ``n_features``; ``seconds`` (wall time);
        ``qc`` (the parameter set's QC warnings on the image's modality, comma-separated; None
        when there are none or the pair was not extracted; the families' QC notes, such as
        ``fractal-roi-too-small``, are added).

    Raises
    ------
    ConfigError
        Invalid params file or custom image types.
    InputFileError
        ``pair`` is not a valid pair record (missing key, non-integer label).
    """
    table, statuses = extract_unit([pair], params_path, extra_image_types=extra_image_types,
                                   choice=choice, families=families)
    return table, statuses[0]


def extract_unit(pairs: Sequence[Mapping[str, Any]], params_path: str | Path | None, *,
                 extra_image_types: Sequence[ImageTypeSpec] = (),
                 choice: ParamsChoice | None = None, families: FeatureFamilies | None = None
                 ) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Extract the features of several pairs, reading each image and mask file once.

    Parameters
    ----------
    pairs
        Pair records (see :data:`PAIR_KEYS`), normally all ROIs of one image. Each volume is
        read and hashed once: a file shared by several pairs (the image; a label map holding
        several labels) is kept in memory while they are extracted. PyRadiomics still crops
        and resamples per ROI (its values are defined on each ROI's bounding box).
    params_path, extra_image_types, choice, families
        As in :func:`extract_pair`.

    Returns
    -------
    table : pandas.DataFrame, shape (n_values, 22)
        The pairs' feature tables one after the other (input order); columns :data:`COLUMNS`.
    statuses : list of dict
        One status per pair, in input order (see :func:`extract_pair`).

    Raises
    ------
    ConfigError
        Invalid params file or custom image types.
    InputFileError
        A record is not a valid pair record.
    """
    rows, statuses = extract_unit_rows(pairs, params_path, extra_image_types=extra_image_types,
                                       choice=choice, families=families)
    return frame(rows), statuses


def extract_unit_rows(pairs: Sequence[Mapping[str, Any]], params_path: str | Path | None, *,
                      extra_image_types: Sequence[ImageTypeSpec] = (),
                      choice: ParamsChoice | None = None, families: FeatureFamilies | None = None
                      ) -> tuple[list[Row], list[dict[str, Any]]]:
    """:func:`extract_unit` without pandas: the table as rows (values in :data:`COLUMNS` order).
    """
    rows, statuses, _ = _unit_rows(pairs, params_path, extra_image_types, choice, families)
    return rows, statuses


def _unit_rows(pairs: Sequence[Mapping[str, Any]], params_path: str | Path | None,
               extra_image_types: Sequence[ImageTypeSpec], choice: ParamsChoice | None,
               families: FeatureFamilies | None
               ) -> tuple[list[Row], list[dict[str, Any]], list[PairSide]]:
    """Rows, statuses and the side records of the extracted pairs."""
    for pair in pairs:
        _check_pair(pair)
    families = families or FeatureFamilies()
    unit = (unit_params(params_path, choice, extra_image_types, families.provenance())
            if params_path else None)
    volumes = _Volumes(keep={str(p["image"]) for p in pairs if p["status"] == "ok"})
    normaliser = Normaliser(unit) if unit is not None else None
    rows: list[Row] = []
    statuses = []
    sides = []
    for pair in pairs:
        pair_rows, status, side = _extract_or_record(pair, unit, choice, extra_image_types,
                                                     volumes, normaliser, families)
        rows.extend(pair_rows)
        statuses.append(status)
        if side is not None:
            sides.append(side)
    return rows, statuses, sides


def _extract_or_record(pair: Mapping[str, Any], unit: UnitParams | None,
                       choice: ParamsChoice | None, extra_image_types: Sequence[ImageTypeSpec],
                       volumes: _Volumes, normaliser: Normaliser | None,
                       families: FeatureFamilies
                       ) -> tuple[list[Row], dict[str, Any], PairSide | None]:
    """One pair's rows, status and side record (None unless extracted); data problems become a
    status, never an exception."""
    start = time.perf_counter()
    pair_id = str(pair["pair_id"])

    def done(rows: list[Row], status: str, reason: str | None, message: str | None,
             qc: str | None = None, side: PairSide | None = None
             ) -> tuple[list[Row], dict[str, Any], PairSide | None]:
        return rows, {"pair_id": pair_id, "status": status, "reason": reason,
                      "message": message, "n_features": len(rows),
                      "seconds": round(time.perf_counter() - start, 3), "qc": qc or None}, side

    pair_status = str(pair["status"])
    if pair_status != "ok":
        logger.info("pair %s: skipped (pair status %s)", pair_id, pair_status)
        return done([], str(Status.skipped(pair_status)), Status.parse(pair_status).reason,
                    f"pair status is {pair_status}")
    if unit is None or normaliser is None:
        modality = choice.modality if choice is not None else ""
        key = modality_key(modality)
        message = (f"modality {modality or '(unknown)'}: no parameter set (extract.params."
                   f"{key}{'' if key == 'default' else ' and extract.params.default'} empty)")
        logger.info("pair %s: excluded (%s)", pair_id, message)
        return done([], str(Status.excluded(NO_PARAMS)), NO_PARAMS, message)
    try:
        rows, side, qc = _extract(pair, unit, extra_image_types, volumes, normaliser, families,
                                  choice.modality if choice is not None else "")
    except (ExtractionError, InputFileError) as exc:
        logger.warning("pair %s: extraction failed (%s): %s", pair_id, exc.reason, exc)
        return done([], str(Status.of_reason(exc.reason)), exc.reason, str(exc), unit.qc_text)
    logger.info("pair %s: %d features", pair_id, len(rows))
    return done(rows, "ok", None, None, qc, side)


class _Volumes:
    """Volumes read once per job: files in ``keep`` (the images) stay in memory; of the others
    (masks) only the most recent one, since pairs sharing a label map come one after another."""

    def __init__(self, keep: set[str]) -> None:
        self._keep = keep
        self._cache: dict[str, tuple[sitk.Image, str] | InputFileError] = {}
        self._last: str | None = None

    def get(self, path: str, name: str) -> tuple[sitk.Image, str]:
        """The image at ``path`` and its voxel hash (a read error is raised again, not retried).
        """
        if path not in self._cache:
            if self._last is not None and self._last not in self._keep:
                self._cache.pop(self._last, None)
            try:
                image = read_image(path, name=name)
                self._cache[path] = (image, voxel_hash(image))
            except InputFileError as exc:
                self._cache[path] = exc
            self._last = path
        entry = self._cache[path]
        if isinstance(entry, InputFileError):
            raise entry
        return entry


def run_extract(pair_jsons: Sequence[str | Path], params_path: str | Path | None,
                out_parquet: Path, out_status: Path, *, unit: str = "",
                extra_image_types: Sequence[ImageTypeSpec] = (), threads: int | None = None,
                choice: ParamsChoice | None = None,
                families: FeatureFamilies | None = None,
                out_side: Path | None = None) -> None:
    """Read the pair records of one extraction unit, extract, write table and status.

    The outputs are written atomically, also for skipped, excluded and failed pairs. The status
    record is ``{"unit", "n_pairs", "seconds", "pairs": [<one status per pair>]}``. ``threads``
    caps SimpleITK's worker threads (the rule's ``threads:``; SimpleITK otherwise uses every
    core). ``params_path`` and ``choice``: the unit's parameter set (see :func:`extract_pair`).
    ``families``: radflow's own feature families (the config's ``extract.families`` through
    :func:`radflow.extract.families.feature_families`); None: none. ``out_side``: where the
    unit's side record goes (landmarks and Minkowski curves of its extracted pairs,
    :mod:`radflow.records.side`); None: not written.

    Raises
    ------
    InputFileError
        A pair record is missing, not JSON, or not a valid pair record.
    ConfigError
        Invalid params file or custom image types.
    """
    start = time.perf_counter()
    if threads:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(threads))
    if isinstance(pair_jsons, (str, Path)):
        pair_jsons = [pair_jsons]
    pairs = [_read_pair(Path(p)) for p in pair_jsons]
    rows, statuses, sides = _unit_rows(pairs, params_path, extra_image_types, choice, families)
    write_rows(out_parquet, rows)
    if out_side is not None:
        write_extract_side(out_side, ExtractSide(unit=unit, pairs=sides))
    write_extract_status(out_status, ExtractStatus(
        unit=unit, n_pairs=len(pairs), seconds=round(time.perf_counter() - start, 3),
        pairs=[PairStatus(**status) for status in statuses]))
    logger.info("unit %s: %d pair(s), %d feature values", unit, len(pairs), len(rows))


def _read_pair(pair_json: Path) -> dict[str, Any]:
    try:
        return read_pair_json(pair_json)
    except FileNotFoundError as exc:
        raise InputFileError(f"{pair_json.name}: cannot read pair record ({exc})",
                             reason="bad-pair-record") from exc


def _check_pair(pair: Mapping[str, Any]) -> None:
    missing = [k for k in PAIR_KEYS if k not in pair]
    if missing:
        raise InputFileError(f"pair record {pair.get('pair_id', '?')}: missing key(s) "
                             f"{', '.join(missing)}", reason="bad-pair-record")
    label = pair["label"]
    if isinstance(label, bool) or not isinstance(label, int):
        raise InputFileError(f"pair record {pair['pair_id']}: label {label!r} is not an integer",
                             reason="bad-pair-record")


def _extract(pair: Mapping[str, Any], unit: UnitParams,
             extra_image_types: Sequence[ImageTypeSpec], volumes: _Volumes,
             normaliser: Normaliser, families: FeatureFamilies, modality: str
             ) -> tuple[list[Row], PairSide, str]:
    """PyRadiomics' rows then the families' rows of one pair, its side record and its ``qc``
    text."""
    image, image_hash = volumes.get(str(pair["image"]), name=f"image {pair['image_key']}")
    mask, mask_hash = volumes.get(str(pair["mask"]), name=f"mask {pair['mask_key']}")
    for what, actual in (("image", image_hash), ("mask", mask_hash)):
        if actual != pair[f"{what}_hash"]:
            paired = str(pair[f"{what}_hash"])[:12]
            raise ExtractionError(f"{what} {pair[f'{what}_key']}: voxel data differ from those "
                                  f"paired (hash {actual[:12]} != {paired}); "
                                  "the file changed after the pair stage",
                                  reason=f"{what}-hash-mismatch")
    label = int(pair["label"])
    features = pyradiomics_rows(normaliser.apply(image, str(pair["image"]), mask, label), mask,
                                unit, label=label, extra_image_types=extra_image_types)
    # the families measure the image as converted (acquisition grid, modality units)
    own = family_features(image, mask, label, families, modality=modality)
    qc = ",".join((*unit.qc, *own.qc))
    fixed: dict[str, Any] = {
        "case_id": str(pair["case_id"]), "image_key": str(pair["image_key"]),
        "mask_key": str(pair["mask_key"]), "pair_id": str(pair["pair_id"]),
        "roi": str(pair["roi"]), "label": label, **versions(), "params_hash": unit.hash,
        "params_set": unit.choice.name, "normalisation": unit.choice.normalisation,
        "qc": qc, "image_hash": image_hash, "mask_hash": mask_hash,
    }
    rows = table_rows(fixed, features,
                      ibsi_family_rows(own.rows) if unit.ibsi is not None else own.rows)
    return rows, own.side(str(pair["pair_id"]), str(pair["case_id"]), str(pair["image_key"])), qc


def table_rows(fixed: Mapping[str, Any], features: Sequence[tuple[str, str, str, str, float]],
               family_rows: Sequence[tuple[str, str, str, str, float]]) -> list[Row]:
    """One pair's table rows: PyRadiomics' coded ``(image_type, class, feature, ibsi_code,
    value)`` rows (:func:`radflow.extract.params_set.pyradiomics_rows`), then the families'
    coded rows, each with the key and provenance columns of ``fixed``; values in
    :data:`COLUMNS` order."""
    rows = []
    for image_type, feature_class, feature, code, value in (*features, *family_rows):
        row = {**fixed, "image_type": image_type, "feature_class": feature_class,
               "feature": feature, "ibsi_code": code, "value": value}
        rows.append(tuple(row[name] for name in COLUMNS))
    return rows

__all__ = ["COLUMNS", "PAIR_KEYS", "FeatureFamilies", "Row", "empty_table", "extract_pair",
           "extract_unit", "extract_unit_rows", "feature_families", "image_types", "run_extract",
           "table_rows", "write_rows"]
