"""Damaged, swapped, foreign and half-written files: detected, reported, never loaded silently."""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from epochstore.checkpoints import CheckpointManager
from epochstore.checkpoints.fileformat import read_header
from epochstore.errors import (
    CheckpointFormatError,
    CheckpointNotFoundError,
    CorruptCheckpointError,
    EpochExistsError,
    EpochstoreWarning,
)

if TYPE_CHECKING:
    from collections.abc import Callable


def _weights(epoch: int) -> dict[str, torch.Tensor]:
    return {"w": torch.full((64, 64), float(epoch)), "b": torch.full((64,), float(epoch))}


def _optimizer_state(epoch: int) -> dict[str, object]:
    return {
        "state": {0: {"exp_avg": torch.full((64, 64), -float(epoch)), "step": torch.tensor(1.0)}},
        "param_groups": [{"params": [0], "lr": 0.1}],
    }


def _manager_with(ckpt_dir: str, epochs: range) -> CheckpointManager:
    manager = CheckpointManager(ckpt_dir)
    for epoch in epochs:
        manager.save(
            model=_weights(epoch),
            optimizer=_optimizer_state(epoch),
            epoch=epoch,
            metrics={"loss": 1.0 / (epoch + 1)},
        )
    return manager


class _Payload:
    """Unpickling this creates ``marker``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _pickle_bytes(marker: Path) -> bytes:
    return pickle.dumps({"model": _Payload(marker)}, protocol=2)


def _zip_bytes(marker: Path, tmp_path: Path) -> bytes:
    archive = tmp_path / "archive.zip"
    with zipfile.ZipFile(archive, "w") as handle:  # the layout of torch.save's zip format
        handle.writestr("archive/data.pkl", _pickle_bytes(marker))
        handle.writestr("archive/version", "3\n")
    return archive.read_bytes()


def test_truncated_latest_is_skipped_with_a_warning(ckpt_dir: str) -> None:
    manager = _manager_with(ckpt_dir, range(3))
    path = Path(manager.path(2))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.warns(EpochstoreWarning, match="epoch 2"):
        checkpoint = manager.load_latest()
    assert checkpoint["epoch"] == 1
    assert torch.equal(checkpoint["model"]["w"], _weights(1)["w"])
    with pytest.raises(CorruptCheckpointError, match="bytes"):
        manager.load(epoch=2)
    report = manager.verify()
    assert not report.ok
    assert report.corrupt_epochs == [2]
    assert len(report.verified) == 2


@pytest.mark.parametrize("section", ["model.w", "optimizer.state.0.exp_avg", "header"])
def test_bit_flip_is_detected(
    ckpt_dir: str,
    section: str,
    ranges: Callable[[str], dict[str, tuple[int, int]]],
    patch: Callable[[str, int, bytes], None],
) -> None:
    manager = _manager_with(ckpt_dir, range(2))
    path = manager.path(1)
    offset = 20 if section == "header" else ranges(path)[section][0] + 5
    data = Path(path).read_bytes()
    patch(path, offset, bytes([data[offset] ^ 0x04]))
    with pytest.warns(EpochstoreWarning, match="epoch 1"):
        assert manager.load_latest()["epoch"] == 0
    with pytest.raises(CorruptCheckpointError):
        manager.load(epoch=1)
    if section.startswith("optimizer"):
        # The model part is intact and verified on its own.
        assert torch.equal(manager.load_model_state(1)["w"], _weights(1)["w"])
    else:
        with pytest.raises(CorruptCheckpointError):
            manager.load_model_state(1)
    assert manager.verify().corrupt_epochs == [1]


def test_missing_file_is_reported(ckpt_dir: str) -> None:
    manager = _manager_with(ckpt_dir, range(2))
    Path(manager.path(1)).unlink()
    with pytest.warns(EpochstoreWarning, match="missing"):
        assert manager.load_latest()["epoch"] == 0
    assert manager.verify().problems[0].problem == "file is missing"


def test_all_corrupt_raises(ckpt_dir: str) -> None:
    manager = _manager_with(ckpt_dir, range(1))
    Path(manager.path(0)).write_bytes(b"\0" * 10)
    with pytest.warns(EpochstoreWarning), pytest.raises(CheckpointNotFoundError, match="failed"):
        manager.load_latest()


def test_best_skips_a_corrupt_best(ckpt_dir: str) -> None:
    manager = _manager_with(ckpt_dir, range(3))  # loss falls: epoch 2 is best
    Path(manager.path(2)).write_bytes(b"garbage")
    with pytest.warns(EpochstoreWarning, match="epoch 2"):
        assert manager.load_best()["epoch"] == 1


@pytest.mark.parametrize("kind", ["pickle", "zip"])
def test_pickle_named_like_a_checkpoint_is_refused_and_never_executed(
    ckpt_dir: str, tmp_path: Path, kind: str
) -> None:
    marker = tmp_path / "code-ran"
    payload = _pickle_bytes(marker) if kind == "pickle" else _zip_bytes(marker, tmp_path)
    manager = _manager_with(ckpt_dir, range(2))

    # 1. An uncommitted file dropped into the directory.
    foreign = Path(manager.path(7))
    foreign.write_bytes(payload)
    with pytest.raises(CheckpointFormatError, match="not a valid safetensors file"):
        manager.load(epoch=7)
    with pytest.raises(EpochExistsError, match="not written by this manager"):
        manager.save(model=_weights(7), epoch=7)
    assert foreign.read_bytes() == payload  # never overwritten
    assert manager.verify().uncommitted == (str(foreign),)
    assert manager.epochs() == [0, 1]

    # 2. A committed checkpoint swapped for the payload.
    Path(manager.path(1)).write_bytes(payload)
    with pytest.raises(CorruptCheckpointError):
        manager.load(epoch=1)
    with pytest.warns(EpochstoreWarning):
        assert manager.load_latest()["epoch"] == 0
    assert not manager.verify().ok
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x01\x02", "shorter than"),
        ((10**12).to_bytes(8, "little") + b"{}", "does not fit"),
        ((4).to_bytes(8, "little") + b"[1] ", "not a JSON object"),
        ((4).to_bytes(8, "little") + b"{\xff} ", "UTF-8 JSON"),
        ((2).to_bytes(8, "little") + b"{}" + b"extra", "cover 0 bytes"),
        (
            (len(h := b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}')).to_bytes(
                8, "little"
            )
            + h
            + b"\0" * 4,
            "does not match its shape",
        ),
        (
            (len(h := b'{"a":{"dtype":"PICKLE","shape":[1],"data_offsets":[0,1]}}')).to_bytes(
                8, "little"
            )
            + h
            + b"\0",
            "unsupported dtype",
        ),
        (
            (
                len(
                    h := b'{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},'
                    b'"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}'
                )
            ).to_bytes(8, "little")
            + h
            + b"\0" * 3,
            "does not start where",
        ),
        ((11).to_bytes(8, "little") + b'{"__metadata__":{"a":1}}'[:11], "not valid UTF-8 JSON"),
    ],
    ids=[
        "short",
        "huge-length",
        "array",
        "not-utf8",
        "trailing",
        "size",
        "dtype",
        "overlap",
        "cut-json",
    ],
)
def test_header_validation(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "x.safetensors"
    path.write_bytes(content)
    with path.open("rb") as handle, pytest.raises(CheckpointFormatError, match=reason):
        read_header(handle, len(content), str(path))


def test_foreign_safetensors_file_is_not_an_epochstore_checkpoint(
    ckpt_dir: str, tmp_path: Path
) -> None:
    import safetensors.torch

    manager = CheckpointManager(ckpt_dir)
    safetensors.torch.save_file({"w": torch.ones(2)}, manager.path(3))
    with pytest.raises(CheckpointNotFoundError, match="not committed"):
        manager.load(epoch=3)
    with pytest.raises(EpochExistsError):
        manager.save(model=_weights(3), epoch=3)


def test_stale_temporary_files_are_removed_on_open(ckpt_dir: str) -> None:
    manager = _manager_with(ckpt_dir, range(1))
    directory = Path(ckpt_dir)
    stale = directory / f".checkpoint_epoch_00001.safetensors.{'a' * 32}.partial"
    fresh = directory / f".manifest.json.{'b' * 32}.partial"
    unrelated = directory / f".notes.txt.{'c' * 32}.partial"
    for path in (stale, fresh, unrelated):
        path.write_bytes(b"half written")
    old = stale.stat().st_mtime - 3600
    os.utime(stale, (old, old))
    os.utime(unrelated, (old, old))
    CheckpointManager(ckpt_dir, stale_after=600)
    assert not stale.exists()
    assert fresh.exists()  # may belong to a writer still at work
    assert unrelated.exists()  # not ours
    CheckpointManager(ckpt_dir, read_only=True, stale_after=0)
    assert fresh.exists()  # readers never clean up
    CheckpointManager(ckpt_dir, stale_after=0)
    assert not fresh.exists()
    assert manager.epochs() == [0]


def test_uncommitted_own_file_is_replaced_by_the_next_save(ckpt_dir: str) -> None:
    manager = _manager_with(ckpt_dir, range(2))
    # Simulate a crash after the rename but before the manifest commit: the file of epoch 1
    # exists, written by this manager, but the manifest no longer lists it.
    manifest_path = Path(ckpt_dir) / "manifest.json"
    document = json.loads(manifest_path.read_text())
    document["checkpoints"] = [c for c in document["checkpoints"] if c["epoch"] == 0]
    manifest_path.write_text(json.dumps(document))
    assert manager.epochs() == [0]
    assert manager.verify().uncommitted == (manager.path(1),)
    with pytest.raises(CheckpointNotFoundError, match="not committed"):
        manager.load(epoch=1)
    manager.save(model=_weights(10), epoch=1)
    assert torch.equal(manager.load(epoch=1)["model"]["w"], _weights(10)["w"])
    assert manager.verify().ok


def test_corrupt_manifest_is_a_clear_error(ckpt_dir: str) -> None:
    manager = _manager_with(ckpt_dir, range(1))
    (Path(ckpt_dir) / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointFormatError, match="not valid JSON"):
        manager.epochs()
    (Path(ckpt_dir) / "manifest.json").write_text(json.dumps({"kind": "x"}))
    with pytest.raises(CheckpointFormatError, match="not an epochstore checkpoint manifest"):
        CheckpointManager(ckpt_dir)


def test_file_with_a_wrong_epoch_is_refused(ckpt_dir: str) -> None:
    manager = _manager_with(ckpt_dir, range(2))
    manifest_path = Path(ckpt_dir) / "manifest.json"
    document = json.loads(manifest_path.read_text())
    first, second = document["checkpoints"]
    # Swap the files and their records: sha256 values match but the epochs do not.
    Path(manager.path(0)).rename(Path(ckpt_dir) / "tmp")
    Path(manager.path(1)).rename(manager.path(0))
    (Path(ckpt_dir) / "tmp").rename(manager.path(1))
    for key in ("size", "sha256", "header_sha256", "sections"):
        first[key], second[key] = second[key], first[key]
    manifest_path.write_text(json.dumps(document))
    with pytest.raises(CorruptCheckpointError, match="holds epoch"):
        manager.load(epoch=0)


def test_a_section_without_a_recorded_checksum_is_never_loaded_unverified(ckpt_dir: str) -> None:
    manager = _manager_with(ckpt_dir, range(1))
    manifest_path = Path(ckpt_dir) / "manifest.json"
    document = json.loads(manifest_path.read_text())
    del document["checkpoints"][0]["sections"]["model"]
    manifest_path.write_text(json.dumps(document))
    with pytest.raises(CorruptCheckpointError, match=r"'model' sha256 .* but no checksum was"):
        manager.load_model_state(0)
    assert torch.equal(manager.load(0)["model"]["w"], _weights(0)["w"])  # the file sha256 checks it
