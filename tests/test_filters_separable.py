"""The separable engine: rotation group, orientation reduction, shared 1-D passes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from radflow.filters import separable
from radflow.filters.separable import (
    centred,
    orientations,
    rotation_group,
    separable_response,
)


def _matrix(source: tuple[int, ...], flips: tuple[bool, ...]) -> np.ndarray:
    n = len(source)
    m = np.zeros((n, n), dtype=int)
    for b in range(n):
        m[b, source[b]] = -1 if flips[b] else 1
    return m


@pytest.mark.parametrize(("ndim", "count"), [(2, 4), (3, 24)])
def test_rotation_group_is_the_proper_right_angle_rotations(ndim: int, count: int) -> None:
    group = rotation_group(ndim)
    mats = [_matrix(*g) for g in group]
    assert len(mats) == count
    assert len({m.tobytes() for m in mats}) == count
    assert all(round(np.linalg.det(m)) == 1 for m in mats)  # no reflections
    assert np.array_equal(mats[0], np.eye(ndim, dtype=int))
    keys = {m.tobytes() for m in mats}
    for a, b in itertools.product(mats, repeat=2):  # closed under composition: a group
        assert (a @ b).tobytes() in keys


def test_centred_pads_even_kernels_at_the_end() -> None:
    assert centred([1.0, 2.0]).tolist() == [1.0, 2.0, 0.0]
    assert centred([1.0, 2.0, 3.0]).tolist() == [1.0, 2.0, 3.0]


def test_orientations_fold_symmetric_and_antisymmetric_reversals() -> None:
    sym = np.array([1.0, 4.0, 6.0, 4.0, 1.0])
    anti = np.array([-1.0, -2.0, 0.0, 2.0, 1.0])
    asym = np.array([1.0, 2.0, 0.0])
    terms = orientations([(sym,), (anti,), (asym,)], rotation_invariant=True)
    assert len(terms) == 24
    for ops, sign in terms:
        assert sign in (1.0, -1.0)
        for (k,) in ops:
            # only the asymmetric kernel may appear reversed; the others appear as given
            assert any(np.array_equal(k, c) for c in (sym, anti, asym, asym[::-1]))
    # non rotation invariant: the kernel as given
    ((ops, sign),) = orientations([(sym,), (anti,), (asym,)], rotation_invariant=False)
    assert sign == 1.0 and ops[1][0] is anti


def test_shared_prefix_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Terms sharing their first-axis operator share that 1-D pass."""
    calls: list[int] = []
    real = separable._apply

    def counting(volume, op, axis, mode):  # type: ignore[no-untyped-def]
        calls.append(axis)
        return real(volume, op, axis, mode)

    monkeypatch.setattr(separable, "_apply", counting)
    a, b = (np.array([1.0, 2.0, 1.0]),), (np.array([-1.0, 0.0, 1.0]),)
    x = np.random.default_rng(0).random((6, 7, 8))
    terms = [((a, a, a), 1.0), ((a, a, b), 1.0), ((a, b, a), 1.0), ((b, a, a), 1.0)]
    out = separable_response(x, (0, 1, 2), terms, "reflect", "sum")
    # axis 0: a, b (2); axis 1: under a: a, b; under b: a (3); axis 2: 4 leaves
    assert sorted(calls) == [0, 0, 1, 1, 1, 2, 2, 2, 2]
    calls.clear()
    monkeypatch.setattr(separable, "_apply", real)
    expected = sum(separable_response(x, (0, 1, 2), [t], "reflect", "sum") for t in terms)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_max_combine_with_opposite_signs_is_absolute_value() -> None:
    k = (np.array([-1.0, 0.0, 1.0]),)
    x = np.random.default_rng(1).normal(size=(5, 6, 7))
    plus = separable_response(x, (0, 1, 2), [((k, k, k), 1.0)], "wrap", "sum")
    both = separable_response(x, (0, 1, 2), [((k, k, k), 1.0), ((k, k, k), -1.0)], "wrap", "max")
    np.testing.assert_array_equal(both, np.abs(plus))
    minus = separable_response(x, (0, 1, 2), [((k, k, k), -1.0)], "wrap", "max")
    np.testing.assert_array_equal(minus, -plus)


def test_sum_of_cancelling_terms_is_zero() -> None:
    k = (np.array([1.0, 2.0, 1.0]),)
    x = np.ones((4, 4, 4))
    out = separable_response(x, (0, 1, 2), [((k, k, k), 0.5), ((k, k, k), -0.5)], "wrap", "sum")
    assert out.shape == x.shape and not out.any()


@pytest.mark.parametrize("combine", ["sum", "max"])
@pytest.mark.parametrize("axes", [(0, 1, 2), (1, 2), (2, 0, 1)])
def test_slabs_are_bit_identical_to_one_slab(combine: str, axes: tuple[int, ...]) -> None:
    """The passes after the first run slab by slab; any slab size gives the same bits."""
    k = np.array([1.0, -2.0, 0.5])
    r = k[::-1].copy()
    ops = [((k,), (r,), (k,)), ((k,), (k,), (k,)), ((), (k,), (k, r)), ((), (), ())]
    terms = [(o[: len(axes)], w) for o, w in zip(ops, (1.0, -0.5, 0.25, 0.1), strict=True)]
    x = np.random.default_rng(2).normal(size=(9, 11, 13))
    before = x.copy()
    whole = separable_response(x, axes, terms, "reflect", combine, slab_voxels=10**9)
    for slab_voxels in (1, 50, 300):
        sliced = separable_response(x, axes, terms, "reflect", combine, slab_voxels=slab_voxels)
        np.testing.assert_array_equal(sliced, whole)
    np.testing.assert_array_equal(x, before)  # the input is never modified


def test_rotation_invariant_laws_holds_at_most_three_volumes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory bound of the slab evaluation: besides the input, a first-pass volume and the
    result (the old depth-first walk peaked at five)."""
    import tracemalloc

    from radflow.filters.laws import LawsSettings, laws_filter

    x = np.random.default_rng(3).random((32, 48, 48))
    monkeypatch.setattr(separable, "SLAB_VOXELS", x.size // 16)
    settings = LawsSettings(kernel="L5E5E5", rotation_invariant=True, pooling="max",
                            energy_delta=2)
    tracemalloc.start()
    try:
        laws_filter(x, settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2.6 * x.nbytes
