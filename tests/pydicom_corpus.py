"""The image files of pydicom's test corpus (``$RADFLOW_TESTDATA/pydicom_test_files``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydicom.dataset import Dataset

from radflow.dicom.headers import read_dataset
from radflow.errors import InputFileError


def pixel_datasets(testdata: Path, samples_per_pixel: int) -> Iterator[tuple[Path, Dataset]]:
    """Every readable corpus file with pixel data and ``samples_per_pixel`` (1 grey, 3 colour),
    in path order. Files that cannot be read at all are the crawl's business
    (``tests/test_dicom_index.py``) and are left out."""
    for path in sorted((testdata / "pydicom_test_files").rglob("*.dcm")):
        try:
            ds = read_dataset(path)
        except InputFileError:
            continue
        if "PixelData" in ds and ds.get("SamplesPerPixel", 1) == samples_per_pixel:
            yield path, ds
