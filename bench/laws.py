"""Benchmark: radflow's Laws filter against MIRP's on a 256 x 256 x 128 random volume.

Configuration: 3-D kernel L5E5E5, rotation invariant (24 rotations), max pooling, energy map with
δ = 7, IBSI "mirror" boundary (scipy ``reflect``; MIRP is given ``reflect`` too, because MIRP passes
its boundary string straight to scipy, where ``mirror`` does not repeat the edge voxel).

MIRP is not a radflow dependency. Set up a separate environment once::

    python3 -m venv /tmp/benchenv
    /tmp/benchenv/bin/pip install mirp          # tested with mirp 2.7.0
    /tmp/benchenv/bin/pip install -e /work/main # this repository (radflow)

and run::

    /tmp/benchenv/bin/python bench/laws.py [--repeats 3] [--seed 0]

The script prints the best-of-N wall time of each implementation, their ratio, and the largest
absolute difference between the two responses relative to the response's value range; it exits
with status 1 when that difference exceeds 1e-4 of the range. It calls MIRP's internal
``LawsFilter`` class (``mirp._imagefilters.laws``), the code MIRP's own IBSI 2 tests exercise.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np

SHAPE = (128, 256, 256)  # (z, y, x): 256 x 256 in-plane, 128 slices
KERNEL = "L5E5E5"
DELTA = 7


def radflow_laws() -> Callable[[np.ndarray], np.ndarray]:
    """radflow's Laws filter with the benchmark settings."""
    from radflow.filters.laws import LawsSettings, laws_filter

    settings = LawsSettings(kernel=KERNEL, rotation_invariant=True, pooling="max",
                            energy_delta=DELTA, boundary="mirror", dimensions="3d")
    return lambda volume: laws_filter(volume, settings)


def mirp_laws() -> Callable[[np.ndarray], np.ndarray]:
    """MIRP's Laws filter (``mirp._imagefilters.laws.LawsFilter``) with the benchmark settings."""
    from mirp._imagefilters.laws import LawsFilter
    from mirp._images.generic_image import GenericImage
    from mirp.settings.generic import SettingsClass

    settings = SettingsClass(
        by_slice=False,
        base_feature_families="none",
        response_map_feature_families="none",
        filter_kernels="laws",
        laws_kernel=KERNEL,
        laws_compute_energy=True,
        laws_delta=DELTA,
        laws_rotation_invariance=True,
        laws_pooling_method="max",
        laws_boundary_condition="reflect",
    )

    def run(volume: np.ndarray) -> np.ndarray:
        image = GenericImage(image_data=volume, image_spacing=(1.0, 1.0, 1.0),
                             image_origin=(0.0, 0.0, 0.0), image_orientation=np.eye(3),
                             image_dimensions=volume.shape, separate_slices=False)
        laws = LawsFilter(image=image, settings=settings, name="laws")
        (current,) = list(laws.generate_object())
        return np.asarray(current.transform(image).get_voxel_grid(), dtype=np.float64)

    return run


def best_time(func: Callable[[np.ndarray], np.ndarray], volume: np.ndarray,
              repeats: int) -> tuple[float, np.ndarray]:
    """Best wall time over ``repeats`` runs (s) and the last response."""
    best = np.inf
    out = np.empty(0)
    for _ in range(repeats):
        start = time.perf_counter()
        out = func(volume)
        best = min(best, time.perf_counter() - start)
    return best, out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from importlib.metadata import version

    import scipy

    volume = np.random.default_rng(args.seed).random(SHAPE)
    print(f"volume {SHAPE[2]}x{SHAPE[1]}x{SHAPE[0]} (x, y, z) float64, kernel {KERNEL}, "
          f"rotation invariant, max pooling, energy delta {DELTA}, mirror boundary")
    print(f"mirp {version('mirp')}, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"best of {args.repeats}")

    t_radflow, r_radflow = best_time(radflow_laws(), volume, args.repeats)
    t_mirp, r_mirp = best_time(mirp_laws(), volume, args.repeats)

    value_range = float(r_mirp.max() - r_mirp.min())
    max_diff = float(np.abs(r_radflow - r_mirp).max())
    rel = max_diff / value_range
    print(f"radflow  {t_radflow:8.3f} s")
    print(f"mirp     {t_mirp:8.3f} s")
    print(f"speed-up {t_mirp / t_radflow:8.2f} x (mirp time / radflow time)")
    print(f"max |radflow - mirp| = {max_diff:.3e} = {rel:.3e} of the value range "
          f"{value_range:.4g} ({'OK' if rel <= 1e-4 else 'FAIL'}: limit 1e-4)")
    return 0 if rel <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
