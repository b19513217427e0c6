"""The Modulo Addition MLP family: the :class:`~epochstore.interface.ModelFamily` glue."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from epochstore.families.mlp.analyzers import default_analyzers
from epochstore.families.mlp.config import PRESETS, MLPConfig
from epochstore.families.mlp.data import GridData, make_data
from epochstore.families.mlp.model import ModAddMLP, build_model
from epochstore.families.mlp.train import FAMILY_NAME, train_run

if TYPE_CHECKING:
    from epochstore.interface import Analyzer

__all__ = ["ModAddMLPFamily"]


class ModAddMLPFamily:
    """Modular addition learned by a 2-layer MLP on learned embeddings (registered as
    ``"modadd_mlp"``).

    Examples
    --------
    >>> family = ModAddMLPFamily()
    >>> config = {"p": 7, "d_embed": 4, "d_hidden": 8}
    >>> cache = family.run_with_cache(family.build_model(config), family.make_probe(config))
    >>> tuple(cache["hidden"].shape)
    (49, 8)
    """

    name = FAMILY_NAME

    def __repr__(self) -> str:
        return "ModAddMLPFamily()"

    def presets(self) -> Mapping[str, Mapping[str, Any]]:
        """``{"demo": ...}`` as JSON-serialisable config dicts."""
        return {name: config.to_dict() for name, config in PRESETS.items()}

    def build_model(self, config: Mapping[str, Any]) -> ModAddMLP:
        """The freshly initialised (seeded) model of ``config``."""
        return build_model(MLPConfig.from_dict(config))

    def make_probe(self, config: Mapping[str, Any], device: str = "cpu") -> GridData:
        """The full ``(a, b)`` grid with the config's train/test split."""
        return make_data(MLPConfig.from_dict(config), device)

    def run_with_cache(self, model: torch.nn.Module, probe: Any) -> dict[str, torch.Tensor]:
        """Run the model on every grid row; the cache holds ``hidden`` and ``logits``."""
        if not isinstance(probe, GridData):
            raise TypeError(f"expected a GridData probe, got {type(probe).__name__}")
        cache: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            model(probe.inputs, cache=cache)
        return cache

    def analyzers(self) -> Sequence[Analyzer]:
        """``embedding_fourier``, ``neuron_frequencies``, ``training_metrics``,
        ``parameter_stats``."""
        return default_analyzers()

    def train(
        self,
        location: str,
        config: Mapping[str, Any],
        *,
        progress: Callable[[int, Mapping[str, float]], None] | None = None,
    ) -> None:
        """Train a run into ``location``, a local directory (resumable).

        See :func:`~epochstore.families.mlp.train.train_run`.
        """
        train_run(location, config, progress=progress)
