"""``examples/own_model.py`` end to end: its plain loop, record_model and ``epochstore analyze``;
the stored parameter norms and captured activations equal values computed directly from the
checkpoint tensors and the recorded probe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from epochstore import ArtifactLoader, CheckpointManager

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_model.py"


def test_own_model_example_analyses_match_the_checkpoints(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "own_model"
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), "--run", str(run), "--epochs", "20", "--every", "10"],
        check=False, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert f"epochstore serve {run.parent}" in out.stdout
    loader = ArtifactLoader(run)
    assert loader.get_available_analyzers() == ["capture_act", "capture_hidden", "parameter_stats"]
    probe = load_file(run / "probe.safetensors")["input"].double()
    assert probe.shape == (64, 8)
    manager = CheckpointManager(checkpoint_dir=run / "checkpoints", read_only=True)
    names = loader.manifest("parameter_stats").params["parameters"]
    assert manager.epochs() == [0, 10, 20]
    for epoch in manager.epochs():
        weights = {k: v.double() for k, v in manager.load(epoch)["model"].items()}
        norms = loader.load_epoch("parameter_stats", epoch)["norm"].values
        np.testing.assert_allclose(
            norms, [float(weights[name].norm()) for name in names], rtol=1e-12
        )
        pre = probe @ weights["hidden.weight"].T + weights["hidden.bias"]
        hidden = loader.load_epoch("capture_hidden", epoch)["activations"]
        assert hidden.dims == ("sample", "dim_1")
        np.testing.assert_allclose(hidden.values, pre.numpy(), rtol=1e-5, atol=1e-6)
        act = loader.load_epoch("capture_act", epoch)["activations"].values
        np.testing.assert_allclose(act, torch.relu(pre).numpy(), rtol=1e-5, atol=1e-6)
