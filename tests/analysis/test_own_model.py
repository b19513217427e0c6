"""The generic "torch" family: a user's model, checkpoints and probe, analysed with no family class.

Every stored value is checked against what numpy/torch compute directly from the checkpoint
tensors and the recorded probe.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from epochstore import AnalysisPipeline, ArtifactLoader, CheckpointManager, record_model
from epochstore.analysis.captures import CaptureTooLargeError, capture_analyzers
from epochstore.analysis.parameters import ParameterStats, effective_rank
from epochstore.cli import main
from epochstore.errors import CorruptArtifactError, EpochstoreError
from epochstore.interface import check_analyzer
from epochstore.pipeline.hooks import ModuleNotFoundInModelError
from epochstore.plugins import get_family
from epochstore.testing.models import make_hook_shaped, make_mlp, make_tokens

MLP_KWARGS = {"n_in": 4, "n_hidden": 8, "n_out": 3, "seed": 0}
EPOCHS = (0, 2, 5)


def _train(run: Path, model: torch.nn.Module, batch: torch.Tensor, target: torch.Tensor) -> None:
    manager = CheckpointManager(checkpoint_dir=run / "checkpoints")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for epoch in range(max(EPOCHS) + 1):
        if epoch in EPOCHS:
            manager.save(model=model, optimizer=optimizer, epoch=epoch)
        loss = torch.nn.functional.mse_loss(model(batch).float(), target)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()


@pytest.fixture
def mlp_run(tmp_path: Path) -> tuple[Path, torch.Tensor]:
    run = tmp_path / "mine"
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(1))
    _train(run, make_mlp(**MLP_KWARGS), x, torch.randn(10, 3))
    record_model(run, factory="epochstore.testing.models:make_mlp", kwargs=MLP_KWARGS, probe=x)
    return run, x


def _weights(run: Path, epoch: int) -> dict[str, torch.Tensor]:
    manager = CheckpointManager(checkpoint_dir=run / "checkpoints", read_only=True)
    state: dict[str, torch.Tensor] = manager.load(epoch, include_optimizer=False)["model"]
    return state


def test_record_model_writes_a_torch_variant_and_the_probe(
    mlp_run: tuple[Path, torch.Tensor],
) -> None:
    run, x = mlp_run
    variant = json.loads((run / "variant.json").read_text())
    assert variant["family"] == "torch"
    assert variant["params"]["factory"] == "epochstore.testing.models:make_mlp"
    assert variant["params"]["kwargs"] == MLP_KWARGS
    assert variant["params"]["probe"]["kind"] == "tensor"
    family = get_family("torch").for_run(str(run))  # type: ignore[attr-defined]
    torch.testing.assert_close(family.make_probe(variant["params"]), x)
    # Recording the same again is a no-op; another model is refused (results would mix).
    record_model(run, factory="epochstore.testing.models:make_mlp", kwargs=MLP_KWARGS, probe=x)
    with pytest.raises(EpochstoreError, match="already records another model"):
        record_model(run, factory="epochstore.testing.models:make_mlp",
                     kwargs={**MLP_KWARGS, "n_hidden": 9}, probe=x)


def test_parameter_stats_and_captures_match_the_checkpoint_tensors(
    mlp_run: tuple[Path, torch.Tensor],
) -> None:
    run, x = mlp_run
    # Two worker processes: the family, its analyzers and the captures travel pickled, and
    # the recorded factory is imported in each worker.
    assert main(["analyze", str(run), "--capture", "0,1", "--workers", "2", "--quiet"]) == 0
    loader = ArtifactLoader(run)
    assert loader.get_available_analyzers() == ["capture_0", "capture_1", "parameter_stats"]
    stats = loader.load_epochs("parameter_stats")
    params = loader.manifest("parameter_stats").params
    assert params["parameters"] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert params["matrices"] == ["0.weight", "2.weight"]
    first = _weights(run, 0)
    for epoch in EPOCHS:
        weights = _weights(run, epoch)
        at = stats.sel(epoch=epoch)
        for i, name in enumerate(params["parameters"]):
            w = weights[name].double().numpy()
            assert float(at["norm"][i]) == pytest.approx(np.linalg.norm(w), rel=1e-12)
            assert float(at["rms"][i]) == pytest.approx(np.sqrt((w**2).mean()), rel=1e-12)
            assert float(at["distance_from_first"][i]) == pytest.approx(
                np.linalg.norm(w - first[name].double().numpy()), abs=1e-12
            )
            if w.ndim == 2:
                s = np.linalg.svd(w, compute_uv=False)
                assert float(at["effective_rank"][i]) == pytest.approx(effective_rank(s))
                row = params["matrices"].index(name)
                np.testing.assert_allclose(at["singular_values"][row, : s.size], s, rtol=1e-10)
            else:
                assert np.isnan(float(at["effective_rank"][i]))
        # Captured activations: the first Linear and the ReLU after it, on the recorded probe.
        pre = x.double() @ weights["0.weight"].double().T + weights["0.bias"].double()
        captured = loader.load_epoch("capture_0", epoch)["activations"]
        assert captured.dims == ("sample", "dim_1")
        assert captured.shape == (10, 8)
        np.testing.assert_allclose(captured.values, pre.numpy(), rtol=1e-5, atol=1e-6)
        relu = loader.load_epoch("capture_1", epoch)["activations"].values
        np.testing.assert_allclose(relu, np.maximum(pre.numpy(), 0), rtol=1e-5, atol=1e-6)
    assert float(stats["distance_from_first"].sel(epoch=0).max()) == 0.0
    assert float(stats["distance_from_first"].sel(epoch=5).min()) > 0.0
    assert loader.manifest("capture_0").params == {"module": "0"}


def test_hook_shaped_module_names_are_captured_with_their_real_dims(tmp_path: Path) -> None:
    """The mechanism TransformerLens models use: hook points are modules with dotted names."""
    run = tmp_path / "tl_shaped"
    kwargs = {"d_vocab": 11, "d_model": 8, "d_mlp": 16, "n_layers": 2, "seed": 0}
    model = make_hook_shaped(**kwargs)
    tokens = make_tokens(n=5, n_ctx=3, d_vocab=11, seed=0)
    manager = CheckpointManager(checkpoint_dir=run / "checkpoints")
    manager.save(model=model, epoch=0)
    with torch.no_grad():
        model.blocks[1].mlp.W_in.mul_(2.0)
    manager.save(model=model, epoch=1)
    # The probe as a factory this time: called again where the run is analysed.
    record_model(run, factory=make_hook_shaped, kwargs=kwargs, probe=make_tokens,
                 probe_kwargs={"n": 5, "n_ctx": 3, "d_vocab": 11, "seed": 0})
    assert json.loads((run / "variant.json").read_text())["params"]["probe"] == {
        "factory": "epochstore.testing.models:make_tokens",
        "kwargs": {"n": 5, "n_ctx": 3, "d_vocab": 11, "seed": 0},
    }
    assert not (run / "probe.safetensors").exists()
    pipeline = AnalysisPipeline(run)
    captures = capture_analyzers(pipeline.family, pipeline.config,
                                 ["blocks.1.mlp.hook_post", "blocks.0.hook_resid_post"])
    AnalysisPipeline(run, analyzers=[*captures]).run(progress=False)
    loader = ArtifactLoader(run)
    post = loader.load_epoch("capture_blocks_1_mlp_hook_post", 1)["activations"]
    assert post.shape == (5, 3, 16)
    assert post.dims == ("sample", "dim_1", "dim_2")
    # Recompute blocks.1.mlp.hook_post from the checkpoint tensors by hand.
    w = _weights(run, 1)
    x = w["embed.weight"][tokens]
    for i in range(2):
        hidden = torch.relu(x @ w[f"blocks.{i}.mlp.W_in"])
        if i == 1:
            np.testing.assert_allclose(post.values, hidden.numpy(), rtol=1e-5, atol=1e-6)
        x = x + hidden @ w[f"blocks.{i}.mlp.W_out"]
        if i == 0:
            resid = loader.load_epoch("capture_blocks_0_hook_resid_post", 1)["activations"]
            np.testing.assert_allclose(resid.values, x.numpy(), rtol=1e-5, atol=1e-6)


def test_a_huge_capture_is_refused_before_anything_is_computed(
    mlp_run: tuple[Path, torch.Tensor], capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = mlp_run
    pipeline = AnalysisPipeline(run)
    with pytest.raises(CaptureTooLargeError, match="capture-max-mb") as info:
        capture_analyzers(pipeline.family, pipeline.config, ["0"], max_bytes=100)
    assert "module '0'" in str(info.value)
    assert "(10, 8)" in str(info.value)
    assert main(["analyze", str(run), "--capture", "0", "--capture-max-mb", "0.0001"]) == 2
    assert "smaller probe" in capsys.readouterr().err
    assert not (run / "artifacts").exists() or ArtifactLoader(run).get_available_analyzers() == []


def test_an_unknown_module_name_lists_the_model_modules(mlp_run: tuple[Path, torch.Tensor]) -> None:
    run, _ = mlp_run
    pipeline = AnalysisPipeline(run)
    with pytest.raises(ModuleNotFoundInModelError, match=r"no module 'hiden'.*0, 1, 2"):
        capture_analyzers(pipeline.family, pipeline.config, ["hiden"])


def test_a_changed_probe_file_is_detected(mlp_run: tuple[Path, torch.Tensor]) -> None:
    run, _ = mlp_run
    probe = run / "probe.safetensors"
    probe.write_bytes(probe.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(CorruptArtifactError, match="checksum"):
        AnalysisPipeline(run).run(progress=False)


def test_a_factory_from_main_or_a_local_function_is_refused(tmp_path: Path) -> None:
    def local_factory() -> torch.nn.Module:
        return torch.nn.Linear(2, 2)

    with pytest.raises(EpochstoreError, match="cannot import"):
        record_model(tmp_path / "r", factory=local_factory, probe=torch.zeros(1, 2))
    with pytest.raises(EpochstoreError, match="cannot import module 'nowhere_at_all'"):
        record_model(tmp_path / "r", factory="nowhere_at_all:f", probe=torch.zeros(1, 2))
    with pytest.raises(EpochstoreError, match=r"package\.module:function"):
        record_model(tmp_path / "r", factory="no_colon", probe=torch.zeros(1, 2))


def test_the_torch_family_trains_nothing_and_says_what_to_do() -> None:
    with pytest.raises(EpochstoreError, match="record_model"):
        get_family("torch").train("anywhere", {})


def test_every_analyzer_needs_a_non_empty_version() -> None:
    class NoVersion(ParameterStats):
        version = ""

    with pytest.raises(ValueError, match=r"version ''.*non-empty string"):
        check_analyzer(NoVersion())
    check_analyzer(ParameterStats())
