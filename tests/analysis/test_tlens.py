"""A TransformerLens HookedTransformer analysed as "your own model", hook points captured.

Runs where the ``tlens`` extra is installed (``.ci/run`` installs it and sets
``EPOCHSTORE_REQUIRE_TLENS=1``, so there a missing package fails instead of skipping). The
model is built from a config: no download, no weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from epochstore import AnalysisPipeline, ArtifactLoader, CheckpointManager, record_model
from epochstore.analysis.captures import capture_analyzers
from epochstore.testing.models import make_tiny_hooked_transformer

if os.environ.get("EPOCHSTORE_REQUIRE_TLENS") != "1":
    pytest.importorskip(
        "transformer_lens",
        reason="transformer-lens is not installed: pip install 'epochstore[tlens]' (keeping "
        "torch: see the extra's comment in pyproject.toml)",
    )

HOOKS = ["blocks.0.mlp.hook_post", "blocks.0.attn.hook_pattern", "blocks.0.hook_resid_post"]
KWARGS = {"d_vocab": 11, "d_model": 16, "d_mlp": 32, "n_layers": 1, "seed": 0}


def test_hooked_transformer_hook_points_are_captured_as_tlens_caches_them(
    tmp_path: Path,
) -> None:
    run = tmp_path / "tl"
    model = make_tiny_hooked_transformer(**KWARGS)
    tokens = torch.randint(0, 11, (6, 5), generator=torch.Generator().manual_seed(0))
    manager = CheckpointManager(checkpoint_dir=run / "checkpoints")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(3):
        manager.save(model=model, optimizer=optimizer, epoch=epoch)
        loss = model(tokens, return_type="loss")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    record_model(run, factory=make_tiny_hooked_transformer, kwargs=KWARGS, probe=tokens)
    pipeline = AnalysisPipeline(run)
    captures = capture_analyzers(pipeline.family, pipeline.config, HOOKS)
    AnalysisPipeline(
        run, analyzers=[*pipeline.analyzers.values(), *captures]
    ).run(progress=False)

    loader = ArtifactLoader(run)
    reference = make_tiny_hooked_transformer(**KWARGS)
    reference.load_state_dict(manager.load(2, include_optimizer=False)["model"])
    reference.eval()
    with torch.no_grad():
        _, cache = reference.run_with_cache(tokens)
    for hook in HOOKS:
        stored = loader.load_epoch(f"capture_{hook.replace('.', '_')}", 2)["activations"]
        assert stored.shape == tuple(cache[hook].shape)
        np.testing.assert_allclose(stored.values, cache[hook].numpy(), rtol=1e-5, atol=1e-6)
    stats = loader.load_epoch("parameter_stats", 2)
    names = loader.manifest("parameter_stats").params["parameters"]
    w_in = dict(reference.named_parameters())["blocks.0.mlp.W_in"]
    assert float(stats["norm"][names.index("blocks.0.mlp.W_in")]) == pytest.approx(
        float(w_in.detach().double().norm()), rel=1e-10
    )
