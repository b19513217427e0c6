"""The same semantics under an fsspec URL (``memory://``; object stores come with scale-out)."""

from __future__ import annotations

import uuid

import fsspec
import pytest
import torch

from epochstore.checkpoints import CheckpointManager
from epochstore.errors import CorruptCheckpointError, EpochstoreWarning


@pytest.fixture
def url() -> str:
    return f"memory://epochstore-{uuid.uuid4().hex}/run/checkpoints"


def _state(epoch: int) -> dict[str, torch.Tensor]:
    return {"w": torch.full((16, 4), float(epoch)), "b": torch.arange(4) + epoch}


def test_save_load_retention_and_verify(url: str) -> None:
    manager = CheckpointManager(url, max_checkpoints=2, metric_for_best="loss")
    optimizer = {"state": {0: {"m": torch.ones(3)}}, "param_groups": [{"params": [0]}]}
    for epoch, loss in enumerate([0.3, 0.1, 0.5, 0.4, 0.6]):
        manager.save(
            model=_state(epoch),
            optimizer=optimizer,
            epoch=epoch,
            metrics={"loss": loss},
            config={"url": url},
        )
    assert manager.epochs() == [1, 3, 4]
    latest = manager.load_latest()
    assert latest["epoch"] == 4
    assert torch.equal(latest["model"]["b"], torch.arange(4) + 4)
    assert manager.load_best()["epoch"] == 1
    assert torch.equal(manager.load_model_state(3)["w"], _state(3)["w"])
    assert manager.verify().ok

    fs = fsspec.filesystem("memory")
    root = url.removeprefix("memory://")
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.ls("/" + root, detail=False))
    assert names == [
        "checkpoint_epoch_00001.safetensors",
        "checkpoint_epoch_00003.safetensors",
        "checkpoint_epoch_00004.safetensors",
        "manifest.json",
    ]

    path = f"/{root}/checkpoint_epoch_00004.safetensors"
    fs.pipe_file(path, fs.cat_file(path)[:-3])  # truncate on the "remote" store
    with pytest.warns(EpochstoreWarning, match="epoch 4"):
        assert manager.load_latest()["epoch"] == 3
    with pytest.raises(CorruptCheckpointError):
        manager.load(epoch=4)
    assert manager.verify().corrupt_epochs == [4]


def test_promotion_on_fsspec(url: str) -> None:
    manager = CheckpointManager(url)
    manager.save(model=_state(0), epoch=0)
    manager.save(model=_state(1), epoch=1)
    manager.promote(epoch=1, to="validated", version="1.0.0", checks={"ok": True})
    manager.promote(version="1.0.0", to="production")
    assert manager.load_production()["epoch"] == 1
    assert manager.load_version("1.0.0")["version"] == "1.0.0"
    fs = fsspec.filesystem("memory")
    run = "/" + url.removeprefix("memory://").rsplit("/", 1)[0]
    assert fs.exists(f"{run}/validated/v1.0.0.json")
    assert fs.exists(f"{run}/production/model.safetensors")
    assert manager.verify().ok


def test_storage_options_are_for_urls_only(tmp_path: object) -> None:
    with pytest.raises(ValueError, match="fsspec URLs"):
        CheckpointManager(str(tmp_path), storage_options={"anon": True})
