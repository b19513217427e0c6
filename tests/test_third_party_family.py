"""A family from another package plugs in through its entry point alone (no epochstore edit).

The test writes a small distribution into a temporary site directory (the package and its
``*.dist-info`` with an ``epochstore.families`` entry point), puts it on ``PYTHONPATH`` of the
``epochstore`` commands it runs, and trains, analyses (in two worker processes, which import
the plug-in themselves), lists and draws a run of it. Nothing in this process registers it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from epochstore import ArtifactLoader

PACKAGE = '''
"""A third-party family: one linear layer fitted to fixed random data."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from epochstore.checkpoints import CheckpointManager
from epochstore.interface import EpochContext, FieldSpec, RunContext
from epochstore.location import join
from epochstore.run import Variant, write_variant


class WeightSpectrum:
    """The singular values of the layer's weight (a field epochstore has never seen)."""

    name = "weight_spectrum"
    version = "1"
    fields = {"singular_values": FieldSpec(("rank",)), "top": FieldSpec(())}

    def prepare(self, run: RunContext) -> Mapping[str, Any]:
        return {}

    def compute(self, model: Any, cache: Any, probe: Any, context: EpochContext) -> dict:
        values = torch.linalg.svdvals(model.weight.detach()).numpy().astype("float32")
        return {"singular_values": values, "top": np.asarray(values[0], dtype="float32")}


class LineFamily:
    name = "linefam"

    def presets(self) -> Mapping[str, Mapping[str, Any]]:
        return {"demo": {"n": 6, "epochs": 4, "seed": 0}}

    def build_model(self, config: Mapping[str, Any]) -> torch.nn.Module:
        torch.manual_seed(int(config["seed"]))
        return torch.nn.Linear(int(config["n"]), 3)

    def make_probe(self, config: Mapping[str, Any], device: str = "cpu") -> Any:
        return torch.ones(2, int(config["n"]), device=device)

    def run_with_cache(self, model: torch.nn.Module, probe: Any) -> Mapping[str, Any]:
        with torch.no_grad():
            return {"out": model(probe)}

    def analyzers(self) -> Sequence[Any]:
        return [WeightSpectrum()]

    def train(self, run_dir: str, config: Mapping[str, Any], *,
              progress: Callable[[int, Mapping[str, float]], None] | None = None) -> None:
        config = {**self.presets()["demo"], **config}
        write_variant(run_dir, Variant(family=self.name, params=config))
        manager = CheckpointManager(checkpoint_dir=join(run_dir, "checkpoints"))
        model = self.build_model(config)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        generator = torch.Generator().manual_seed(1)
        x = torch.randn(16, int(config["n"]), generator=generator)
        y = torch.randn(16, 3, generator=generator)
        for epoch in range(int(config["epochs"])):
            loss = torch.nn.functional.mse_loss(model(x), y)
            manager.save(model=model, optimizer=optimizer, epoch=epoch,
                         metrics={"train_loss": float(loss)}, config=config)
            if progress is not None:
                progress(epoch, {"train_loss": float(loss)})
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
'''


def _install(site: Path) -> Path:
    (site / "linefam").mkdir(parents=True)
    (site / "linefam" / "__init__.py").write_text(textwrap.dedent(PACKAGE))
    info = site / "linefam-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: linefam\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[epochstore.families]\nlinefam = linefam:LineFamily\n")
    return site


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    site = _install(tmp_path / "site")
    path = os.pathsep.join(p for p in [str(site), os.environ.get("PYTHONPATH", "")] if p)
    return {**os.environ, "PYTHONPATH": path}


def _epochstore(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "epochstore.cli", *args], env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_a_family_installed_by_entry_point_is_trained_analysed_listed_and_drawn(
    tmp_path: Path, env: dict[str, str]
) -> None:
    run = tmp_path / "runs" / "linefam" / "one"
    _epochstore(env, "train", str(run), "--family", "linefam", "--quiet")
    _epochstore(env, "analyze", str(run), "--workers", "2", "--quiet")

    loader = ArtifactLoader(run)
    assert loader.get_available_analyzers() == ["weight_spectrum"]
    assert loader.get_epochs("weight_spectrum") == [0, 1, 2, 3]
    from safetensors.numpy import load_file

    weights = load_file(str(run / "checkpoints" / "checkpoint_epoch_00002.safetensors"))
    expected = np.linalg.svd(weights["model.weight"], compute_uv=False)
    stored = loader.load_epoch("weight_spectrum", 2)["singular_values"].values
    np.testing.assert_allclose(stored, expected, rtol=1e-5)

    rows = json.loads(_epochstore(env, "ls", str(tmp_path / "runs"), "--json"))
    assert [(r["family"], r["installed"], r["analyzers"]) for r in rows] == [
        ("linefam", True, ["weight_spectrum"])
    ]

    page = tmp_path / "report.html"
    _epochstore(env, "report", str(run), "-o", str(page))
    html = page.read_text()
    assert "weight_spectrum / singular_values" in html
    assert "weight_spectrum / top" in html
