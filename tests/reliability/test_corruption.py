"""Damage is detected on read, reported by `epochstore verify`, removed by `epochstore repair`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from epochstore import (
    AnalysisPipeline,
    ArtifactLoader,
    CorruptArtifactError,
    EpochstoreError,
)
from epochstore.cli import main
from epochstore.reliability import repair_run, verify_run


def _chunk(run: Path, analyzer: str, epoch: int, field: str) -> Path:
    field_dir = run / "artifacts" / analyzer / f"epoch_{epoch:05d}" / field
    (path,) = [p for p in field_dir.rglob("*") if p.is_file() and p.name != "zarr.json"]
    return path


def _flip(path: Path, offset: int = -6) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


DAMAGES = {
    "flipped byte": lambda p: _flip(p),
    "truncated chunk": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "empty chunk": lambda p: p.write_bytes(b""),
    "deleted chunk": lambda p: p.unlink(),
    "deleted array metadata": lambda p: next(
        d / "zarr.json" for d in p.parents if (d / "zarr.json").exists()
    ).unlink(),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_artifact_is_an_error_naming_analyzer_and_epoch(
    analysed_run: Path, damage: str
) -> None:
    intact = ArtifactLoader(analysed_run).load_epochs("hidden_activations")["activations"].values
    DAMAGES[damage](_chunk(analysed_run, "hidden_activations", 2, "activations"))
    loader = ArtifactLoader(analysed_run)
    with pytest.raises(EpochstoreError, match=r"'hidden_activations'.*epoch 2|epoch 2.*hidden"):
        loader.load_epoch("hidden_activations", 2)["activations"].values  # noqa: B018
    if damage == "deleted array metadata":
        # load_epochs reads no per-epoch metadata (every epoch has the manifest's layout):
        # the chunks are intact and checksummed, so it returns the right values; verify (below)
        # still reports the epoch.
        values = loader.load_epochs("hidden_activations")["activations"].values
        np.testing.assert_array_equal(values, intact)
    else:
        with pytest.raises(EpochstoreError):
            loader.load_epochs("hidden_activations")["activations"].values  # noqa: B018
    # Undamaged epochs still load.
    assert loader.load_epoch("hidden_activations", 1)["activations"].values.shape == (16, 32)

    result = verify_run(analysed_run)
    assert not result.ok
    assert [(d.analyzer, d.epoch) for d in result.damaged] == [("hidden_activations", 2)]
    assert result.epochs_checked == 3 * 4 - 1


def test_verify_and_repair_commands_then_analyze_recomputes(
    analysed_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = ArtifactLoader(analysed_run).load_epoch("output_norm", 3).load()
    _flip(_chunk(analysed_run, "output_norm", 3, "norm"))
    assert main(["verify", str(analysed_run)]) == 1
    out = capsys.readouterr().out
    assert "DAMAGED artifact output_norm/epoch 3 field norm" in out
    assert main(["repair", str(analysed_run)]) == 0
    assert ArtifactLoader(analysed_run).get_epochs("output_norm") == [0, 1, 2]
    assert main(["verify", str(analysed_run)]) == 0
    report = AnalysisPipeline(analysed_run).run(progress=False)
    assert report.written == [("output_norm", 3)]
    after = ArtifactLoader(analysed_run).load_epoch("output_norm", 3).load()
    np.testing.assert_allclose(after["norm"].values, before["norm"].values, rtol=1e-6)


def test_analyze_recompute_damaged(analysed_run: Path) -> None:
    _flip(_chunk(analysed_run, "hidden_activations", 0, "activations"))
    assert main(["analyze", str(analysed_run), "--recompute-damaged", "--quiet"]) == 0
    assert verify_run(analysed_run).ok


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_damaged_checkpoint_is_reported_and_skipped(analysed_run: Path, damage: str) -> None:
    path = analysed_run / "checkpoints" / "checkpoint_epoch_00001.safetensors"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "flip":
        _flip(path, len(path.read_bytes()) // 2)
    else:
        path.unlink()
    result = verify_run(analysed_run)
    assert [p for p, _ in result.checkpoint_problems] == [str(path)]
    # repair never deletes checkpoints; the pipeline reports and skips the damaged one.
    repair_run(analysed_run)
    assert (analysed_run / "checkpoints").exists()
    from epochstore import ArtifactStore

    ArtifactStore(analysed_run).delete_epoch("output_norm", 1)
    report = AnalysisPipeline(analysed_run).run(progress=False)
    assert list(report.failed) == [1]


def test_corrupt_artifact_error_is_an_oserror() -> None:
    assert issubclass(CorruptArtifactError, OSError)
