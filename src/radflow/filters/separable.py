"""Separable filtering engine: 1-D passes, right-angle rotations and pooling.

A separable kernel is given as one *axis operator* per filtered array axis: a tuple of 1-D kernels
that are convolved, one after the other, along that axis (one kernel for Laws filters; the
low-pass "pre-filter" followed by the band kernel for à trous wavelets). Every 1-D kernel has odd
length and its centre tap at index ``len // 2``; :func:`centred` pads even-length kernels (wavelet
filters) with a trailing zero, so tap ``n`` of an even kernel sits at offset ``n - len // 2``.
Passes are true convolutions (:func:`scipy.ndimage.convolve1d`), so an impulse returns the kernel
itself, not its mirror image.

Rotation invariance (IBSI 2): the response is pooled over the kernel rotated by every right-angle
rotation of the filtered space: the 24 proper rotations of the cube in 3-D (signed permutation
matrices with determinant +1; reflections are not included), the 4 rotations by multiples of 90°
in the axial plane in 2-D. Rotating a separable kernel only moves its axis operators to other axes
and reverses some of them, so every orientation is again separable. Orientations are reduced
before anything is computed:

* a reversed 1-D kernel that equals the kernel (symmetric: L5, S5, R5, L3, S3) or its negative
  (antisymmetric: E5, W5, E3) is replaced by the kernel with a sign, so orientations differing only
  by such reversals share one response;
* the remaining distinct orientations are evaluated as a tree of 1-D passes: orientations that
  apply the same operator along the first axis share that pass, and so on.

For a Laws kernel made of three different 1-D kernels, the 24 orientations therefore cost at most
6 responses and 3 + 6 + 6 = 15 one-dimensional passes instead of 72.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np
import scipy.ndimage as ndi

AxisOp = tuple[np.ndarray, ...]
"""1-D kernels convolved in sequence along one axis."""

_Key = tuple[bytes, ...]


def centred(kernel: Sequence[float] | np.ndarray) -> np.ndarray:
    """Return ``kernel`` as float64 with odd length (even kernels get a trailing 0).

    Parameters
    ----------
    kernel
        1-D filter taps, shape (n,).

    Returns
    -------
    numpy.ndarray, shape (n,) or (n + 1,)
        Taps whose centre (offset 0) is index ``len // 2``.
    """
    k = np.asarray(kernel, dtype=np.float64).ravel()
    if k.size % 2 == 0:
        k = np.append(k, 0.0)
    return k


def rotation_group(ndim: int) -> list[tuple[tuple[int, ...], tuple[bool, ...]]]:
    """Right-angle rotations of ``ndim``-D space as axis moves.

    Parameters
    ----------
    ndim
        2 (4 rotations) or 3 (24 rotations).

    Returns
    -------
    list of (source, flip)
        For each rotation and each target axis ``b``: the kernel axis ``source[b]`` whose operator
        lands on ``b``, and whether it is reversed (``flip[b]``). The identity comes first.
    """
    out: list[tuple[tuple[int, ...], tuple[bool, ...]]] = []
    for perm in itertools.permutations(range(ndim)):
        inversions = sum(1 for i in range(ndim) for j in range(i + 1, ndim) if perm[i] > perm[j])
        parity = -1 if inversions % 2 else 1
        for flips in itertools.product((False, True), repeat=ndim):
            det = parity * (-1) ** sum(flips)
            if det == 1:
                out.append((tuple(perm), tuple(flips)))
    return out


def _canonical(op: AxisOp, flip: bool) -> tuple[AxisOp, float]:
    """``op`` (reversed if ``flip``) as (operator, sign), (anti)symmetric reversals removed."""
    if not flip:
        return op, 1.0
    sign = 1.0
    kernels = []
    for k in op:
        r = k[::-1]
        if np.array_equal(r, k):
            kernels.append(k)
        elif np.array_equal(r, -k):
            kernels.append(k)
            sign = -sign
        else:
            kernels.append(np.ascontiguousarray(r))
    return tuple(kernels), sign


def orientations(ops: Sequence[AxisOp], rotation_invariant: bool
                 ) -> list[tuple[tuple[AxisOp, ...], float]]:
    """All orientations of a separable kernel, each as (per-axis operators, sign).

    Parameters
    ----------
    ops
        Axis operators in filtered-axis order (e.g. ``(z, y, x)``).
    rotation_invariant
        False: the kernel as given (one orientation). True: all right-angle rotations.

    Returns
    -------
    list
        One entry per rotation (duplicates kept, so that mean pooling weights them correctly).
    """
    if not rotation_invariant:
        return [(tuple(ops), 1.0)]
    out = []
    for source, flips in rotation_group(len(ops)):
        sign = 1.0
        rotated = []
        for b in range(len(ops)):
            op, s = _canonical(ops[source[b]], flips[b])
            rotated.append(op)
            sign *= s
        out.append((tuple(rotated), sign))
    return out


def _key(op: AxisOp) -> tuple[bytes, ...]:
    return tuple(k.tobytes() for k in op)


def _apply(volume: np.ndarray, op: AxisOp, axis: int, mode: str) -> np.ndarray:
    if not op:  # never shared: callers modify leaf responses in place
        return volume.copy()
    out = volume
    for k in op:
        out = ndi.convolve1d(out, k, axis=axis, mode=mode, cval=0.0)
    return out


def _walk(volume: np.ndarray, axes: Sequence[int], items: list[tuple[tuple[_Key, ...], object]],
          ops_by_key: dict[_Key, AxisOp], mode: str, level: int = 0
          ) -> Iterator[tuple[object, np.ndarray]]:
    """Depth-first evaluation: shared prefixes of 1-D passes are computed once."""
    if level == len(axes):
        for _, payload in items:
            yield payload, volume
        return
    groups: dict[_Key, list[tuple[tuple[_Key, ...], object]]] = {}
    for keys, payload in items:
        groups.setdefault(keys[level], []).append((keys, payload))
    for key, sub in groups.items():
        partial = _apply(volume, ops_by_key[key], axes[level], mode)
        yield from _walk(partial, axes, sub, ops_by_key, mode, level + 1)


#: Target size (voxels) of the slabs in which the passes after the first are computed.
SLAB_VOXELS = 1 << 20


def separable_response(volume: np.ndarray, axes: Sequence[int],
                       terms: Sequence[tuple[Sequence[AxisOp], float]], mode: str,
                       combine: str, *, slab_voxels: int | None = None) -> np.ndarray:
    """Combine the responses of several separable kernels.

    Parameters
    ----------
    volume
        float64 array, any shape with ``len(axes)`` filtered axes.
    axes
        Array axes that the operators of each term run along, in order.
    terms
        ``(operators, weight)`` pairs; ``operators[i]`` runs along ``axes[i]``.
    mode
        :mod:`scipy.ndimage` boundary mode.
    combine
        ``"sum"``: Σ weight·response (mean pooling uses weight = sign / number of rotations; a
        linear combination such as the LoG uses the term weights). ``"max"``: voxel-wise maximum of
        weight·response over the terms (max pooling).
    slab_voxels
        Memory bound: the first pass (along ``axes[0]``) of each distinct operator is computed on
        the whole volume; the later passes and the pooling run slab by slab along ``axes[0]``
        (which they do not filter), about ``slab_voxels`` voxels at a time (default
        :data:`SLAB_VOXELS`).
        The arithmetic per voxel is the same, so the result is bit-identical to whole-volume
        passes; at most three full volumes are alive (input, first-pass output, result).

    Returns
    -------
    numpy.ndarray
        float64 array of ``volume``'s shape.
    """
    if combine not in ("sum", "max"):
        raise ValueError(f"combine: {combine!r} is not allowed; choose one of sum, max")
    ops_by_key: dict[_Key, AxisOp] = {}
    grouped: dict[tuple[_Key, ...], list[float]] = {}
    for ops, weight in terms:
        keys = tuple(_key(op) for op in ops)
        for key, op in zip(keys, ops, strict=True):
            ops_by_key.setdefault(key, op)
        grouped.setdefault(keys, []).append(float(weight))
    items: list[tuple[tuple[_Key, ...], object]] = []
    for keys, weights in grouped.items():
        if combine == "sum":
            total = float(np.sum(weights))
            if total != 0.0:
                items.append((keys, (total,)))
        else:
            items.append((keys, (min(weights), max(weights))))
    if not items:  # every weight cancelled (mean pooling of an odd kernel family)
        return np.zeros_like(volume)
    first_level: dict[_Key, list[tuple[tuple[_Key, ...], object]]] = {}
    for keys, payload in items:
        first_level.setdefault(keys[0], []).append((keys, payload))
    slab_axis = axes[0]  # the later passes filter other axes
    slab_voxels = SLAB_VOXELS if slab_voxels is None else slab_voxels
    result = np.empty(volume.shape, dtype=np.float64)
    first_group = True
    for key, sub in first_level.items():
        # The input itself is never modified: with no first pass, later passes make new arrays
        # (a one-axis kernel has no later pass, so it gets its own copy here).
        partial = (volume if not ops_by_key[key] and len(axes) > 1
                   else _apply(volume, ops_by_key[key], axes[0], mode))
        for where in _slabs(volume.shape, slab_axis, slab_voxels):
            index = tuple(where if a == slab_axis else slice(None) for a in range(volume.ndim))
            leaves = _walk(partial[index], axes, sub, ops_by_key, mode, level=1)
            for n, (payload, response) in enumerate(leaves):
                value = _weighted(response, payload)  # type: ignore[arg-type]
                _combine(result[index], value, combine, first=first_group and n == 0)
        first_group = False
        del partial
    return result


def _slabs(shape: tuple[int, ...], axis: int, slab_voxels: int) -> Iterator[slice]:
    """Consecutive slices along ``axis`` of about ``slab_voxels`` voxels each."""
    per_index = max(1, int(np.prod(shape)) // max(1, shape[axis]))
    step = max(1, slab_voxels // per_index)
    for start in range(0, shape[axis], step):
        yield slice(start, min(start + step, shape[axis]))


def _combine(result: np.ndarray, value: np.ndarray, combine: str, *, first: bool) -> None:
    """Pool ``value`` into ``result`` in place (the first term is copied)."""
    if first:
        result[...] = value
    elif combine == "sum":
        result += value
    else:
        np.maximum(result, value, out=result)


def _weighted(response: np.ndarray, payload: tuple[float, ...]) -> np.ndarray:
    """weight·response (sum) or max over the weights w of w·response (max), in place."""
    if len(payload) == 1:
        (w,) = payload
        if w != 1.0:
            response *= w
        return response
    wmin, wmax = payload
    if wmin == wmax:
        if wmax != 1.0:
            response *= wmax
        return response
    if wmin == -wmax:
        np.abs(response, out=response)
        if wmax != 1.0:
            response *= wmax
        return response
    return np.where(response >= 0, response * wmax, response * wmin)
