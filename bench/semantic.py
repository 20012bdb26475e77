"""Benchmark: radflow's semantic size and density features against PyRadiomics' default extraction
of the same image and mask, in one process, A B A B.

Cases (seeded): a 512 x 512 x 80 CT (0.7 x 0.7 x 2.5 mm, int16) with an ellipsoidal lesion of
30 mm and of 80 mm, and a 200 x 200 x 150 PET (4 x 4 x 3 mm) with a 30 mm lesion (``suv`` family
on). Each pair times :func:`radflow.features.semantic.semantic_features` and then PyRadiomics'
``RadiomicsFeatureExtractor()`` (default settings: original image, all default features) on the
same SimpleITK images; imports and image building are not timed. The script prints each pair's
ratio, their median and range, and the machine load::

    .venv/bin/python bench/semantic.py [--pairs 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time

import numpy as np
import SimpleITK as sitk

CASES = [  # name, size (x, y, z), spacing (mm), lesion radius (mm), modality
    ("CT 512x512x80, 30 mm lesion", (512, 512, 80), (0.7, 0.7, 2.5), 15.0, "CT"),
    ("CT 512x512x80, 80 mm lesion", (512, 512, 80), (0.7, 0.7, 2.5), 40.0, "CT"),
    ("PT 200x200x150, 30 mm lesion", (200, 200, 150), (4.0, 4.0, 3.0), 15.0, "PT"),
]


def make_case(size: tuple[int, int, int], spacing: tuple[float, float, float], radius: float,
              seed: int = 0) -> tuple[sitk.Image, sitk.Image]:
    """Image of noise (mean 40, SD 20) and an ellipsoid mask (y semi-axis radius / 1.3)."""
    z, y, x = np.meshgrid(*[np.arange(n) for n in size[::-1]], indexing="ij")
    cz, cy, cx = (n // 2 for n in size[::-1])
    d = np.sqrt(((z - cz) * spacing[2]) ** 2 + ((y - cy) * spacing[1] * 1.3) ** 2
                + ((x - cx) * spacing[0]) ** 2)
    mask = (d <= radius).astype(np.uint8)
    values = np.random.default_rng(seed).normal(40, 20, mask.shape).astype(np.int16)
    image, label = sitk.GetImageFromArray(values), sitk.GetImageFromArray(mask)
    for im in (image, label):
        im.SetSpacing(spacing)
    return image, label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    from radiomics import featureextractor

    from radflow.features.semantic import SemanticSettings, semantic_features

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    extractor = featureextractor.RadiomicsFeatureExtractor()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for name, size, spacing, radius, modality in CASES:
        image, mask = make_case(size, spacing, radius)
        ratios, ours, theirs = [], [], []
        for _ in range(args.pairs):
            start = time.perf_counter()
            semantic_features(image, mask, SemanticSettings(), modality=modality)
            a = time.perf_counter() - start
            start = time.perf_counter()
            extractor.execute(image, mask)
            b = time.perf_counter() - start
            ours.append(a)
            theirs.append(b)
            ratios.append(a / b)
        print(f"{name}: radflow semantic {statistics.median(ours):.3f} s, PyRadiomics default "
              f"{statistics.median(theirs):.2f} s, ratio {statistics.median(ratios):.3f} "
              f"(pairs {', '.join(f'{r:.3f}' for r in ratios)})")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
