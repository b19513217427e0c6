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


def frequency_coefficients(activations: FloatArray) -> FrequencyCoefficients:
    """Compute the :class:`FrequencyCoefficients` of ``(n_neurons, p, p)`` activations (float64).

    Only the coefficients at ``(x, y)`` in ``{const, sin k, cos k}^2`` are computed: one
    matrix product over all neurons along ``a`` (half the work of the full 2-D transform), then
    the few ``b`` components each frequency uses.
    """
    acts = np.asarray(activations, dtype=np.float64)
    n_neurons, p = acts.shape[0], acts.shape[-1]
    n_freq = p // 2
    basis = fourier_basis(p)
    centred = acts - acts.mean(axis=(1, 2), keepdims=True)
    half = (centred.transpose(0, 2, 1).reshape(-1, p) @ basis.T).reshape(n_neurons, p, p)
    half = half.transpose(0, 2, 1)  # half[n, x, b] = sum_a basis[x, a] centred[n, a, b]
    waves = half[:, 1:, :].reshape(n_neurons, n_freq, 2, p)  # rows sin k, cos k
    return FrequencyCoefficients(
        blocks=np.einsum("nkrb,ksb->nkrs", waves, basis[1:].reshape(n_freq, 2, p)),
        const_b=half @ basis[0],
        const_a=half[:, 0, :] @ basis.T,
        total=(centred**2).sum(axis=(1, 2)),  # Parseval: the energy of every coefficient
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
