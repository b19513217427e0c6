"""SIGKILL during saves, at seeded random moments, never yields a checkpoint that loads wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from epochstore.checkpoints import CheckpointManager
from epochstore.naming import parse_checkpoint_name

_WRITER = Path(__file__).with_name("_crash_writer.py")
_TRIALS = 20


def _expected(epoch: int) -> tuple[float, float]:
    return float(epoch), -float(epoch)


@pytest.mark.skipif(sys.platform == "win32", reason="needs fork and SIGKILL")
def test_sigkill_during_save_never_yields_a_wrong_checkpoint(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(_WRITER), str(tmp_path), str(_TRIALS), "20240611"],
        cwd=tmp_path,
        check=True,
        timeout=120,
    )
    saved = 0
    for trial in range(_TRIALS):
        directory = tmp_path / f"trial{trial}"
        if not directory.exists():
            continue
        manager = CheckpointManager(
            str(directory), max_checkpoints=3, keep_every=5, stale_after=0
        )  # opening cleans up after the killed writer
        assert not [p for p in directory.iterdir() if p.name.endswith(".partial")]
        report = manager.verify()
        assert report.ok, report.problems
        epochs = manager.epochs()
        saved += len(epochs)
        for epoch in epochs:
            checkpoint = manager.load(epoch)
            weight, exp_avg = _expected(epoch)
            assert torch.all(checkpoint["model"]["layer.weight"] == weight)
            assert torch.all(checkpoint["model"]["layer.bias"] == weight)
            assert checkpoint["optimizer"] is not None
            assert torch.all(checkpoint["optimizer"]["state"][0]["exp_avg"] == exp_avg)
            assert checkpoint["config"] == {"epoch": epoch}
        # At most the one file being committed when the writer died is left uncommitted.
        uncommitted = [parse_checkpoint_name(Path(p).name) for p in report.uncommitted]
        assert len(uncommitted) <= 1
        if epochs:
            assert manager.load_latest()["epoch"] == epochs[-1]
            assert all(e is not None and e > epochs[-1] for e in uncommitted)
        # Training resumes: the next save succeeds, replacing an uncommitted leftover.
        resume = uncommitted[0] if uncommitted else (epochs[-1] + 1 if epochs else 0)
        assert resume is not None
        manager.save(model={"layer.weight": torch.zeros(1)}, epoch=resume)
        final = manager.verify()
        assert final.ok
        assert not final.uncommitted
    assert saved > _TRIALS  # the writers got far enough for the test to mean something
