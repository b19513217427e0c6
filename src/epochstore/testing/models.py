"""Importable model factories for tests of the generic ``"torch"`` family.

Recorded runs name a factory ``"module:function"`` that the analysing process imports, so the
factories tests use live here (not in test modules).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

__all__ = [
    "HookShapedTransformer",
    "make_hook_shaped",
    "make_mlp",
    "make_tiny_hooked_transformer",
    "make_tokens",
]


def make_mlp(n_in: int = 4, n_hidden: int = 8, n_out: int = 3, seed: int = 0) -> nn.Sequential:
    """``Linear -> ReLU -> Linear``, seeded; modules ``"0"``, ``"1"``, ``"2"``."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_out))


class _Hook(nn.Identity):
    """Stands for TransformerLens' ``HookPoint``: an identity module whose output is observed."""


class _MLP(nn.Module):
    def __init__(self, d_model: int, d_mlp: int) -> None:
        super().__init__()
        self.W_in = nn.Parameter(torch.randn(d_model, d_mlp) / d_model**0.5)
        self.W_out = nn.Parameter(torch.randn(d_mlp, d_model) / d_mlp**0.5)
        self.hook_pre = _Hook()
        self.hook_post = _Hook()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        post: torch.Tensor = self.hook_post(torch.relu(self.hook_pre(x @ self.W_in)))
        return post @ self.W_out


class _Block(nn.Module):
    def __init__(self, d_model: int, d_mlp: int) -> None:
        super().__init__()
        self.mlp = _MLP(d_model, d_mlp)
        self.hook_resid_pre = _Hook()
        self.hook_resid_post = _Hook()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hook_resid_pre(x)
        out: torch.Tensor = self.hook_resid_post(x + self.mlp(x))
        return out


class HookShapedTransformer(nn.Module):
    """A plain torch model with TransformerLens-shaped module names, MLP-only blocks.

    Tokens ``(batch, pos)`` -> ``embed`` -> ``blocks.{i}`` (``hook_resid_pre``,
    ``mlp.hook_pre``, ``mlp.hook_post``, ``hook_resid_post``) -> ``unembed`` logits
    ``(batch, pos, d_vocab)``: the names and shapes a ``HookedTransformer`` has, without the
    package.
    """

    def __init__(self, d_vocab: int, d_model: int, d_mlp: int, n_layers: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(d_vocab, d_model)
        self.blocks = nn.ModuleList(_Block(d_model, d_mlp) for _ in range(n_layers))
        self.unembed = nn.Linear(d_model, d_vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        logits: torch.Tensor = self.unembed(x)
        return logits


def make_hook_shaped(
    d_vocab: int = 11, d_model: int = 8, d_mlp: int = 16, n_layers: int = 2, seed: int = 0
) -> HookShapedTransformer:
    """A seeded :class:`HookShapedTransformer`."""
    torch.manual_seed(seed)
    return HookShapedTransformer(d_vocab, d_model, d_mlp, n_layers)


def make_tokens(n: int = 5, n_ctx: int = 3, d_vocab: int = 11, seed: int = 0) -> torch.Tensor:
    """A seeded ``(n, n_ctx)`` batch of token ids: a probe factory."""
    return torch.randint(0, d_vocab, (n, n_ctx), generator=torch.Generator().manual_seed(seed))


def make_tiny_hooked_transformer(
    d_vocab: int = 11, d_model: int = 16, d_mlp: int = 32, n_layers: int = 1, seed: int = 0
) -> nn.Module:
    """A TransformerLens ``HookedTransformer`` built from a config (no download, no weights).

    Needs the ``tlens`` extra (transformer-lens 3.x).
    """
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    config = HookedTransformerConfig(
        n_layers=n_layers, d_model=d_model, n_ctx=8, d_head=4, n_heads=d_model // 4,
        d_mlp=d_mlp, d_vocab=d_vocab, act_fn="relu", normalization_type=None, seed=seed,
    )
    with warnings.catch_warnings():
        # 3.x announces that 4.0 moves to TransformerBridge (which loads models by hub name).
        warnings.simplefilter("ignore", DeprecationWarning)
        model: nn.Module = HookedTransformer(config)
    return model
