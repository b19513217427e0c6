"""The modadd_mlp family: registered by entry point, independent of modadd, and its analyses
checked against values computed directly from the checkpoint weights (numpy FFTs, not the
Fourier basis the analyzers use)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from epochstore import AnalysisPipeline, ArtifactLoader, CheckpointManager
from epochstore.families.mlp import MLPConfig, ModAddMLPFamily, make_data, train_run
from epochstore.plugins import family_names, get_family

#: Small enough to train and analyse in seconds; it need not grok for the checks below.
SMALL = MLPConfig(p=11, d_embed=8, d_hidden=16, num_epochs=41, checkpoint_every=20, lr=1e-2)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("mlp") / "run"
    assert train_run(run, SMALL) == [0, 20, 40]  # one torch thread by default
    assert AnalysisPipeline(run).run(progress=False).ok
    return run


def _weights(run: Path, epoch: int) -> dict[str, np.ndarray]:
    manager = CheckpointManager(checkpoint_dir=run / "checkpoints", read_only=True)
    state = manager.load(epoch, include_optimizer=False)["model"]
    return {name: tensor.double().numpy() for name, tensor in state.items()}


def test_registered_by_entry_point_and_imports_no_other_family() -> None:
    assert "modadd_mlp" in family_names()
    assert isinstance(get_family("modadd_mlp"), ModAddMLPFamily)
    code = (
        "import sys, json\n"
        "from epochstore.plugins import get_family\n"
        "get_family('modadd_mlp').analyzers()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('epochstore.families.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert not [m for m in loaded if m.startswith("epochstore.families.modadd.")]


def test_analyzers_written_for_every_checkpoint(run: Path) -> None:
    loader = ArtifactLoader(run)
    assert loader.get_available_analyzers() == [
        "embedding_fourier", "neuron_frequencies", "parameter_stats", "training_metrics"
    ]
    for name in loader.get_available_analyzers():
        assert loader.get_epochs(name) == [0, 20, 40]


@pytest.mark.parametrize("epoch", [0, 40])
def test_embedding_fourier_norms_match_a_direct_fft(run: Path, epoch: int) -> None:
    p = SMALL.p
    embedding = _weights(run, epoch)["embed.weight"]  # (p, d_embed)
    spectrum = np.fft.fft(embedding, axis=0)  # F_k = sum_x E[x] exp(-2 pi i k x / p)
    # A sin/cos pair of the orthonormal real basis holds 2/p of |F_k|^2; the constant row 1/p.
    expected = np.sqrt(2 / p * (np.abs(spectrum[1 : p // 2 + 1]) ** 2).sum(axis=1))
    stored = ArtifactLoader(run).load_epoch("embedding_fourier", epoch)
    np.testing.assert_allclose(stored["frequency_norms"].values, expected, rtol=1e-5)
    assert float(stored["coefficients"][0]) == pytest.approx(
        np.linalg.norm(embedding.sum(axis=0)) / np.sqrt(p), rel=1e-5
    )


@pytest.mark.parametrize("epoch", [0, 40])
def test_neuron_frequency_fractions_match_a_direct_2d_fft(run: Path, epoch: int) -> None:
    p = SMALL.p
    w = _weights(run, epoch)
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    pairs = np.concatenate([w["embed.weight"][a.ravel()], w["embed.weight"][b.ravel()]], axis=1)
    hidden = np.maximum(pairs @ w["hidden.weight"].T + w["hidden.bias"], 0)  # (p*p, d_hidden)
    grid = hidden.T.reshape(-1, p, p)
    centred = grid - grid.mean(axis=(1, 2), keepdims=True)
    energy = np.abs(np.fft.fft2(centred)) ** 2  # frequency k lives at indices {0, k, p - k}
    total = energy.sum(axis=(1, 2))
    expected = np.stack([
        energy[:, [0, k, p - k]][:, :, [0, k, p - k]].sum(axis=(1, 2)) for k in range(1, p // 2 + 1)
    ])
    expected = np.where(total > 1e-20, expected / np.where(total > 1e-20, total, 1), 0)
    stored = ArtifactLoader(run).load_epoch("neuron_frequencies", epoch)
    np.testing.assert_allclose(stored["norm_matrix"].values, expected, atol=1e-5)
    live = expected.max(axis=0) > 0
    np.testing.assert_array_equal(
        stored["dominant_frequency"].values[live], expected.argmax(axis=0)[live] + 1
    )


def test_training_metrics_match_the_checkpoint_model(run: Path) -> None:
    family = ModAddMLPFamily()
    model = family.build_model(SMALL.to_dict())
    manager = CheckpointManager(checkpoint_dir=run / "checkpoints", read_only=True)
    model.load_state_dict(manager.load(40, include_optimizer=False)["model"])
    data = make_data(SMALL)
    with torch.no_grad():
        logits = model(data.inputs).double()
    stored = ArtifactLoader(run).load_epoch("training_metrics", 40)
    test = data.test_indices
    accuracy = float((logits[test].argmax(1) == data.labels[test]).double().mean())
    assert float(stored["test_accuracy"]) == pytest.approx(accuracy)
    loss = float(torch.nn.functional.cross_entropy(logits[test], data.labels[test]))
    assert float(stored["test_loss"]) == pytest.approx(loss, rel=1e-5)
    # The metrics saved by training agree with the recomputed ones.
    saved = manager.load(40, include_optimizer=False)["metrics"]
    assert saved["test_accuracy"] == pytest.approx(accuracy)


def test_generic_captures_work_on_the_family_modules(run: Path) -> None:
    from epochstore.cli import main

    assert main(["analyze", str(run), "--capture", "act", "--quiet"]) == 0
    stored = ArtifactLoader(run).load_epoch("capture_act", 40)["activations"]
    assert stored.shape == (SMALL.p**2, SMALL.d_hidden)


@pytest.mark.soak
def test_the_demo_preset_groks(tmp_path: Path) -> None:
    family = get_family("modadd_mlp")
    config = dict(family.presets()["demo"])
    family.train(str(tmp_path / "demo"), config)
    records = CheckpointManager(tmp_path / "demo" / "checkpoints", read_only=True).records()

    def first(metric: str) -> int:
        return next(r.epoch for r in records if r.metrics[metric] >= 0.99)

    assert first("train_accuracy") < first("test_accuracy")  # memorised first, then grokked
    assert records[-1].metrics["test_accuracy"] >= 0.99
