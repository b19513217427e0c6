"""Crash anywhere: SIGKILL train+analyze at random moments; resuming equals a clean run.

Seeded trials. The default run does a few; ``pytest -m soak`` runs many (see docs/reliability.md).
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# torch: absent in the store-only CI job (Python 3.12), where these tests skip.
pytest.importorskip("torch")

from epochstore import CheckpointManager
from epochstore.testing.snapshots import assert_same, snapshot

SCRIPT = Path(__file__).with_name("crash_process.py")
N_EPOCHS = 12


def _start(run: Path) -> tuple[subprocess.Popen[str], float]:
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(run), str(N_EPOCHS)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc, time.monotonic()


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float, dict]:
    run = tmp_path_factory.mktemp("clean") / "run"
    proc, started = _start(run)
    assert proc.wait(timeout=300) == 0
    return run, time.monotonic() - started, snapshot(run)


def _trials(tmp_path: Path, clean_run: tuple[Path, float, dict], trials: int, seed: int) -> int:
    clean, duration, expected = clean_run
    clean_epochs = CheckpointManager(clean / "checkpoints", read_only=True).epochs()
    rng = random.Random(seed)
    kills = 0
    for trial in range(trials):
        run = tmp_path / f"trial{trial}"
        proc, _ = _start(run)
        time.sleep(rng.uniform(0, duration))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        # Right after the kill: whatever is committed verifies and equals the clean run.
        if (run / "checkpoints").exists():
            report = CheckpointManager(run / "checkpoints", read_only=True).verify()
            assert not report.problems, report.problems
        if (run / "artifacts").exists():
            assert_same(snapshot(run), expected, subset=True, rtol=1e-5)
        # Resume to completion: identical to the clean run.
        proc, _ = _start(run)
        assert proc.wait(timeout=300) == 0
        assert CheckpointManager(run / "checkpoints", read_only=True).epochs() == clean_epochs
        final = snapshot(run)
        assert final.keys() == expected.keys()
        assert_same(final, expected, subset=True, rtol=1e-5)
    return kills


def test_sigkill_train_and_analyze_then_resume(
    tmp_path: Path, clean_run: tuple[Path, float, dict]
) -> None:
    assert _trials(tmp_path, clean_run, trials=3, seed=7) >= 2


@pytest.mark.soak
def test_sigkill_soak(tmp_path: Path, clean_run: tuple[Path, float, dict]) -> None:
    assert _trials(tmp_path, clean_run, trials=100, seed=8) >= 90
