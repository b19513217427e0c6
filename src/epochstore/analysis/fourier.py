"""The real Fourier basis of Z_p and the Fourier quantities analyzers of modular arithmetic share.

Neutral: every family that learns a function on Z_p (``modadd``, ``modadd_mlp``) imports it from
here; it imports nothing of epochstore.

For odd ``p`` the basis has ``p`` orthonormal rows over ``x = 0..p-1``::

    row 0      constant        1 / sqrt(p)                      label "const"
    row 2k-1   sin k           sin(2 pi k x / p) * sqrt(2 / p)  label "sin k"
    row 2k     cos k           cos(2 pi k x / p) * sqrt(2 / p)  label "cos k"

for frequencies ``k = 1..p//2``. (The original npz-based tool labelled the sin rows "cos".)
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "FrequencyCoefficients",
    "fourier_basis",
    "fourier_labels",
    "frequency_coefficients",
    "frequency_norms",
    "gini",
    "neuron_frequency_fractions",
]

FloatArray = npt.NDArray[np.floating[Any]]


def _check_odd(p: int) -> None:
    if isinstance(p, bool) or not isinstance(p, int | np.integer) or p < 3 or p % 2 == 0:
        raise ValueError(f"the Fourier basis is defined here for odd p >= 3, got {p!r}")


def fourier_labels(p: int) -> list[str]:
    """Return the labels of the basis rows: ``"const"``, ``"sin 1"``, ``"cos 1"``, ...

    Examples
    --------
    >>> fourier_labels(5)
    ['const', 'sin 1', 'cos 1', 'sin 2', 'cos 2']
    """
    _check_odd(p)
    labels = ["const"]
    for k in range(1, p // 2 + 1):
        labels += [f"sin {k}", f"cos {k}"]
    return labels


def fourier_basis(p: int, dtype: npt.DTypeLike = np.float64) -> npt.NDArray[Any]:
    """Return the ``(p, p)`` orthonormal real Fourier basis of Z_p, one basis vector per row.

    Parameters
    ----------
    p
        An odd modulus.
    dtype
        NumPy dtype of the result.

    Returns
    -------
    numpy.ndarray
        ``basis[i, x]``; ``basis @ basis.T`` is the identity. Rows are ordered as
        :func:`fourier_labels` says.

    Raises
    ------
    ValueError
        If ``p`` is not an odd integer >= 3.
    """
    _check_odd(p)
    x = np.arange(p)
    rows = [np.ones(p)]
    for k in range(1, p // 2 + 1):
        angle = 2 * np.pi * k * x / p
        rows += [np.sin(angle), np.cos(angle)]
    basis = np.stack(rows)
    basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    return basis.astype(dtype)


def frequency_norms(coefficients: FloatArray) -> FloatArray:
    """Combine per-component norms into per-frequency norms ``sqrt(sin_k^2 + cos_k^2)``.

    Parameters
    ----------
    coefficients
        ``(..., p)`` norms (or coefficients) along the Fourier basis rows.

    Returns
    -------
    numpy.ndarray
        ``(..., p // 2)``; entry ``k - 1`` is frequency ``k``.
    """
    sin = coefficients[..., 1::2]
    cos = coefficients[..., 2::2]
    return np.sqrt(sin**2 + cos**2)


class FrequencyCoefficients(NamedTuple):
    """The 2-D Fourier coefficients of centred neuron grids that the frequency analyses use.

    With ``G_n = F C_n F^T`` (``F`` from :func:`fourier_basis`, ``C_n`` the centred grid of
    neuron ``n``, ``a`` along rows): ``blocks[n, k - 1, r, s] = G_n[2k - 1 + r, 2k - 1 + s]``
    (``r, s``: 0 sin, 1 cos), ``const_b[n, x] = G_n[x, const]``,
    ``const_a[n, y] = G_n[const, y]``, and ``total[n] = sum G_n^2 = ||C_n||^2``.
    """

    blocks: FloatArray
    const_b: FloatArray
    const_a: FloatArray
    total: FloatArray


def frequency_coefficients(
    activations: FloatArray, *, neuron_axis: int = 0
) -> FrequencyCoefficients:
    """Compute the :class:`FrequencyCoefficients` of neuron grids over ``(a, b)`` (float64).

    Parameters
    ----------
    activations
        ``(n_neurons, p, p)`` activations, dims ``(neuron, a, b)``, any float dtype; or
        another order of the same axes, with ``neuron_axis`` saying where the neurons are
        (e.g. ``(a, b, neuron)``, ``neuron_axis=-1``: the rows ``a * p + b`` of a forward
        pass over the grid, reshaped without a copy).
    neuron_axis
        The axis of the neurons; ``a`` and ``b`` are the other two, in that order.

    Notes
    -----
    No 2-D transform is computed. With ``w = 2 pi k / p`` the product of two waves of
    frequency ``k`` is a wave in ``a + b`` plus one in ``a - b``
    (``2 cos(wa) cos(wb) = cos(w(a + b)) + cos(w(a - b))``, likewise for the other three), so
    the four coefficients of frequency ``k`` come from the 1-D transforms of the centred grid
    summed over each residue of ``a + b`` and of ``a - b`` mod ``p``; the coefficients with
    the constant row come from the row and column sums. One pass over the grid in float64
    (``O(p^2)`` per neuron instead of the ``O(p^3)`` of a transform), a row of ``a`` at a time,
    so no float64 copy of the grid is made.
    """
    x = np.moveaxis(np.asarray(activations), neuron_axis, -1)  # (a, b, neuron)
    if x.ndim != 3 or x.shape[0] != x.shape[1]:
        raise ValueError(
            f"expected (n_neurons, p, p) activations (neurons on axis {neuron_axis}), "
            f"got shape {np.shape(activations)}"
        )
    p, n_neurons = x.shape[0], x.shape[2]
    n_freq = p // 2
    basis = fourier_basis(p)
    row_sums = x.sum(axis=1, dtype=np.float64)  # (a, neuron)
    col_sums = x.sum(axis=0, dtype=np.float64)  # (b, neuron)
    mean = row_sums.sum(axis=0) / (p * p)
    # by_sum[a + b] and by_diff[a - b + p - 1] accumulate the centred grid; folded mod p below.
    by_sum = np.zeros((2 * p, n_neurons))
    by_diff = np.zeros((2 * p, n_neurons))
    total = np.zeros(n_neurons)
    for a in range(p):
        row = x[a] - mean  # (b, neuron), float64
        by_sum[a : a + p] += row
        by_diff[a : a + p] += row[::-1]
        total += np.einsum("bn,bn->n", row, row)  # ||C||^2, the energy of every coefficient
    by_sum = by_sum[:p] + by_sum[p:]
    by_diff = np.roll(by_diff[:p] + by_diff[p:], 1, axis=0)  # index a - b + p - 1 = r - 1 mod p
    # All 1-D transforms in one product (row 2k - 1 of a transform is
    # sqrt(2 / p) sum_r S[r] sin(w r), row 2k the cos): (sum, diff, rows, columns) x neuron.
    sums = np.stack([by_sum, by_diff, row_sums - p * mean, col_sums - p * mean], axis=1)
    transforms = (basis @ sums.reshape(p, -1)).reshape(p, 4, n_neurons)
    t_sum = transforms[1:, 0].reshape(n_freq, 2, n_neurons)
    t_diff = transforms[1:, 1].reshape(n_freq, 2, n_neurons)
    scale = math.sqrt(2 * p)
    blocks = np.empty((n_neurons, n_freq, 2, 2))
    blocks[:, :, 0, 0] = ((t_diff[:, 1] - t_sum[:, 1]) / scale).T  # sin a sin b
    blocks[:, :, 0, 1] = ((t_sum[:, 0] + t_diff[:, 0]) / scale).T  # sin a cos b
    blocks[:, :, 1, 0] = ((t_sum[:, 0] - t_diff[:, 0]) / scale).T  # cos a sin b
    blocks[:, :, 1, 1] = ((t_diff[:, 1] + t_sum[:, 1]) / scale).T  # cos a cos b
    root_p = math.sqrt(p)
    return FrequencyCoefficients(
        blocks=blocks,
        const_b=transforms[:, 2].T / root_p,
        const_a=transforms[:, 3].T / root_p,
        total=total,
    )


def neuron_frequency_fractions(activations: FloatArray | FrequencyCoefficients) -> FloatArray:
    """Fraction of each neuron's DC-removed 2-D Fourier energy in each frequency.

    For neuron ``n`` with activations ``A_n[a, b]`` over the grid, take the centred
    ``C_n = A_n - mean(A_n)`` and its 2-D Fourier coefficients ``F C_n F^T`` (``F`` from
    :func:`fourier_basis`). The energy of frequency ``k`` is the sum of squared coefficients at
    ``(x, y)`` with ``x, y`` in ``{const, sin k, cos k}``: terms in ``a`` alone, in ``b`` alone,
    and the products of the two at frequency ``k`` (as in Nanda et al. 2023). It is divided
    by the total energy ``||C_n||^2`` (Parseval), so each neuron's fractions sum to at most 1
    (the rest lies in products of different frequencies). Neurons with no variance get zeros.

    Parameters
    ----------
    activations
        ``(n_neurons, p, p)`` activations, dims ``(neuron, a, b)``, or their
        :func:`~epochstore.analysis.fourier.frequency_coefficients` (computed once for
        several analyses).

    Returns
    -------
    numpy.ndarray
        ``(p // 2, n_neurons)`` float64; row ``k - 1`` is frequency ``k``.
    """
    coef = (
        activations
        if isinstance(activations, FrequencyCoefficients)
        else frequency_coefficients(activations)
    )
    n_neurons, n_freq = coef.blocks.shape[:2]
    per_freq = (
        (coef.blocks**2).sum(axis=(2, 3))
        + (coef.const_b[:, 1:] ** 2).reshape(n_neurons, n_freq, 2).sum(axis=2)
        + (coef.const_a[:, 1:] ** 2).reshape(n_neurons, n_freq, 2).sum(axis=2)
        + coef.const_b[:, :1] ** 2
    ).T
    total = coef.total
    safe_total = np.where(total > 0, total, 1.0)
    result: FloatArray = np.where(total > 0, per_freq / safe_total, 0.0)
    return result


def gini(values: FloatArray) -> float:
    """Gini coefficient of non-negative values: 0 when all equal, towards 1 when one dominates.

    ``G = sum_i sum_j |x_i - x_j| / (2 n sum_i x_i)``, computed in O(n log n) from the sorted
    values as ``sum_i (2 i - n - 1) x_(i) / (n sum x)`` with ``i = 1..n``. Zero for an all-zero
    input.

    Examples
    --------
    >>> gini(np.ones(4))
    0.0
    >>> gini(np.array([0.0, 0.0, 0.0, 1.0]))
    0.75
    """
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    n = x.size
    total = x.sum()
    if n == 0 or total == 0:
        return 0.0
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (n * total))
