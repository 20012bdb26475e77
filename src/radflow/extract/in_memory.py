"""The extract stage's extraction of one pair, on images held in memory (the reliability stage's
perturbed copies and negative controls).

:class:`InMemoryExtractor` runs, for an image and mask given as SimpleITK images, exactly the
steps :func:`radflow.extract.extract_unit` runs for a pair read from its files: the unit's
parameter set (:func:`radflow.extract.params_set.unit_params`, the same hash), radflow's
normalisation of the pair's image (:class:`~radflow.extract.params_set.Normaliser`), PyRadiomics
with radflow's filter image types (:func:`radflow.extract.params_set.pyradiomics_rows`, in IBSI
mode too when the parameter set's choice says so), then
radflow's own feature families (:func:`radflow.extract.families.family_features`) on the image as
given, and the same table row (:data:`radflow.extract.table.COLUMNS`). The row building repeats
the extract stage's few lines (the stage reads files inside its private ``_extract``);
``tests/test_reliability_stage.py`` holds the two to identical rows for the same pair.

:class:`PairVolumes` reads a unit's pair volumes once and checks them against the hashes the
pair stage recorded, as the extract stage does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from radflow.errors import ExtractionError
from radflow.extract import table_rows
from radflow.extract.families import FeatureFamilies, family_features, ibsi_family_rows
from radflow.extract.params_set import Normaliser, UnitParams, pyradiomics_rows, unit_params
from radflow.extract.table import Row
from radflow.io.nifti import read_image, voxel_hash
from radflow.params_sets import ParamsChoice
from radflow.radiomics_adapter import ImageTypeSpec, versions

logger = logging.getLogger(__name__)


class InMemoryExtractor:
    """The extraction of one unit's parameter set, applied to images in memory.

    Parameters
    ----------
    params_path
        The unit's native PyRadiomics params file (read and checked once, here).
    extra_image_types
        radflow's filter image types (:func:`radflow.extract.image_types`).
    choice
        The planned parameter set (:class:`radflow.params_sets.ParamsChoice`); None: the file
        for an image of unknown modality, as in :func:`radflow.extract.extract_pair`.
    families
        radflow's own feature families; None: none.

    Raises
    ------
    ConfigError
        Invalid params file or normalisation.
    """

    def __init__(self, params_path: str | Path, *,
                 extra_image_types: Sequence[ImageTypeSpec] = (),
                 choice: ParamsChoice | None = None,
                 families: FeatureFamilies | None = None) -> None:
        self.families = families or FeatureFamilies()
        self.extra_image_types = tuple(extra_image_types)
        self.choice = choice
        self.unit: UnitParams = unit_params(params_path, choice, self.extra_image_types,
                                            self.families.provenance())

    def rows(self, image: sitk.Image, mask: sitk.Image, pair: Mapping[str, Any], *,
             image_hash: str | None = None, mask_hash: str | None = None,
             image_name: str | None = None) -> list[Row]:
        """The feature rows of ``image`` and ``mask`` for ``pair`` (its keys, ROI and label).

        Parameters
        ----------
        image, mask
            The volumes (mask: a label map on the image grid; the ROI is ``pair["label"]``).
        pair
            A pair record (:data:`radflow.extract.PAIR_KEYS`): ``case_id``, ``image_key``,
            ``mask_key``, ``pair_id``, ``roi``, ``label`` fill the key columns.
        image_hash, mask_hash
            The ``image_hash`` / ``mask_hash`` columns; None: :func:`~radflow.io.nifti.voxel_hash`
            of the volume given.
        image_name
            What identifies ``image`` for the ``zscore-body`` normalisation's body mask (one per
            image); None: ``pair["image"]`` (the extract stage's key).

        Returns
        -------
        list of Row
            PyRadiomics' rows then the families' rows, values in :data:`COLUMNS` order.

        Raises
        ------
        ExtractionError
            PyRadiomics, the normalisation or a family failed (``reason`` as in the extract
            stage's statuses).
        """
        label = int(pair["label"])
        unit = self.unit
        normalised = Normaliser(unit).apply(image, image_name or str(pair.get("image", "")),
                                            mask, label)
        features = pyradiomics_rows(normalised, mask, unit, label=label,
                                    extra_image_types=self.extra_image_types)
        del normalised
        # the families measure the image as given (acquisition grid, modality units)
        own = family_features(image, mask, label, self.families,
                              modality=self.choice.modality if self.choice is not None else "")
        fixed: dict[str, Any] = {
            "case_id": str(pair["case_id"]), "image_key": str(pair["image_key"]),
            "mask_key": str(pair["mask_key"]), "pair_id": str(pair["pair_id"]),
            "roi": str(pair["roi"]), "label": label, **versions(), "params_hash": unit.hash,
            "params_set": unit.choice.name, "normalisation": unit.choice.normalisation,
            "qc": ",".join((*unit.qc, *own.qc)),
            "image_hash": image_hash if image_hash is not None else voxel_hash(image),
            "mask_hash": mask_hash if mask_hash is not None else voxel_hash(mask),
        }
        return table_rows(fixed, features,
                          ibsi_family_rows(own.rows) if unit.ibsi is not None else own.rows)


def extract_images(image: sitk.Image, mask: sitk.Image, pair: Mapping[str, Any],
                   params_path: str | Path, *, extra_image_types: Sequence[ImageTypeSpec] = (),
                   choice: ParamsChoice | None = None, families: FeatureFamilies | None = None,
                   image_hash: str | None = None, mask_hash: str | None = None) -> list[Row]:
    """The extract stage's rows of one pair, from images in memory (one call of
    :meth:`InMemoryExtractor.rows`; a loop over many copies should build the extractor once).

    Parameters
    ----------
    image, mask, pair
        See :meth:`InMemoryExtractor.rows`.
    params_path, extra_image_types, choice, families
        As for :func:`radflow.extract.extract_pair`.
    image_hash, mask_hash
        The hash columns; None: the hashes of ``image`` and ``mask``.
    """
    extractor = InMemoryExtractor(params_path, extra_image_types=extra_image_types,
                                  choice=choice, families=families)
    return extractor.rows(image, mask, pair, image_hash=image_hash, mask_hash=mask_hash)


class PairVolumes:
    """The volumes of one unit's pairs, read once: the image (shared by all ROIs of the unit)
    stays in memory; of the masks only the last one (pairs sharing a label map come together).
    """

    def __init__(self) -> None:
        self._image: tuple[str, sitk.Image] | None = None
        self._mask: tuple[str, sitk.Image] | None = None

    def get(self, pair: Mapping[str, Any]) -> tuple[sitk.Image, sitk.Image]:
        """The image and mask of ``pair``, checked against the hashes recorded at pairing.

        Raises
        ------
        InputFileError
            A file cannot be read.
        ExtractionError
            ``image-hash-mismatch`` / ``mask-hash-mismatch``: the file changed after the pair
            stage (the extract stage's reasons).
        """
        image_path, mask_path = str(pair["image"]), str(pair["mask"])
        if self._image is None or self._image[0] != image_path:
            self._image = None
            self._image = (image_path, self._read(pair, "image"))
        if self._mask is None or self._mask[0] != mask_path:
            self._mask = None
            self._mask = (mask_path, self._read(pair, "mask"))
        return self._image[1], self._mask[1]

    @staticmethod
    def _read(pair: Mapping[str, Any], what: str) -> sitk.Image:
        volume = read_image(str(pair[what]), name=f"{what} {pair[f'{what}_key']}")
        actual = voxel_hash(volume)
        if actual != pair[f"{what}_hash"]:
            paired = str(pair[f"{what}_hash"])[:12]
            raise ExtractionError(f"{what} {pair[f'{what}_key']}: voxel data differ from those "
                                  f"paired (hash {actual[:12]} != {paired}); the file changed "
                                  "after the pair stage", reason=f"{what}-hash-mismatch")
        return volume


__all__ = ["InMemoryExtractor", "PairVolumes", "extract_images"]
