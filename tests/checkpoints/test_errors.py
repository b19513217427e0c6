"""Bad input: clear errors, raised before anything is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from epochstore.checkpoints import CheckpointManager
from epochstore.errors import (
    CheckpointFormatError,
    CheckpointNotFoundError,
    CorruptCheckpointError,
    EpochExistsError,
    InvalidEpochError,
    PromotionError,
    ReadOnlyError,
)

_MODEL = {"w": torch.ones(2)}


@pytest.mark.parametrize("epoch", [-1, 100_000, "3", 2.0, True, None])
def test_invalid_epochs(ckpt_dir: str, epoch: Any) -> None:
    manager = CheckpointManager(ckpt_dir)
    with pytest.raises(InvalidEpochError):
        manager.save(model=_MODEL, epoch=epoch)
    with pytest.raises(InvalidEpochError):
        manager.load(epoch)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"metrics": {"loss": "low"}}, TypeError, "real number"),
        ({"metrics": {"loss": True}}, TypeError, "real number"),
        ({"metrics": {3: 1.0}}, TypeError, "non-empty strings"),
        ({"metrics": [("loss", 1.0)]}, TypeError, "mapping"),
        ({"config": {"fn": print}}, TypeError, r"config\.fn"),
        ({"config": {"t": torch.ones(1)}}, TypeError, "JSON-able"),
        ({"model": {"w": torch.ones(1), "extra": {"a": 1}}}, TypeError, "'extra'"),
        ({"model": {"w": torch.ones(1, dtype=torch.complex128)}}, TypeError, "complex128"),
        ({"model": {"w": torch.ones(2).to_sparse()}}, TypeError, "dense"),
        ({"model": object()}, TypeError, "state_dict"),
        ({"optimizer": {"state": {0: {"x": object()}}}}, TypeError, r"optimizer\.state\.0\.x"),
    ],
)
def test_unstorable_input_is_refused_before_writing(
    ckpt_dir: str, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    manager = CheckpointManager(ckpt_dir)
    arguments: dict[str, Any] = {"model": _MODEL, "epoch": 1, **kwargs}
    with pytest.raises(error, match=match):
        manager.save(**arguments)
    assert manager.epochs() == []
    assert sorted(p.name for p in Path(ckpt_dir).iterdir()) == ["manifest.json"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "median"}, "'min' or 'max'"),
        ({"max_checkpoints": 0}, "positive"),
        ({"max_checkpoints": 2.5}, "positive"),
        ({"keep_every": -1}, "positive"),
        ({"metric_for_best": ""}, "non-empty"),
    ],
)
def test_invalid_manager_options(ckpt_dir: str, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CheckpointManager(ckpt_dir, **kwargs)


def test_existing_epoch_needs_overwrite(ckpt_dir: str) -> None:
    manager = CheckpointManager(ckpt_dir)
    manager.save(model=_MODEL, epoch=1)
    with pytest.raises(EpochExistsError, match="overwrite=True"):
        manager.save(model={"w": torch.zeros(2)}, epoch=1)
    manager.save(model={"w": torch.zeros(2)}, epoch=1, overwrite=True)
    assert torch.equal(manager.load(1)["model"]["w"], torch.zeros(2))
    assert manager.verify().ok


def test_missing_checkpoints(ckpt_dir: str) -> None:
    manager = CheckpointManager(ckpt_dir)
    with pytest.raises(CheckpointNotFoundError, match="no committed"):
        manager.load_latest()
    with pytest.raises(CheckpointNotFoundError, match="finite"):
        manager.load_best()
    manager.save(model=_MODEL, epoch=3)
    with pytest.raises(CheckpointNotFoundError, match="committed epochs: 3"):
        manager.load(epoch=4)
    with pytest.raises(FileNotFoundError):  # the error also subclasses the built-in
        manager.load(epoch=4)


def test_read_only(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    reader = CheckpointManager(str(missing), read_only=True)
    assert reader.epochs() == []
    assert not missing.exists()
    with pytest.raises(ReadOnlyError):
        reader.save(model=_MODEL, epoch=0)
    with pytest.raises(PermissionError):
        reader.delete(0)
    writer = CheckpointManager(f"file://{missing}")
    writer.save(model=_MODEL, epoch=0)
    assert reader.epochs() == [0]
    assert torch.equal(reader.load_latest()["model"]["w"], _MODEL["w"])


def test_load_into_without_optimizer_state(ckpt_dir: str) -> None:
    model = torch.nn.Linear(2, 2)
    manager = CheckpointManager(ckpt_dir)
    manager.save(model=model, epoch=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="no optimizer state"):
        manager.load_into(torch.nn.Linear(2, 2), optimizer=optimizer)
    with pytest.raises(RuntimeError, match="size mismatch"):
        manager.load_into(torch.nn.Linear(3, 2))


# --- messages name the thing and the fix -----------------------------------------------------


def _saved(ckpt_dir: str, epochs: range = range(2)) -> CheckpointManager:
    manager = CheckpointManager(ckpt_dir)
    for epoch in epochs:
        manager.save(model=_MODEL, epoch=epoch)
    return manager


def test_missing_recorded_file_names_the_file_and_the_fix(ckpt_dir: str) -> None:
    manager = _saved(ckpt_dir)
    Path(manager.path(1)).unlink()
    with pytest.raises(CorruptCheckpointError, match="is recorded but missing") as info:
        manager.load(1)
    assert manager.path(1) in str(info.value)
    assert "restore it from a backup" in str(info.value)
    assert "CheckpointManager.delete(1)" in str(info.value)


def test_foreign_manifest_names_the_file_and_the_fix(ckpt_dir: str) -> None:
    Path(ckpt_dir).mkdir(parents=True)
    manifest = Path(ckpt_dir, "manifest.json")
    manifest.write_text(json.dumps({"kind": "something else", "format": 1}))
    with pytest.raises(CheckpointFormatError, match="not an epochstore checkpoint") as info:
        CheckpointManager(ckpt_dir)
    assert str(manifest) in str(info.value)
    assert "a directory of its own" in str(info.value)


def test_epoch_listed_twice_names_the_epoch_and_the_fix(ckpt_dir: str) -> None:
    _saved(ckpt_dir, range(1))
    manifest = Path(ckpt_dir, "manifest.json")
    document = json.loads(manifest.read_text())
    document["checkpoints"] *= 2
    manifest.write_text(json.dumps(document))
    with pytest.raises(CheckpointFormatError, match="an epoch is listed twice") as info:
        CheckpointManager(ckpt_dir, read_only=True).epochs()
    assert str(manifest) in str(info.value)
    assert "epochs [0]" in str(info.value)
    assert "keep one record per epoch" in str(info.value)


@pytest.mark.parametrize("what", ["manifest", "version record"])
def test_invalid_json_names_the_file_and_the_fix(ckpt_dir: str, what: str) -> None:
    manager = _saved(ckpt_dir)
    manager.promote(epoch=0, to="validated", version="1.0.0")
    if what == "manifest":
        damaged = Path(ckpt_dir, "manifest.json")
    else:
        damaged = Path(ckpt_dir).parent / "validated" / "v1.0.0.json"
        damaged.chmod(0o644)
    damaged.write_text("{not json")
    with pytest.raises(CheckpointFormatError, match="is not valid JSON") as info:
        manager.version_record("1.0.0") if what != "manifest" else manager.epochs()
    assert str(damaged) in str(info.value)
    assert "restore it from a backup" in str(info.value)


def test_checks_on_production_name_the_fix(ckpt_dir: str) -> None:
    manager = _saved(ckpt_dir)
    manager.promote(epoch=0, to="validated", version="1.0.0")
    with pytest.raises(ValueError, match=r"checks belong to promote\(to='validated'\)") as info:
        manager.promote(version="1.0.0", to="production", checks={"smoke": True})
    assert "drop checks=" in str(info.value)
    assert manager.production_record() is None


def test_damaged_checkpoint_record_names_the_manifest_and_the_fix(ckpt_dir: str) -> None:
    _saved(ckpt_dir, range(1))
    manifest = Path(ckpt_dir, "manifest.json")
    document = json.loads(manifest.read_text())
    document["checkpoints"][0]["metrics"] = "low"
    manifest.write_text(json.dumps(document))
    with pytest.raises(CheckpointFormatError, match="checkpoint #0: metrics") as info:
        CheckpointManager(ckpt_dir, read_only=True).epochs()
    assert f"restore {manifest} from a backup" in str(info.value)


@pytest.mark.parametrize(
    ("change", "match"),
    [({"kind": "something else"}, "is not an epochstore version record"),
     ({"source_epoch": "first"}, "is an invalid version record")],
)
def test_foreign_or_damaged_version_record_names_the_file_and_the_fix(
    ckpt_dir: str, change: dict[str, str], match: str
) -> None:
    manager = _saved(ckpt_dir)
    manager.promote(epoch=0, to="validated", version="1.0.0")
    record = Path(ckpt_dir).parent / "validated" / "v1.0.0.json"
    record.chmod(0o644)
    record.write_text(json.dumps({**json.loads(record.read_text()), **change}))
    with pytest.raises(CheckpointFormatError, match=match) as info:
        manager.version_record("1.0.0")
    assert str(record) in str(info.value)
    assert "restore it from a backup, or remove it" in str(info.value)


def test_overwriting_or_deleting_the_wrong_epoch_names_the_fix(ckpt_dir: str) -> None:
    manager = _saved(ckpt_dir)
    manager.promote(epoch=0, to="validated", version="1.0.0")
    with pytest.raises(PromotionError, match="under another epoch"):
        manager.save(model=_MODEL, epoch=0, overwrite=True)
    with pytest.raises(CheckpointNotFoundError, match="to delete; committed epochs: 0, 1"):
        manager.delete(7)


def test_damaged_production_history_names_the_file_and_the_fix(ckpt_dir: str) -> None:
    manager = _saved(ckpt_dir)
    manager.promote(epoch=0, to="validated", version="1.0.0")
    manager.promote(version="1.0.0", to="production")
    history = Path(ckpt_dir).parent / "production" / "history.json"
    history.chmod(0o644)
    history.write_text("{}")
    with pytest.raises(CheckpointFormatError, match="must hold a JSON list") as info:
        manager.production_history()
    assert str(history) in str(info.value)
    assert "restore it from a backup, or remove it" in str(info.value)
