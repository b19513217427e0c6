"""Configuration of the Modulo Addition MLP family: one frozen dataclass and its presets."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["PRESETS", "MLPConfig"]


@dataclass(frozen=True)
class MLPConfig:
    """Modular addition ``(a + b) mod p`` learned by a 2-layer MLP on learned embeddings.

    Attributes
    ----------
    p
        The (odd) modulus; inputs are pairs ``(a, b)`` of ``0..p-1``.
    d_embed
        Width of the token embedding shared by ``a`` and ``b``.
    d_hidden
        Hidden ReLU neurons.
    train_fraction
        Share of the ``p * p`` pairs trained on (the rest is the test set).
    lr, weight_decay, beta1, beta2
        AdamW, full batch. Strong weight decay is what makes the MLP grok.
    num_epochs
        Full-batch steps; epochs ``0..num_epochs-1`` (epoch ``e``'s checkpoint holds the
        weights after ``e`` steps).
    checkpoint_every
        Save every N-th epoch (and the last).
    data_seed, model_seed
        Seeds of the train/test split and of the initialisation.
    """

    p: int = 59
    d_embed: int = 32
    d_hidden: int = 128
    train_fraction: float = 0.5
    lr: float = 3e-3
    weight_decay: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.98
    num_epochs: int = 2500
    checkpoint_every: int = 50
    data_seed: int = 0
    model_seed: int = 0

    def __post_init__(self) -> None:
        if self.p < 3 or self.p % 2 == 0:
            raise ValueError(f"p must be an odd integer >= 3, got {self.p}")
        if not 0 < self.train_fraction < 1:
            raise ValueError(f"train_fraction must be in (0, 1), got {self.train_fraction}")
        for name in ("d_embed", "d_hidden", "num_epochs", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def schedule(self) -> tuple[int, ...]:
        """The checkpoint epochs: every ``checkpoint_every``-th and the last."""
        last = self.num_epochs - 1
        return tuple(sorted({*range(0, self.num_epochs, self.checkpoint_every), last}))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable parameters (stored in ``variant.json``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | MLPConfig) -> MLPConfig:
        """Read a config; missing keys take their defaults, unknown keys are an error."""
        if isinstance(data, MLPConfig):
            return data
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown modadd_mlp config keys {sorted(unknown)}; known: "
                             f"{sorted(known)}")
        return cls(**dict(data))


#: ``demo``: memorises by epoch ~200, generalises by ~1600 (docs/families/modadd_mlp.md).
PRESETS: Final[Mapping[str, MLPConfig]] = {
    "demo": MLPConfig(),
}
