"""The full ``(a, b)`` grid with a seeded train/test split: training data and analysis probe."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from epochstore.families.mlp.config import MLPConfig

__all__ = ["GridData", "make_data"]


@dataclass(frozen=True)
class GridData:
    """Every pair ``(a, b)``, row ``a * p + b``, with labels and the split.

    Attributes
    ----------
    p
        The modulus.
    inputs
        ``(p * p, 2)`` int64 pairs.
    labels
        ``(p * p,)`` int64 ``(a + b) mod p``.
    train_indices, test_indices
        Rows of the training and test sets.
    """

    p: int
    inputs: torch.Tensor
    labels: torch.Tensor
    train_indices: torch.Tensor
    test_indices: torch.Tensor


def make_data(config: MLPConfig, device: str | torch.device = "cpu") -> GridData:
    """The grid of ``config.p`` with ``config.train_fraction`` of it (seeded) for training."""
    p = config.p
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    order = torch.randperm(p * p, generator=torch.Generator().manual_seed(config.data_seed))
    n_train = round(config.train_fraction * p * p)
    return GridData(
        p=p,
        inputs=torch.stack([a, b], dim=1).to(device),
        labels=((a + b) % p).to(device),
        train_indices=order[:n_train].sort().values.to(device),
        test_indices=order[n_train:].sort().values.to(device),
    )
