"""The 1-layer transformer of Nanda et al. (2023), in plain torch, with an activation cache.

Architecture (no LayerNorm, no attention biases, causal attention)::

    resid_pre  = W_E[x] + W_pos                                   (batch, pos, d_model)
    attn_out   = sum_h softmax(q_h k_h^T / sqrt(d_head), causal) v_h W_O[h]
    resid_mid  = resid_pre + attn_out
    mlp_post   = ReLU(resid_mid W_in + b_in)                      (batch, pos, d_mlp)
    resid_post = resid_mid + mlp_post W_out + b_out
    logits     = resid_post W_U                                   (batch, pos, p)

The prediction of ``(a + b) mod p`` is read at the last position (the ``=`` token).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, MutableMapping
from typing import Literal

import torch
from torch import nn

from epochstore.families.modadd.config import ModAddConfig

__all__ = ["CACHE_KEYS", "N_CTX", "ModAddTransformer", "Positions", "build_model"]

#: Which positions a forward pass computes: every one, or only what the last one needs.
Positions = Literal["all", "last"]

#: Sequence length: ``a``, ``b``, ``=``.
N_CTX = 3

#: Keys :meth:`ModAddTransformer.forward` writes into a cache, with their shapes
#: (``B`` batch, ``P`` = 3 positions, ``H`` heads). With ``positions="last"`` the query side
#: has ``P = 1`` (the last position) and ``k``, ``v`` keep every position.
CACHE_KEYS: dict[str, str] = {
    "embed": "(B, P, d_model) token embeddings W_E[x]",
    "pos_embed": "(P, d_model) positional embeddings W_pos",
    "resid_pre": "(B, P, d_model) embed + pos_embed",
    "q": "(B, H, P, d_head) attention queries",
    "k": "(B, H, P, d_head) attention keys",
    "v": "(B, H, P, d_head) attention values",
    "attn_scores": "(B, H, P_query, P_key) scaled, causally masked scores",
    "attn_pattern": "(B, H, P_query, P_key) attention pattern (softmax of the scores)",
    "attn_z": "(B, H, P, d_head) pattern-weighted values",
    "attn_out": "(B, P, d_model) attention output",
    "resid_mid": "(B, P, d_model) resid_pre + attn_out",
    "mlp_pre": "(B, P, d_mlp) MLP pre-activations",
    "mlp_post": "(B, P, d_mlp) MLP post-activations (ReLU)",
    "mlp_out": "(B, P, d_model) MLP output",
    "resid_post": "(B, P, d_model) resid_mid + mlp_out",
    "logits": "(B, P, p) logits",
}


class ModAddTransformer(nn.Module):
    """One-layer, attention + ReLU-MLP transformer without LayerNorm.

    Parameters
    ----------
    p
        The modulus: the output has ``p`` classes and the input vocabulary ``p + 1`` tokens.
    d_model, n_heads, d_head, d_mlp
        Sizes.
    generator
        Random generator for the initialisation (Nanda et al.'s: Gaussian weights scaled by
        ``1/sqrt(d_model)``, ``W_U`` by ``1/sqrt(d_vocab)``, zero biases).

    Attributes
    ----------
    W_E : (p + 1, d_model)
        Token embedding; rows ``0..p-1`` are the numbers, row ``p`` is ``=``.
    W_pos : (3, d_model)
        Learned positional embedding.
    W_Q, W_K, W_V : (n_heads, d_model, d_head)
        Attention projections.
    W_O : (n_heads, d_head, d_model)
        Attention output projection.
    W_in : (d_model, d_mlp), b_in : (d_mlp,)
        MLP input layer.
    W_out : (d_mlp, d_model), b_out : (d_model,)
        MLP output layer.
    W_U : (d_model, p)
        Unembedding.
    """

    def __init__(
        self,
        p: int,
        d_model: int = 128,
        n_heads: int = 4,
        d_head: int = 32,
        d_mlp: int = 512,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.p = p
        self.d_model = d_model
        self.n_heads = n_heads
        self.d_head = d_head
        self.d_mlp = d_mlp
        d_vocab = p + 1
        scale = 1.0 / math.sqrt(d_model)

        def gaussian(*shape: int, std: float = scale) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, generator=generator) * std)

        self.W_E = gaussian(d_vocab, d_model)
        self.W_pos = gaussian(N_CTX, d_model)
        self.W_Q = gaussian(n_heads, d_model, d_head)
        self.W_K = gaussian(n_heads, d_model, d_head)
        self.W_V = gaussian(n_heads, d_model, d_head)
        self.W_O = gaussian(n_heads, d_head, d_model)
        self.W_in = gaussian(d_model, d_mlp)
        self.b_in = nn.Parameter(torch.zeros(d_mlp))
        self.W_out = gaussian(d_mlp, d_model)
        self.b_out = nn.Parameter(torch.zeros(d_model))
        self.W_U = gaussian(d_model, p, std=1.0 / math.sqrt(d_vocab))

    @classmethod
    def from_config(
        cls, config: ModAddConfig, *, generator: torch.Generator | None = None
    ) -> ModAddTransformer:
        """Build the model of ``config`` (initialised from ``generator``)."""
        return cls(
            config.p,
            config.d_model,
            config.n_heads,
            config.d_head,
            config.d_mlp,
            generator=generator,
        )

    def final_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Return the ``(batch, p)`` logits at the last position, computing only what they need.

        With one layer, the last position's output depends on the attention of that query
        alone and on the MLP at that position alone, so the MLP and unembedding of the other
        positions (two thirds of the work) are skipped. Equal to ``forward(x)[:, -1]`` up to
        floating-point rounding; used for training and evaluation (the analyzers' cached
        forward is ``forward(x, cache, positions="last")``).
        """
        # Queries, keys and values are linear in the embeddings, so they are looked up in
        # per-token and per-position tables (vocabulary x heads), not projected per example;
        # batched 1x32-by-32x3 matmuls are slow on CPU, so scores use broadcast products.
        batch, h, e, d = x.shape[0], self.n_heads, self.d_head, self.d_model
        w_qkv = torch.cat([self.W_Q, self.W_K, self.W_V], dim=0).permute(1, 0, 2).reshape(d, -1)
        token_qkv = (self.W_E @ w_qkv).view(-1, 3, h, e)
        pos_qkv = (self.W_pos @ w_qkv).view(-1, 3, h, e)
        qkv = token_qkv[x] + pos_qkv
        q = qkv[:, -1:, 0]
        k, v = qkv[:, :, 1], qkv[:, :, 2]
        pattern = torch.softmax((q * k).sum(-1) / math.sqrt(e), dim=1)
        z = (pattern[..., None] * v).sum(1)
        resid_pre_last = self.W_E[x[:, -1]] + self.W_pos[-1]
        resid_mid = resid_pre_last + z.reshape(batch, h * e) @ self.W_O.reshape(h * e, d)
        mlp_post = torch.relu(resid_mid @ self.W_in + self.b_in)
        resid_post = resid_mid + mlp_post @ self.W_out + self.b_out
        return resid_post @ self.W_U

    def _forward_last(
        self,
        x: torch.Tensor,
        cache: MutableMapping[str, torch.Tensor] | None = None,
        cache_keys: Collection[str] | None = None,
    ) -> torch.Tensor:
        """The forward pass of the last query position only: ``(batch, 1, p)`` logits.

        The cache holds the :data:`CACHE_KEYS` of that position (a position axis of length 1),
        except ``k`` and ``v``, which the last query reads at every position, and the scores
        and pattern, ``(B, H, 1, P_key)``. Activations that are not kept are not computed.
        """
        # Everything before the MLP depends on the example only through its tokens, so it is
        # computed once per (token, position) in tables the size of the vocabulary and looked
        # up: the residual stream (W_E + W_pos), its queries, keys and values, and the scores
        # of the last position's query against every key. Per example only the lookups, the
        # softmax over 3 keys, the pattern-weighted values and the matmuls of one position are
        # left. The last position attends to every position: no causal mask is needed.
        keep = CACHE_KEYS.keys() if cache_keys is None else cache_keys
        batch, n_ctx = x.shape
        h, e, d = self.n_heads, self.d_head, self.d_model
        positions = torch.arange(n_ctx, device=x.device)
        w_qkv = torch.cat([self.W_Q, self.W_K, self.W_V], dim=0).permute(1, 0, 2).reshape(d, -1)
        resid_table = self.W_E[:, None] + self.W_pos  # (vocab, P, d)
        qkv_table = (resid_table @ w_qkv).view(-1, n_ctx, 3, h, e)  # (vocab, P, qkv, H, e)
        q_table, k_table, v_table = qkv_table[:, -1, 0], qkv_table[:, :, 1], qkv_table[:, :, 2]
        score_table = torch.einsum("mhe,tphe->mtph", q_table, k_table) / math.sqrt(e)
        scores = score_table[x[:, -1:], x, positions]  # (B, P, H)
        pattern = torch.softmax(scores, dim=1)
        z = (pattern[..., None] * v_table[x, positions]).sum(1)  # (B, H, e)
        resid_pre = resid_table[x[:, -1], -1]
        z_flat, w_o = z.reshape(batch, h * e), self.W_O.reshape(h * e, d)
        resid_mid = torch.addmm(resid_pre, z_flat, w_o)
        mlp_pre = torch.addmm(self.b_in, resid_mid, self.W_in)
        keep_pre = cache is not None and "mlp_pre" in keep
        mlp_post = torch.relu(mlp_pre) if keep_pre else torch.relu_(mlp_pre)
        mlp_out = torch.addmm(self.b_out, mlp_post, self.W_out)
        resid_post = resid_mid + mlp_out
        logits = (resid_post @ self.W_U)[:, None]
        if cache is not None:
            _fill_cache(
                cache,
                cache_keys,
                {
                    "embed": lambda: self.W_E[x[:, -1:]],
                    "pos_embed": lambda: self.W_pos[-1:],
                    "resid_pre": lambda: resid_pre[:, None],
                    "q": lambda: q_table[x[:, -1]][:, :, None],
                    "k": lambda: k_table[x, positions].transpose(1, 2),
                    "v": lambda: v_table[x, positions].transpose(1, 2),
                    "attn_scores": lambda: scores.transpose(1, 2)[:, :, None],
                    "attn_pattern": lambda: pattern.transpose(1, 2)[:, :, None],
                    "attn_z": lambda: z[:, :, None],
                    "attn_out": lambda: (z_flat @ w_o)[:, None],
                    "resid_mid": lambda: resid_mid[:, None],
                    "mlp_pre": lambda: mlp_pre[:, None],
                    "mlp_post": lambda: mlp_post[:, None],
                    "mlp_out": lambda: mlp_out[:, None],
                    "resid_post": lambda: resid_post[:, None],
                    "logits": lambda: logits,
                },
            )
        return logits

    def forward(
        self,
        x: torch.Tensor,
        cache: MutableMapping[str, torch.Tensor] | None = None,
        cache_keys: Collection[str] | None = None,
        *,
        positions: Positions = "all",
    ) -> torch.Tensor:
        """Run the model on token sequences.

        Parameters
        ----------
        x
            ``(batch, 3)`` int64 tokens (``[a, b, p]`` for the task).
        cache
            If given, filled with detached activations under the keys of :data:`CACHE_KEYS`.
        cache_keys
            Store only these keys (default: all of them), to save memory.
        positions
            ``"all"``: every position. ``"last"``: only what the last position (``=``, where
            the prediction is read) needs, 4x less CPU at p = 113: the query, MLP and logits
            of that position alone, keys and values of every position. Each cached
            activation then has a position axis of length 1 (the last position), except
            ``k`` and ``v`` (every position), ``pos_embed`` is ``(1, d_model)`` and the
            scores and pattern are ``(B, H, 1, P_key)``. Equal to the last position of
            ``"all"`` up to float rounding.

        Returns
        -------
        torch.Tensor
            ``(batch, 3, p)`` logits (``(batch, 1, p)`` with ``positions="last"``); the
            prediction is at position ``-1``.

        Raises
        ------
        ValueError
            If ``positions`` is neither ``"all"`` nor ``"last"``.
        KeyError
            If ``cache_keys`` names a key that is not in :data:`CACHE_KEYS`.
        """
        _check_cache_keys(cache_keys)
        if positions == "last":
            return self._forward_last(x, cache, cache_keys)
        if positions != "all":
            raise ValueError(f"positions must be 'all' or 'last', got {positions!r}")
        embed = self.W_E[x]
        resid_pre = embed + self.W_pos
        q = torch.einsum("bpd,hde->bhpe", resid_pre, self.W_Q)
        k = torch.einsum("bpd,hde->bhpe", resid_pre, self.W_K)
        v = torch.einsum("bpd,hde->bhpe", resid_pre, self.W_V)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.d_head)
        n_ctx = x.shape[1]
        causal = torch.ones(n_ctx, n_ctx, dtype=torch.bool, device=x.device).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
        pattern = torch.softmax(scores, dim=-1)
        z = pattern @ v
        attn_out = torch.einsum("bhpe,hed->bpd", z, self.W_O)
        resid_mid = resid_pre + attn_out
        mlp_pre = resid_mid @ self.W_in + self.b_in
        mlp_post = torch.relu(mlp_pre)
        mlp_out = mlp_post @ self.W_out + self.b_out
        resid_post = resid_mid + mlp_out
        logits = resid_post @ self.W_U
        if cache is not None:
            _fill_cache(
                cache,
                cache_keys,
                {
                    "embed": lambda: embed,
                    "pos_embed": lambda: self.W_pos,
                    "resid_pre": lambda: resid_pre,
                    "q": lambda: q,
                    "k": lambda: k,
                    "v": lambda: v,
                    "attn_scores": lambda: scores,
                    "attn_pattern": lambda: pattern,
                    "attn_z": lambda: z,
                    "attn_out": lambda: attn_out,
                    "resid_mid": lambda: resid_mid,
                    "mlp_pre": lambda: mlp_pre,
                    "mlp_post": lambda: mlp_post,
                    "mlp_out": lambda: mlp_out,
                    "resid_post": lambda: resid_post,
                    "logits": lambda: logits,
                },
            )
        return logits


def _check_cache_keys(cache_keys: Collection[str] | None) -> None:
    unknown = set(cache_keys or ()) - CACHE_KEYS.keys()
    if unknown:
        raise KeyError(f"unknown cache keys {sorted(unknown)}; known: {list(CACHE_KEYS)}")


def _fill_cache(
    cache: MutableMapping[str, torch.Tensor],
    cache_keys: Collection[str] | None,
    values: Mapping[str, Callable[[], torch.Tensor]],
) -> None:
    """Store the detached value of every kept key (views are only made for the kept ones)."""
    for key, value in values.items():
        if cache_keys is None or key in cache_keys:
            cache[key] = value().detach()


def build_model(config: ModAddConfig, device: str | torch.device = "cpu") -> ModAddTransformer:
    """Build the freshly initialised model of ``config``, seeded by ``config.model_seed``.

    The initialisation uses its own :class:`torch.Generator`, so it neither reads nor changes
    torch's global random state.
    """
    generator = torch.Generator().manual_seed(config.model_seed)
    return ModAddTransformer.from_config(config, generator=generator).to(device)
