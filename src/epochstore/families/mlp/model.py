"""The 2-layer MLP on learned embeddings of ``a`` and ``b`` (Liu et al. 2022, Gromov 2023)."""

from __future__ import annotations

import torch
from torch import nn

from epochstore.families.mlp.config import MLPConfig

__all__ = ["ModAddMLP", "build_model"]


class ModAddMLP(nn.Module):
    """``logits = out(ReLU(hidden([embed(a), embed(b)])))``.

    Modules (the names ``--capture`` takes): ``embed`` (``p x d_embed``, shared by both
    operands), ``hidden`` (``2 d_embed -> d_hidden``), ``act`` (ReLU), ``out``
    (``d_hidden -> p``).
    """

    def __init__(self, p: int, d_embed: int, d_hidden: int) -> None:
        super().__init__()
        self.p = p
        self.embed = nn.Embedding(p, d_embed)
        self.hidden = nn.Linear(2 * d_embed, d_hidden)
        self.act = nn.ReLU()
        self.out = nn.Linear(d_hidden, p)

    def forward(
        self, x: torch.Tensor, cache: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Logits ``(batch, p)`` of pairs ``x`` ``(batch, 2)``; ``cache`` gets ``hidden``
        (post-ReLU, ``(batch, d_hidden)``) and ``logits``."""
        post = self.act(self.hidden(self.embed(x).flatten(1)))
        logits: torch.Tensor = self.out(post)
        if cache is not None:
            cache["hidden"] = post.detach()
            cache["logits"] = logits.detach()
        return logits


def build_model(config: MLPConfig, device: str | torch.device = "cpu") -> ModAddMLP:
    """The freshly initialised model of ``config`` (seeded; global RNG state untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.model_seed)
        model = ModAddMLP(config.p, config.d_embed, config.d_hidden)
    return model.to(device)
