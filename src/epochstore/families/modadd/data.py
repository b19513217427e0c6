"""Data of the Modulo Addition family: every ``(a, b)`` pair, its split, and the analysis probe.

Row ``a * p + b`` of the full grid is the input ``[a, b, =]`` (``=`` is token ``p``) with label
``(a + b) mod p``. The train/test split is a seeded permutation of the rows; the analysis probe
is the whole grid (with the split), so analyzers can reshape any per-row quantity to ``(p, p)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from epochstore.families.modadd.config import ModAddConfig

__all__ = ["ModAddData", "all_pairs", "make_data", "split_indices"]


def all_pairs(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the inputs and labels of every ``(a, b)`` pair, in row order ``a * p + b``.

    Returns
    -------
    inputs : torch.Tensor
        ``(p * p, 3)`` int64; row ``a * p + b`` is ``[a, b, p]``.
    labels : torch.Tensor
        ``(p * p,)`` int64, ``(a + b) % p``.

    Examples
    --------
    >>> x, y = all_pairs(5)
    >>> x[7].tolist(), int(y[7])
    ([1, 2, 5], 3)
    """
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    equals = torch.full_like(a, p)
    return torch.stack([a, b, equals], dim=1), (a + b) % p


def split_indices(p: int, frac_train: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split the ``p * p`` row indices into train and test sets, reproducibly.

    The first ``int(frac_train * p * p)`` rows of a permutation drawn with
    ``numpy.random.default_rng(seed)`` are the training set. Both index sets are returned
    sorted.

    Returns
    -------
    train, test : torch.Tensor
        int64 row indices into :func:`all_pairs`.
    """
    n = p * p
    n_train = int(frac_train * n)
    perm = np.random.default_rng(seed).permutation(n)
    train = torch.from_numpy(np.sort(perm[:n_train])).long()
    test = torch.from_numpy(np.sort(perm[n_train:])).long()
    return train, test


@dataclass(frozen=True, eq=False)
class ModAddData:
    """The full ``(a, b)`` grid with its train/test split: training data and analysis probe.

    Attributes
    ----------
    p
        The modulus.
    inputs
        ``(p * p, 3)`` int64 tokens, row ``a * p + b`` is ``[a, b, p]``.
    labels
        ``(p * p,)`` int64, ``(a + b) % p``.
    train_indices, test_indices
        Sorted int64 row indices of the train and test sets.
    """

    p: int
    inputs: torch.Tensor
    labels: torch.Tensor
    train_indices: torch.Tensor
    test_indices: torch.Tensor

    @property
    def train_inputs(self) -> torch.Tensor:
        """``(n_train, 3)`` training inputs."""
        return self.inputs[self.train_indices]

    @property
    def train_labels(self) -> torch.Tensor:
        """``(n_train,)`` training labels."""
        return self.labels[self.train_indices]

    @property
    def test_inputs(self) -> torch.Tensor:
        """``(n_test, 3)`` test inputs."""
        return self.inputs[self.test_indices]

    @property
    def test_labels(self) -> torch.Tensor:
        """``(n_test,)`` test labels."""
        return self.labels[self.test_indices]

    def to(self, device: str | torch.device) -> ModAddData:
        """Return a copy with every tensor on ``device``."""
        return ModAddData(
            p=self.p,
            inputs=self.inputs.to(device),
            labels=self.labels.to(device),
            train_indices=self.train_indices.to(device),
            test_indices=self.test_indices.to(device),
        )


def make_data(config: ModAddConfig, device: str | torch.device = "cpu") -> ModAddData:
    """Build the full grid and the seeded split of ``config`` on ``device``."""
    inputs, labels = all_pairs(config.p)
    train, test = split_indices(config.p, config.frac_train, config.data_seed)
    return ModAddData(config.p, inputs, labels, train, test).to(device)
