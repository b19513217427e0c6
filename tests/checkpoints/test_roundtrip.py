"""Round trips: model, AdamW, scheduler and RNG state come back exactly; resuming is exact."""

from __future__ import annotations

import datetime as dt
import math
import random
import subprocess
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import safetensors.torch
import torch
from safetensors import safe_open

from epochstore.checkpoints import CheckpointManager, restore_rng_state
from epochstore.errors import CorruptCheckpointError

if TYPE_CHECKING:
    from collections.abc import Callable


def _batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1000 + step)
    return torch.randn(16, 8, generator=generator), torch.randint(0, 3, (16,), generator=generator)


def _train(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    steps: range,
) -> list[float]:
    losses = []
    model.train()
    for step in steps:
        inputs, targets = _batch(step)
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses


def _setup(model: torch.nn.Module) -> tuple[torch.optim.Optimizer, Any]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-2, weight_decay=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
    return optimizer, scheduler


def test_resume_continues_training_identically(
    ckpt_dir: str, make_model: Callable[[int], torch.nn.Module]
) -> None:
    model = make_model(0)
    optimizer, scheduler = _setup(model)
    _train(model, optimizer, scheduler, range(5))
    manager = CheckpointManager(ckpt_dir)
    manager.save(
        model=model,
        optimizer=optimizer,
        epoch=5,
        metrics={"loss": 0.5},
        config={"lr": 3e-2},
        scheduler=scheduler,
        rng_state=True,
    )
    uninterrupted = _train(model, optimizer, scheduler, range(5, 12))

    torch.manual_seed(12345)  # a different RNG state, to be replaced by the saved one
    resumed_model = make_model(99)
    resumed_optimizer, resumed_scheduler = _setup(resumed_model)
    checkpoint = CheckpointManager(ckpt_dir).load_into(
        resumed_model, epoch=5, optimizer=resumed_optimizer, scheduler=resumed_scheduler
    )
    assert checkpoint["rng_state"] is not None
    restore_rng_state(checkpoint["rng_state"])
    resumed = _train(resumed_model, resumed_optimizer, resumed_scheduler, range(5, 12))

    assert resumed == uninterrupted
    for a, b in zip(model.state_dict().values(), resumed_model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_issue_example_api(ckpt_dir: str, make_model: Callable[[int], torch.nn.Module]) -> None:
    model = make_model(0)
    optimizer, scheduler = _setup(model)
    _train(model, optimizer, scheduler, range(2))
    config_dict = {"d_model": 128, "betas": (0.9, 0.98), "name": "modadd", "seed": None}
    manager = CheckpointManager(
        checkpoint_dir=ckpt_dir,
        max_checkpoints=5,
        keep_best=True,
        metric_for_best="loss",
        mode="min",
    )
    manager.save(
        model=model,
        optimizer=optimizer,
        epoch=100,
        metrics={"loss": 0.5, "accuracy": 0.95},
        config=config_dict,
    )
    manager.save(model=model, optimizer=optimizer, epoch=50, metrics={"loss": 0.7})
    checkpoint = manager.load_latest()
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    assert set(checkpoint) >= {"model", "optimizer", "epoch", "metrics", "config", "metadata"}
    assert checkpoint["epoch"] == 100
    assert checkpoint["metrics"] == {"loss": 0.5, "accuracy": 0.95}
    assert checkpoint["config"] == config_dict  # tuples and None come back as they were
    assert manager.load(epoch=50)["epoch"] == 50
    assert manager.load_best(metric="loss", mode="min")["epoch"] == 100
    assert manager.load_best(metric="loss", mode="max")["epoch"] == 50
    assert manager.epochs() == [50, 100]


def test_optimizer_state_is_flattened_into_tensor_keys(
    ckpt_dir: str, make_model: Callable[[int], torch.nn.Module]
) -> None:
    model = make_model(0)
    optimizer, scheduler = _setup(model)
    _train(model, optimizer, scheduler, range(2))
    manager = CheckpointManager(ckpt_dir)
    manager.save(model=model, optimizer=optimizer, epoch=1)
    with safe_open(manager.path(1), framework="pt") as handle:
        keys = set(handle.keys())
        metadata = handle.metadata()
    assert {
        "optimizer.state.0.exp_avg",
        "optimizer.state.0.exp_avg_sq",
        "optimizer.state.0.step",
        "model.0.weight",
    } <= keys
    assert '"param_groups"' in metadata["epochstore.optimizer"]
    loaded = manager.load(epoch=1)["optimizer"]
    assert loaded is not None
    expected = optimizer.state_dict()
    assert loaded["param_groups"] == expected["param_groups"]
    assert loaded["state"].keys() == expected["state"].keys()
    for index, state in expected["state"].items():
        for name, value in state.items():
            assert torch.equal(loaded["state"][index][name], value)


def test_files_are_plain_safetensors(
    ckpt_dir: str, make_model: Callable[[int], torch.nn.Module]
) -> None:
    model = make_model(0)
    manager = CheckpointManager(ckpt_dir)
    manager.save(model=model, epoch=3)
    reference = safetensors.torch.load_file(manager.path(3))
    ours = manager.load(epoch=3)["model"]
    assert {f"model.{k}" for k in ours} == set(reference)
    for key, tensor in ours.items():
        assert torch.equal(reference[f"model.{key}"], tensor)


def test_tied_weights_round_trip(ckpt_dir: str, make_tied: Callable[[int], Any]) -> None:
    model = make_tied(0)
    state = model.state_dict()
    assert state["embed.weight"].data_ptr() == state["unembed.weight"].data_ptr()
    manager = CheckpointManager(ckpt_dir)
    manager.save(model=model, epoch=0)
    with safe_open(manager.path(0), framework="pt") as handle:
        stored = set(handle.keys())
    assert "model.embed.weight" in stored
    assert "model.unembed.weight" not in stored  # stored once

    loaded = manager.load(epoch=0)["model"]
    assert list(loaded) == list(state)  # every key, in order
    assert loaded["unembed.weight"] is loaded["embed.weight"]
    fresh = make_tied(7)
    fresh.load_state_dict(loaded)
    assert fresh.unembed.weight is fresh.embed.weight
    assert torch.equal(fresh.embed.weight, model.embed.weight)


def test_overlapping_views_are_stored_as_copies(ckpt_dir: str) -> None:
    base = torch.arange(12.0)
    state = {"whole": base, "first": base[:6], "strided": base[::2], "same": base}
    manager = CheckpointManager(ckpt_dir)
    manager.save(model=state, epoch=0)
    loaded = manager.load(epoch=0)["model"]
    assert loaded["same"] is loaded["whole"]
    for key, tensor in state.items():
        assert torch.equal(loaded[key], tensor)


@pytest.mark.parametrize(
    "tensor",
    [
        torch.tensor(3.5),
        torch.zeros(0, 4),
        torch.arange(6, dtype=torch.int64).reshape(2, 3).T,
        torch.tensor([True, False, True]),
        torch.tensor([1.5, -2.25], dtype=torch.bfloat16),
        torch.tensor([1.5, -2.25], dtype=torch.float16),
        torch.tensor([255, 0, 7], dtype=torch.uint8),
        torch.tensor([1.0, 2.0], dtype=torch.float64),
    ],
    ids=["scalar", "empty", "transposed", "bool", "bf16", "f16", "u8", "f64"],
)
def test_dtypes_and_shapes_round_trip(ckpt_dir: str, tensor: torch.Tensor) -> None:
    manager = CheckpointManager(ckpt_dir)
    manager.save(model={"x": tensor, "pad": torch.ones(3, dtype=torch.int8)}, epoch=0)
    loaded = manager.load(epoch=0)["model"]["x"]
    assert loaded.dtype == tensor.dtype
    assert loaded.shape == tensor.shape
    assert torch.equal(loaded, tensor)


def test_model_only_load_reads_no_optimizer_bytes(
    ckpt_dir: str,
    make_model: Callable[[int], torch.nn.Module],
    ranges: Callable[[str], dict[str, tuple[int, int]]],
    patch: Callable[[str, int, bytes], None],
) -> None:
    model = make_model(0)
    optimizer, scheduler = _setup(model)
    _train(model, optimizer, scheduler, range(2))
    manager = CheckpointManager(ckpt_dir)
    manager.save(model=model, optimizer=optimizer, epoch=4, scheduler=scheduler, rng_state=True)
    path = manager.path(4)
    # Overwrite every non-model byte: the model-only path must neither read nor need them.
    for name, (start, end) in ranges(path).items():
        if not name.startswith("model."):
            patch(path, start, b"\xff" * (end - start))

    state = manager.load_model_state(4)
    for key, tensor in model.state_dict().items():
        assert torch.equal(state[key], tensor)
    light = manager.load(epoch=4, include_optimizer=False)
    assert light["optimizer"] is None
    assert light["rng_state"] is None
    assert light["metrics"] == {}
    assert light["epoch"] == 4
    fresh = make_model(5)
    manager.load_into(fresh, epoch=4)
    assert torch.equal(fresh[0].weight, model[0].weight)
    with pytest.raises(CorruptCheckpointError):
        manager.load(epoch=4)  # the full load checks the whole file


def test_map_location(ckpt_dir: str, make_model: Callable[[int], torch.nn.Module]) -> None:
    model = make_model(0)
    optimizer, scheduler = _setup(model)
    _train(model, optimizer, scheduler, range(1))
    manager = CheckpointManager(ckpt_dir)
    manager.save(model=model, optimizer=optimizer, epoch=0, rng_state=True)
    on_meta = manager.load(epoch=0, map_location="meta")
    assert all(t.device.type == "meta" for t in on_meta["model"].values())
    assert on_meta["optimizer"] is not None
    assert on_meta["optimizer"]["state"][0]["exp_avg"].device.type == "meta"
    assert on_meta["rng_state"] is not None
    assert on_meta["rng_state"]["torch"].device.type == "cpu"  # RNG state stays on the CPU
    on_cpu = manager.load(epoch=0, map_location=torch.device("cpu"))
    assert all(t.device.type == "cpu" for t in on_cpu["model"].values())


def test_metadata_records_provenance(ckpt_dir: str) -> None:
    manager = CheckpointManager(ckpt_dir)
    record = manager.save(model={"w": torch.ones(2)}, epoch=0, metrics={"loss": math.inf})
    metadata = manager.load(epoch=0)["metadata"]
    assert metadata == record.metadata
    stamp = dt.datetime.fromisoformat(metadata["timestamp"])
    assert stamp.utcoffset() == dt.timedelta(0)
    assert metadata["torch_version"] == torch.__version__
    assert metadata["python_version"].count(".") == 2
    assert metadata["epochstore_version"]
    assert metadata["git_hash"] is None  # not in a git checkout
    assert metadata["git_dirty"] is None
    assert manager.load(epoch=0)["metrics"] == {"loss": math.inf}


def test_git_hash_is_read_from_the_checkout(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], cwd=repo, check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()
    monkeypatch.chdir(repo / "src")
    manager = CheckpointManager(str(tmp_path / "ckpts"))
    record = manager.save(model={"w": torch.ones(1)}, epoch=0)
    assert record.metadata["git_hash"] == commit
    assert record.metadata["git_dirty"] is False


def _draw() -> tuple[torch.Tensor, np.ndarray, float]:
    return torch.rand(3), np.random.rand(3), random.random()  # noqa: NPY002


def test_rng_state_round_trip(ckpt_dir: str) -> None:
    manager = CheckpointManager(ckpt_dir)
    torch.manual_seed(3)
    manager.save(model={"w": torch.ones(1)}, epoch=0, rng_state=True)
    expected = _draw()
    torch.manual_seed(4)
    state = manager.load(epoch=0)["rng_state"]
    assert state is not None
    restore_rng_state(state)
    again = _draw()
    assert torch.equal(expected[0], again[0])
    assert np.array_equal(expected[1], again[1])
    assert expected[2] == again[2]
