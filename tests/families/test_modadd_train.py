"""Training: checkpoints on the schedule, variant.json, metrics, resume, and the family glue."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import torch

from epochstore.checkpoints import CheckpointManager
from epochstore.errors import (
    EpochExistsError,
    EpochstoreError,
    EpochstoreWarning,
    FamilyNotFoundError,
)
from epochstore.families import ModelFamily, family_names, get_family
from epochstore.families.modadd import ModAddConfig, ModAddFamily
from epochstore.families.modadd.data import make_data
from epochstore.families.modadd.model import build_model
from epochstore.families.modadd.train import (
    METRIC_NAMES,
    evaluate,
    make_optimizer,
    train_loop,
    train_run,
)
from epochstore.run import read_variant

CONFIG = ModAddConfig(
    p=11,
    d_model=16,
    n_heads=2,
    d_head=8,
    d_mlp=32,
    frac_train=0.5,
    lr=3e-3,
    num_epochs=60,
    checkpoint_epochs=(0, 5, 20, 40),
)


class InterruptError(Exception):
    pass


def test_training_saves_the_schedule_with_metrics_and_variant(tmp_path: Path) -> None:
    calls: list[tuple[int, Mapping[str, float]]] = []
    result = train_run(tmp_path, CONFIG, progress=lambda e, m: calls.append((e, dict(m))))
    assert result.saved_epochs == [0, 5, 20, 40, 59]
    assert result.start_epoch == 0
    manager = CheckpointManager(tmp_path / "checkpoints", read_only=True)
    assert manager.epochs() == [0, 5, 20, 40, 59]
    variant = read_variant(tmp_path)
    assert variant.family == "modadd"
    assert ModAddConfig.from_dict(variant.params) == CONFIG
    json.loads((tmp_path / "variant.json").read_text())

    assert [e for e, _ in calls] == list(range(60))
    checkpoint_calls = {e: m for e, m in calls if set(m) == set(METRIC_NAMES)}
    assert sorted(checkpoint_calls) == [0, 5, 20, 40, 59]

    # each checkpoint holds the parameters after `epoch` steps, and the metrics of exactly those
    for record in manager.records():
        checkpoint = manager.load(record.epoch)
        assert set(checkpoint["metrics"]) == set(METRIC_NAMES)
        assert checkpoint["metrics"] == pytest.approx(checkpoint_calls[record.epoch])
        assert ModAddConfig.from_dict(checkpoint["config"]) == CONFIG
        model = build_model(CONFIG)
        model.load_state_dict(checkpoint["model"])
        assert evaluate(model, make_data(CONFIG)) == pytest.approx(checkpoint["metrics"])
    initial = manager.load(0)["model"]
    for name, value in build_model(CONFIG).state_dict().items():
        assert torch.equal(initial[name], value), name
    assert calls[-1][1]["train_accuracy"] > calls[0][1]["train_accuracy"]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Same kernels for both runs, so a resumed run equals an uninterrupted one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
def test_interrupted_training_resumes_from_the_latest_checkpoint(tmp_path: Path) -> None:
    def stop_at_30(epoch: int, metrics: Mapping[str, float]) -> None:
        if epoch == 30:
            raise InterruptError

    with pytest.raises(InterruptError):
        train_run(tmp_path / "resumed", CONFIG, progress=stop_at_30)
    manager = CheckpointManager(tmp_path / "resumed" / "checkpoints", read_only=True)
    assert manager.epochs() == [0, 5, 20]

    result = train_run(tmp_path / "resumed", CONFIG)
    assert result.start_epoch == 20
    assert result.saved_epochs == [40, 59]
    train_run(tmp_path / "straight", CONFIG)
    straight = CheckpointManager(tmp_path / "straight" / "checkpoints", read_only=True)
    assert manager.epochs() == straight.epochs()
    for epoch in (40, 59):
        resumed_ckpt, straight_ckpt = manager.load(epoch), straight.load(epoch)
        for name, value in straight_ckpt["model"].items():
            torch.testing.assert_close(resumed_ckpt["model"][name], value, rtol=1e-5, atol=1e-6)
        assert resumed_ckpt["metrics"] == pytest.approx(straight_ckpt["metrics"], rel=1e-4)

    again = train_run(tmp_path / "resumed", CONFIG)  # finished: nothing to do
    assert again.saved_epochs == []
    assert again.start_epoch == 59


def test_existing_runs_are_protected(tmp_path: Path) -> None:
    small = CONFIG.replace(num_epochs=6, checkpoint_epochs=(0,))
    train_run(tmp_path, small)
    with pytest.raises(EpochExistsError, match="resume=True"):
        train_run(tmp_path, small, resume=False)
    with pytest.raises(EpochstoreError, match="different run"):
        train_run(tmp_path, small.replace(lr=1e-3))


def test_train_loop_yields_before_each_step() -> None:
    cfg = CONFIG.replace(num_epochs=3, checkpoint_epochs=None)
    model = build_model(cfg)
    optimizer = make_optimizer(model, cfg)
    data = make_data(cfg)
    snapshots = []
    for state in train_loop(model, optimizer, data, num_epochs=3):
        snapshots.append((state.epoch, model.W_in.detach().clone()))
        assert state.train_loss == pytest.approx(evaluate(model, data)["train_loss"])
    assert [e for e, _ in snapshots] == [0, 1, 2]
    assert torch.equal(snapshots[0][1], build_model(cfg).W_in)
    assert not torch.equal(snapshots[0][1], snapshots[1][1])
    assert torch.equal(snapshots[2][1], model.W_in)  # no step after the final epoch


def test_family_is_registered_and_implements_the_protocol(tmp_path: Path) -> None:
    assert "modadd" in family_names()
    family = get_family("modadd")
    assert isinstance(family, ModAddFamily)
    assert isinstance(family, ModelFamily)
    assert set(family.presets()) == {"demo", "paper"}
    for preset in family.presets().values():
        json.dumps(preset)
    with pytest.raises(FamilyNotFoundError, match="modadd"):
        get_family("nope")

    family.train(str(tmp_path), CONFIG.replace(num_epochs=3, checkpoint_epochs=()).to_dict())
    assert CheckpointManager(tmp_path / "checkpoints", read_only=True).epochs() == [2]
    with pytest.raises(TypeError, match="ModAddData"):
        family.run_with_cache(family.build_model(CONFIG.to_dict()), object())


@pytest.mark.usefixtures("one_thread")
def test_a_corrupt_latest_checkpoint_is_skipped_and_trained_again(tmp_path: Path) -> None:
    def stop_at_45(epoch: int, metrics: Mapping[str, float]) -> None:
        if epoch == 45:
            raise InterruptError

    with pytest.raises(InterruptError):
        train_run(tmp_path, CONFIG, progress=stop_at_45)
    manager = CheckpointManager(tmp_path / "checkpoints", read_only=True)
    latest = Path(manager.path(40))
    data = bytearray(latest.read_bytes())
    data[-10:] = bytes(10)
    latest.write_bytes(bytes(data))

    with pytest.warns(EpochstoreWarning, match="epoch 40"):
        result = train_run(tmp_path, CONFIG)
    assert result.start_epoch == 20
    assert result.saved_epochs == [40, 59]
    assert manager.verify().ok
    assert manager.load(40)["epoch"] == 40
