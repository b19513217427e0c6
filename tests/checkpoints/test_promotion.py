"""Promotion raw -> validated -> production: rules, immutable records, history, semver."""

from __future__ import annotations

import itertools
import json
import stat
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from epochstore.checkpoints import CheckpointManager
from epochstore.errors import (
    CheckpointNotFoundError,
    CorruptCheckpointError,
    InvalidVersionError,
    PromotionError,
    ReadOnlyError,
)
from epochstore.registry import ProductionRecord, VersionRecord, parse_version


def _manager(ckpt_dir: str, epochs: range = range(3)) -> CheckpointManager:
    manager = CheckpointManager(ckpt_dir)
    for epoch in epochs:
        manager.save(
            model={"w": torch.full((8,), float(epoch))},
            epoch=epoch,
            metrics={"loss": 1.0 / (epoch + 1)},
        )
    return manager


def test_validated_then_production(ckpt_dir: str) -> None:
    manager = _manager(ckpt_dir)
    run = Path(ckpt_dir).parent
    record = manager.promote(
        epoch=2, to="validated", version="1.0.0", checks={"test_accuracy": 0.99, "smoke": True}
    )
    assert isinstance(record, VersionRecord)
    assert record.source_epoch == 2
    assert record.digest.sha256 == manager.records()[-1].sha256
    assert record.checks == {"test_accuracy": 0.99, "smoke": True}
    assert (run / "validated" / "v1.0.0.safetensors").read_bytes() == Path(
        manager.path(2)
    ).read_bytes()
    stored = json.loads((run / "validated" / "v1.0.0.json").read_text())
    assert stored["source_epoch"] == 2
    assert stored["sha256"] == record.digest.sha256
    assert stored["promoted_at"].endswith("+00:00")
    assert "git_hash" in stored

    production = manager.promote(version="1.0.0", to="production")
    assert isinstance(production, ProductionRecord)
    assert production.previous_version is None
    assert (run / "production" / "model.safetensors").read_bytes() == Path(
        manager.path(2)
    ).read_bytes()

    loaded = manager.load_production()
    assert loaded["version"] == "1.0.0"
    assert loaded["epoch"] == 2
    assert torch.equal(loaded["model"]["w"], torch.full((8,), 2.0))
    assert manager.load_version("1.0.0")["epoch"] == 2
    assert manager.load_version("1.0.0", include_optimizer=False)["model"]["w"][0] == 2.0
    assert manager.verify().ok


def test_production_history_is_append_only(ckpt_dir: str) -> None:
    manager = _manager(ckpt_dir)
    manager.promote(epoch=0, to="validated", version="1.9.0")
    manager.promote(epoch=1, to="validated", version="1.10.0")
    manager.promote(version="1.9.0", to="production")
    manager.promote(version="1.10.0", to="production")
    manager.promote(version="1.9.0", to="production")  # a rollback is a new entry
    manager.promote(version="1.9.0", to="production")  # already in production: no-op
    history = manager.production_history()
    assert [(h.version, h.previous_version) for h in history] == [
        ("1.9.0", None),
        ("1.10.0", "1.9.0"),
        ("1.9.0", "1.10.0"),
    ]
    current = manager.production_record()
    assert current is not None
    assert current.version == "1.9.0"
    assert manager.load_production()["epoch"] == 0
    assert manager.versions() == ["1.9.0", "1.10.0"]


def test_promotion_rules(ckpt_dir: str) -> None:
    manager = _manager(ckpt_dir)
    with pytest.raises(PromotionError, match="not validated"):
        manager.promote(version="1.0.0", to="production")
    with pytest.raises(PromotionError, match="not validated"):
        manager.promote(epoch=1, version="1.0.0", to="production")
    with pytest.raises(CheckpointNotFoundError, match="no committed checkpoint"):
        manager.promote(epoch=7, to="validated", version="1.0.0")
    with pytest.raises(PromotionError, match="failed"):
        manager.promote(epoch=1, to="validated", version="1.0.0", checks={"eval": False})
    with pytest.raises(TypeError, match="checks"):
        manager.promote(epoch=1, to="validated", version="1.0.0", checks={"t": torch.ones(1)})
    with pytest.raises(ValueError, match="needs the epoch"):
        manager.promote(to="validated", version="1.0.0")
    with pytest.raises(ValueError, match="'validated' or 'production'"):
        manager.promote(epoch=1, to="staging", version="1.0.0")  # type: ignore[arg-type]
    with pytest.raises(InvalidVersionError, match="without the leading 'v'"):
        manager.promote(epoch=1, to="validated", version="v1.0.0")

    manager.promote(epoch=1, to="validated", version="1.0.0")
    with pytest.raises(PromotionError, match="already validated"):
        manager.promote(epoch=2, to="validated", version="1.0.0")
    with pytest.raises(PromotionError, match="already validated"):
        manager.promote(epoch=2, to="validated", version="1.0.0+build.7")  # same precedence
    with pytest.raises(PromotionError, match="from epoch 1"):
        manager.promote(epoch=2, version="1.0.0", to="production")
    with pytest.raises(CheckpointNotFoundError):
        manager.load_version("2.0.0")
    with pytest.raises(CheckpointNotFoundError):
        manager.load_production()
    reader = CheckpointManager(ckpt_dir, read_only=True)
    with pytest.raises(ReadOnlyError):
        reader.promote(epoch=1, to="validated", version="3.0.0")
    assert reader.versions() == ["1.0.0"]


def test_corrupt_checkpoints_are_not_promoted(ckpt_dir: str) -> None:
    manager = _manager(ckpt_dir)
    path = Path(manager.path(1))
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PromotionError, match="failed verification"):
        manager.promote(epoch=1, to="validated", version="1.0.0")
    assert manager.versions() == []
    assert not list((Path(ckpt_dir).parent / "validated").glob("*.safetensors"))

    manager.promote(epoch=2, to="validated", version="2.0.0")
    validated = Path(ckpt_dir).parent / "validated" / "v2.0.0.safetensors"
    validated.chmod(0o644)
    validated.write_bytes(validated.read_bytes()[:-1] + b"\0")
    with pytest.raises(PromotionError, match="failed verification"):
        manager.promote(version="2.0.0", to="production")
    with pytest.raises(CorruptCheckpointError):
        manager.load_version("2.0.0")
    report = manager.verify()
    assert [p.version for p in report.problems if p.version] == ["2.0.0"]
    assert report.corrupt_epochs == [1]


def test_validated_files_are_read_only(ckpt_dir: str) -> None:
    manager = _manager(ckpt_dir)
    manager.promote(epoch=0, to="validated", version="0.1.0")
    for name in ("v0.1.0.safetensors", "v0.1.0.json"):
        mode = (Path(ckpt_dir).parent / "validated" / name).stat().st_mode
        assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_interrupted_production_promotion_is_detected_and_completed(ckpt_dir: str) -> None:
    manager = _manager(ckpt_dir)
    manager.promote(epoch=0, to="validated", version="1.0.0")
    manager.promote(epoch=2, to="validated", version="1.1.0")
    manager.promote(version="1.0.0", to="production")
    production = Path(ckpt_dir).parent / "production"
    # A crash after the new file replaced the production copy, before the records were written.
    (production / "model.safetensors").write_bytes(Path(manager.path(2)).read_bytes())
    with pytest.raises(CorruptCheckpointError, match="promote"):
        manager.load_production()
    manager.promote(version="1.1.0", to="production")
    assert manager.load_production()["version"] == "1.1.0"
    assert [h.version for h in manager.production_history()] == ["1.0.0", "1.1.0"]


def test_custom_registry_dir(ckpt_dir: str, tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    manager = CheckpointManager(ckpt_dir, registry_dir=str(registry))
    manager.save(model={"w": torch.ones(1)}, epoch=0)
    manager.promote(epoch=0, to="validated", version="1.0.0")
    assert (registry / "validated" / "v1.0.0.json").exists()


@pytest.mark.parametrize(
    "ordered",
    [
        ["1.9.0", "1.10.0"],
        ["0.9.9", "1.0.0"],
        [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ],
        ["2.0.0", "2.1.0", "2.1.1", "10.0.0"],
    ],
)
def test_semver_ordering(ordered: list[str]) -> None:
    versions = [parse_version(v) for v in ordered]
    shuffled = versions[1::2] + versions[::2]
    assert sorted(shuffled) == versions
    assert [str(v) for v in sorted(versions, reverse=True)] == ordered[::-1]
    for smaller, larger in itertools.pairwise(versions):
        assert smaller < larger
        assert larger > smaller
        assert smaller != larger


def test_versions_are_listed_in_semver_order(ckpt_dir: str) -> None:
    manager = _manager(ckpt_dir, range(1))
    for version in ("1.10.0", "1.9.0", "1.0.0-rc.1", "1.0.0", "0.2.0"):
        manager.promote(epoch=0, to="validated", version=version)
    assert manager.versions() == ["0.2.0", "1.0.0-rc.1", "1.0.0", "1.9.0", "1.10.0"]


@pytest.mark.parametrize(
    "bad",
    [
        "1.0",
        "1.0.0.0",
        "01.0.0",
        "1.0.0-",
        "1.0.0-01",
        "v1.0.0",
        "",
        "1.0.0 ",
        "\u0661.0.0",
        "1.0.0/../x",
        1,
    ],
)
def test_invalid_versions(bad: object) -> None:
    with pytest.raises(InvalidVersionError):
        parse_version(bad)


@given(
    a=st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30)),
    b=st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30)),
)
def test_release_order_is_numeric(a: tuple[int, int, int], b: tuple[int, int, int]) -> None:
    va, vb = (parse_version(".".join(map(str, v))) for v in (a, b))
    assert (va < vb) == (a < b)
    assert (va == vb) == (a == b)
    assert parse_version(str(va)) == va
