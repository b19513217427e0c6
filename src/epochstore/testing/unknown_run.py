"""A run written with :class:`~epochstore.ArtifactStore` alone: no family, no ``variant.json``,
analyzers whose names epochstore has never seen.

The default views must draw it from its manifests: one analyzer per kind of field (a scalar,
1-D, 2-D and 3-D), plus a bool and an int field.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from epochstore.store import ArtifactStore

__all__ = ["UNKNOWN_ANALYZERS", "write_unknown_run"]

#: The analyzers :func:`write_unknown_run` writes, and their fields' dims.
UNKNOWN_ANALYZERS = {
    "run_stats": {"loss": (), "converged": ()},
    "probe_vector": {"spectrum": ("freq",), "counts": ("bucket",)},
    "weight_map": {"w": ("row", "col")},
    "head_maps": {"attn": ("head", "query", "key")},
}


def write_unknown_run(run: str | os.PathLike[str], epochs: Iterable[int], *,
                      heads: int = 3, seed: int = 0) -> Path:
    """Write ``epochs`` of the four :data:`UNKNOWN_ANALYZERS` into ``run/artifacts``.

    Values are a smooth function of the epoch (so every figure changes with the slider):
    ``run_stats/loss`` decays, ``run_stats/converged`` is a bool, ``probe_vector/counts`` int32,
    the rest float32. Epochs already written are kept.
    """
    store = ArtifactStore(run)
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((heads, 5, 5)).astype(np.float32)
    for epoch in epochs:
        if store.has_epoch("head_maps", epoch):
            continue
        t = epoch / 100.0
        store.write_epoch("run_stats", epoch, {
            "loss": np.float32(np.exp(-t)), "converged": np.bool_(t > 5)})
        store.write_epoch("probe_vector", epoch, {
            "spectrum": (np.sin(np.arange(16) * (1 + t)) * np.exp(-t / 4)).astype(np.float32),
            "counts": (np.arange(8) * (epoch + 1) % 7).astype(np.int32),
        }, dims={"spectrum": ("freq",), "counts": ("bucket",)})
        store.write_epoch("weight_map", epoch, {
            "w": np.outer(np.arange(6), np.arange(8)).astype(np.float32) * (1 + t)},
            dims={"w": ("row", "col")})
        store.write_epoch("head_maps", epoch, {"attn": base * (1 + t)},
                          dims={"attn": ("head", "query", "key")}, chunks={"attn": (1, 5, 5)})
    return Path(run)
