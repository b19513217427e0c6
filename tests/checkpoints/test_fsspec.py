"""The same semantics under fsspec URLs: ``memory://`` and a real S3 endpoint (moto's server)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import fsspec
import pytest
import torch

from epochstore.checkpoints import CheckpointManager
from epochstore.errors import CorruptCheckpointError, EpochstoreWarning


@dataclass
class Remote:
    """A checkpoint directory URL, its options, and a filesystem to inspect it with."""

    url: str
    storage_options: dict[str, Any] | None
    fs: Any

    def path(self, url: str) -> str:
        """The filesystem path of ``url`` (what ``fs`` takes)."""
        path: str = self.fs._strip_protocol(url)
        return path

    def manager(self, **kwargs: Any) -> CheckpointManager:
        return CheckpointManager(self.url, storage_options=self.storage_options, **kwargs)


@pytest.fixture(params=["memory", "s3"])
def remote(request: pytest.FixtureRequest) -> Remote:
    if request.param == "memory":
        url = f"memory://epochstore-{uuid.uuid4().hex}/run/checkpoints"
        return Remote(url, None, fsspec.filesystem("memory"))
    s3 = request.getfixturevalue("s3")
    return Remote(s3.url("run", "checkpoints"), s3.storage_options, s3.fs())


def _state(epoch: int) -> dict[str, torch.Tensor]:
    return {"w": torch.full((16, 4), float(epoch)), "b": torch.arange(4) + epoch}


def test_save_load_retention_and_verify(remote: Remote) -> None:
    manager = remote.manager(max_checkpoints=2, metric_for_best="loss")
    optimizer = {"state": {0: {"m": torch.ones(3)}}, "param_groups": [{"params": [0]}]}
    for epoch, loss in enumerate([0.3, 0.1, 0.5, 0.4, 0.6]):
        manager.save(
            model=_state(epoch),
            optimizer=optimizer,
            epoch=epoch,
            metrics={"loss": loss},
            config={"url": remote.url},
        )
    assert manager.epochs() == [1, 3, 4]
    latest = manager.load_latest()
    assert latest["epoch"] == 4
    assert torch.equal(latest["model"]["b"], torch.arange(4) + 4)
    assert manager.load_best()["epoch"] == 1
    assert torch.equal(manager.load_model_state(3)["w"], _state(3)["w"])
    assert manager.verify().ok

    fs = remote.fs
    root = remote.path(remote.url)
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(root, detail=False))
    assert names == [
        "checkpoint_epoch_00001.safetensors",
        "checkpoint_epoch_00003.safetensors",
        "checkpoint_epoch_00004.safetensors",
        "manifest.json",
    ]

    path = f"{root}/checkpoint_epoch_00004.safetensors"
    fs.pipe_file(path, fs.cat_file(path)[:-3])  # truncate on the "remote" store
    with pytest.warns(EpochstoreWarning, match="epoch 4"):
        assert manager.load_latest()["epoch"] == 3
    with pytest.raises(CorruptCheckpointError):
        manager.load(epoch=4)
    assert manager.verify().corrupt_epochs == [4]


def test_promotion_on_fsspec(remote: Remote) -> None:
    manager = remote.manager()
    manager.save(model=_state(0), epoch=0)
    manager.save(model=_state(1), epoch=1)
    manager.promote(epoch=1, to="validated", version="1.0.0", checks={"ok": True})
    manager.promote(version="1.0.0", to="production")
    assert manager.load_production()["epoch"] == 1
    assert manager.load_version("1.0.0")["version"] == "1.0.0"
    run = remote.path(remote.url).rsplit("/", 1)[0]
    assert remote.fs.exists(f"{run}/validated/v1.0.0.json")
    assert remote.fs.exists(f"{run}/production/model.safetensors")
    assert manager.verify().ok


def test_a_reader_in_another_manager_sees_new_checkpoints(remote: Remote) -> None:
    """A read-only manager (an analysis worker) sees what a writer commits after it opened."""
    writer = remote.manager()
    writer.save(model=_state(0), epoch=0)
    reader = remote.manager(read_only=True)
    assert reader.epochs() == [0]
    writer.save(model=_state(1), epoch=1)
    assert reader.epochs() == [0, 1]
    assert torch.equal(reader.load_model_state(1)["w"], _state(1)["w"])


def test_storage_options_are_for_urls_only(tmp_path: object) -> None:
    with pytest.raises(ValueError, match="fsspec URLs"):
        CheckpointManager(str(tmp_path), storage_options={"anon": True})
