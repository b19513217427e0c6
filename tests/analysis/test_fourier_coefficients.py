"""``frequency_coefficients`` against the dense 2-D transform ``G = F C F^T`` it stands for."""

from __future__ import annotations

import numpy as np
import pytest

from epochstore.analysis.fourier import (
    fourier_basis,
    frequency_coefficients,
    neuron_frequency_fractions,
)


def _dense(grids: np.ndarray) -> np.ndarray:
    """``G_n = F C_n F^T`` of every centred ``(a, b)`` grid, the full transform."""
    basis = fourier_basis(grids.shape[-1])
    centred = grids - grids.mean(axis=(1, 2), keepdims=True)
    return np.einsum("xa,nab,yb->nxy", basis, centred, basis)


@pytest.mark.parametrize("p", [3, 5, 11, 23])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_coefficients_equal_the_dense_transform_in_every_layout(p: int, dtype: type) -> None:
    rng = np.random.default_rng(p)
    # ReLU-like grids with a large offset (the centring must not lose the small waves), a
    # constant neuron and a dead one.
    grids = np.maximum(rng.normal(size=(6, p, p)), 0) + np.arange(6)[:, None, None] * 10.0
    grids[4] = 7.0
    grids[5] = 0.0
    grids = grids.astype(dtype)
    dense = _dense(grids.astype(np.float64))
    n_freq = p // 2
    pairs = np.arange(1, p).reshape(n_freq, 2)  # rows sin k, cos k
    expected_blocks = dense[:, pairs[:, :, None], pairs[:, None, :]]
    for layout, neuron_axis in (("nab", 0), ("abn", -1), ("anb", 1)):
        arranged = np.einsum(f"nab->{layout}", grids)
        coef = frequency_coefficients(arranged, neuron_axis=neuron_axis)
        # float64 rounding of sums of p^2 terms of size ~50: 1e-10 absolute is ~1e4 ulps.
        np.testing.assert_allclose(coef.blocks, expected_blocks, atol=1e-10, err_msg=layout)
        np.testing.assert_allclose(coef.const_b, dense[:, :, 0], atol=1e-10, err_msg=layout)
        np.testing.assert_allclose(coef.const_a, dense[:, 0, :], atol=1e-10, err_msg=layout)
        np.testing.assert_allclose(coef.total, (dense**2).sum(axis=(1, 2)), atol=1e-10)
        assert coef.total[4] == pytest.approx(0, abs=1e-20)
        assert coef.total[5] == 0
    fractions = neuron_frequency_fractions(grids)
    assert fractions[:, 4:].sum() == 0  # no variation: zeros, not noise
    np.testing.assert_allclose(
        fractions[:, :4],
        np.stack(
            [
                (dense[:4][:, [0, *pairs[k]]][:, :, [0, *pairs[k]]] ** 2).sum(axis=(1, 2))
                for k in range(n_freq)
            ]
        )
        / (dense[:4] ** 2).sum(axis=(1, 2)),
        atol=1e-12,
    )


def test_coefficients_refuse_a_grid_that_is_not_square() -> None:
    with pytest.raises(ValueError, match=r"\(n_neurons, p, p\)"):
        frequency_coefficients(np.zeros((4, 5, 7)))
