"""Retention: the latest and the best survive every order of metrics; nothing foreign is deleted."""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from epochstore.checkpoints import (
    AnyOf,
    CheckpointManager,
    CheckpointRecord,
    Digest,
    KeepAll,
    KeepBest,
    KeepEpochs,
    KeepEvery,
    KeepLast,
)
from epochstore.checkpoints.manifest import Manifest
from epochstore.checkpoints.retention import best_record, select_for_deletion
from epochstore.errors import (
    CheckpointNotFoundError,
    EpochExistsError,
    PromotionError,
)

_DIGEST = Digest(size=0, sha256="0" * 64, header_sha256="0" * 64, sections={})

metric_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1.0]),
)


def _record(epoch: int, loss: float) -> CheckpointRecord:
    return CheckpointRecord(epoch=epoch, file=f"f{epoch}", digest=_DIGEST, metrics={"loss": loss})


def _expected_best(values: list[float], mode: str) -> int | None:
    finite = [(v if mode == "min" else -v, e) for e, v in enumerate(values) if math.isfinite(v)]
    return min(finite)[1] if finite else None


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(metric_values, min_size=1, max_size=25),
    keep=st.integers(1, 4),
    every=st.one_of(st.none(), st.integers(1, 6)),
    mode=st.sampled_from(["min", "max"]),
)
def test_policy_keeps_latest_and_best_after_every_commit(
    values: list[float], keep: int, every: int | None, mode: str
) -> None:
    policies = [KeepLast(keep), KeepBest("loss", mode)]  # type: ignore[arg-type]
    if every is not None:
        policies.append(KeepEvery(every))
    policy = AnyOf(tuple(policies))
    kept: list[CheckpointRecord] = []
    for epoch, value in enumerate(values):
        kept.append(_record(epoch, value))
        doomed = {r.epoch for r in select_for_deletion(kept, policy)}
        kept = [r for r in kept if r.epoch not in doomed]
        epochs = [r.epoch for r in kept]
        best = _expected_best(values[: epoch + 1], mode)
        assert epochs[-keep:] == list(range(max(0, epoch - keep + 1), epoch + 1))
        if best is not None:
            assert best in epochs
        extra = {best} if best is not None else set()
        if every is not None:
            extra |= {e for e in range(epoch + 1) if e % every == 0}
        assert set(epochs) <= set(range(epoch - keep + 1, epoch + 1)) | extra


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(metric_values, min_size=1, max_size=8),
    keep=st.integers(1, 3),
    mode=st.sampled_from(["min", "max"]),
)
def test_manager_keeps_latest_and_best_under_any_metric_order(
    values: list[float], keep: int, mode: str
) -> None:
    url = f"memory://retention-{uuid.uuid4().hex}/checkpoints"
    manager = CheckpointManager(url, max_checkpoints=keep, metric_for_best="loss", mode=mode)  # type: ignore[arg-type]
    for epoch, value in enumerate(values):
        manager.save(
            model={"w": torch.full((2,), float(epoch))}, epoch=epoch, metrics={"loss": value}
        )
        epochs = manager.epochs()
        best = _expected_best(values[: epoch + 1], mode)
        assert epochs[-1] == epoch
        assert len(epochs) <= keep + 1
        if best is not None:
            assert best in epochs
            assert manager.load_best()["epoch"] == best
        else:
            with pytest.raises(CheckpointNotFoundError):
                manager.load_best()
    files = manager._fs.list_names(manager.checkpoint_dir)
    assert sorted(files) == sorted(
        [f"checkpoint_epoch_{e:05d}.safetensors" for e in epochs] + ["manifest.json"]
    )


def test_nan_and_inf_rank_worst() -> None:
    records = [_record(0, math.nan), _record(1, 5.0), _record(2, -math.inf), _record(3, math.inf)]
    best_min = best_record(records, "loss", "min")
    best_max = best_record(records, "loss", "max")
    assert best_min is not None
    assert best_min.epoch == 1
    assert best_max is not None
    assert best_max.epoch == 1
    assert best_record(records[:1], "loss", "min") is None
    assert best_record(records, "accuracy", "max") is None
    ties = [_record(0, 1.0), _record(1, 1.0)]
    best_tie = best_record(ties, "loss", "min")
    assert best_tie is not None
    assert best_tie.epoch == 0


def test_policies() -> None:
    records = [_record(e, float(10 - e)) for e in range(10)]
    assert KeepAll().preserve(records) == frozenset(range(10))
    assert KeepLast(3).preserve(records) == frozenset({7, 8, 9})
    assert KeepEvery(4).preserve(records) == frozenset({0, 4, 8})
    assert KeepBest("loss", "max").preserve(records) == frozenset({0})
    assert KeepEpochs(frozenset({2, 42})).preserve(records) == frozenset({2})
    assert AnyOf((KeepLast(1), KeepEvery(5))).preserve(records) == frozenset({0, 5, 9})
    with pytest.raises(ValueError, match="positive"):
        KeepLast(0)
    with pytest.raises(ValueError, match="positive"):
        KeepEvery(True)
    with pytest.raises(ValueError, match="'min' or 'max'"):
        KeepBest("loss", "median")  # type: ignore[arg-type]


def test_default_keeps_everything(ckpt_dir: str) -> None:
    manager = CheckpointManager(ckpt_dir)
    for epoch in range(6):
        manager.save(model={"w": torch.ones(1)}, epoch=epoch, metrics={"loss": float(epoch)})
    assert manager.epochs() == list(range(6))
    assert isinstance(manager.retention, KeepAll)


def test_keep_every_and_best(ckpt_dir: str) -> None:
    manager = CheckpointManager(
        ckpt_dir, max_checkpoints=2, keep_every=5, mode="max", metric_for_best="accuracy"
    )
    accuracy = [0.1, 0.9, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.6, 0.5]
    for epoch, value in enumerate(accuracy):
        manager.save(model={"w": torch.ones(1)}, epoch=epoch, metrics={"accuracy": value})
    assert manager.epochs() == [0, 1, 5, 10, 11]


def test_retention_never_deletes_files_it_did_not_create(ckpt_dir: str) -> None:
    manager = CheckpointManager(ckpt_dir, max_checkpoints=1, keep_best=False)
    directory = Path(ckpt_dir)
    foreign_checkpoint = directory / "checkpoint_epoch_00003.safetensors"
    foreign_checkpoint.write_bytes(b"someone else's file")
    notes = directory / "notes.txt"
    notes.write_text("keep me")
    for epoch in (0, 1, 2, 4, 5):
        manager.save(model={"w": torch.ones(1)}, epoch=epoch)
    with pytest.raises(EpochExistsError):
        manager.save(model={"w": torch.ones(1)}, epoch=3)
    assert manager.epochs() == [5]
    assert foreign_checkpoint.read_bytes() == b"someone else's file"
    assert notes.read_text() == "keep me"
    assert sorted(p.name for p in directory.iterdir()) == [
        "checkpoint_epoch_00003.safetensors",
        "checkpoint_epoch_00005.safetensors",
        "manifest.json",
        "notes.txt",
    ]


def test_promoted_checkpoints_are_kept_and_cannot_be_deleted(ckpt_dir: str) -> None:
    manager = CheckpointManager(ckpt_dir, max_checkpoints=1, keep_best=False)
    manager.save(model={"w": torch.ones(1)}, epoch=0)
    manager.promote(epoch=0, to="validated", version="1.0.0")
    for epoch in range(1, 4):
        manager.save(model={"w": torch.ones(1)}, epoch=epoch)
    assert manager.epochs() == [0, 3]
    with pytest.raises(PromotionError, match="promoted"):
        manager.delete(0)
    with pytest.raises(PromotionError, match="promoted"):
        manager.save(model={"w": torch.zeros(1)}, epoch=0, overwrite=True)
    manager.delete(3)
    assert manager.epochs() == [0]
    with pytest.raises(CheckpointNotFoundError):
        manager.delete(3)


def test_retired_files_are_deleted_on_the_next_open(ckpt_dir: str) -> None:
    manager = CheckpointManager(ckpt_dir)
    for epoch in range(3):
        manager.save(model={"w": torch.ones(1)}, epoch=epoch)
    # The state after a crash between retention's manifest commit and its deletions.
    manifest_path = Path(ckpt_dir) / "manifest.json"
    manifest = Manifest.from_bytes(manifest_path.read_bytes(), str(manifest_path)).without({0, 1})
    manifest_path.write_bytes(manifest.to_bytes())
    assert manager.epochs() == [2]
    assert Path(manager.path(0)).exists()
    CheckpointManager(ckpt_dir)
    assert not Path(manager.path(0)).exists()
    assert not Path(manager.path(1)).exists()
    assert Path(manager.path(2)).exists()
    reread = Manifest.from_bytes(manifest_path.read_bytes(), str(manifest_path))
    assert reread.retired == ()


def test_a_resaved_epoch_is_never_deleted_as_retired(ckpt_dir: str) -> None:
    manager = CheckpointManager(ckpt_dir, max_checkpoints=1, keep_best=False)
    manager.save(model={"w": torch.ones(1)}, epoch=0)
    manager.save(model={"w": torch.ones(1)}, epoch=1)  # retires epoch 0
    manager.save(model={"w": torch.ones(1)}, epoch=0)  # an older epoch saved again
    assert manager.epochs() == [0, 1]  # a save never loses its own checkpoint at once
    CheckpointManager(ckpt_dir, max_checkpoints=1, keep_best=False)
    for epoch in (0, 1):
        assert manager.load(epoch)["epoch"] == epoch
    manager.save(model={"w": torch.ones(1)}, epoch=2)
    assert manager.epochs() == [2]
