"""Analyse while training: following a sweep ends with the store of train-then-analyse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from epochstore import AnalysisPipeline, sweep
from epochstore.cli import main
from epochstore.pipeline.many import follow
from epochstore.testing.toy import ToyFamily

from .conftest import artifact_state, assert_bitwise_equal

SLOW_SWEEP = Path(__file__).with_name("_slow_sweep.py")
SWEEP = {"seed": [1, 2]}
OVERRIDES = {"epochs": [0, 1, 2, 3, 5, 8]}


def test_following_a_training_sweep_ends_with_the_store_of_train_then_analyse(
    tmp_path: Path,
) -> None:
    root = tmp_path / "followed"
    trainer = subprocess.Popen(
        [sys.executable, str(SLOW_SWEEP), str(root), json.dumps(SWEEP), json.dumps(OVERRIDES),
         "0.4"],
        stdout=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    try:
        report = follow(root, poll=0.1, idle_timeout=60, progress=False, log=lines.append)
    finally:
        trainer.wait(timeout=120)
    assert trainer.returncode == 0
    assert report.ok
    assert sum("training finished and every checkpoint is analysed" in line
               for line in lines) == 2
    # Every pair was written at least once (some twice: weight_drift's params come from the
    # last checkpoint, which changed while training went on).
    assert len(report.written) >= 2 * 3 * len(OVERRIDES["epochs"])

    reference = tmp_path / "reference"
    done = sweep(reference, ToyFamily(), SWEEP, overrides=OVERRIDES, threads=1, progress=False)
    for run in done.runs:
        AnalysisPipeline(run).run(progress=False)
    for name in ("seed=1", "seed=2"):
        assert_bitwise_equal(
            artifact_state(root / "toy" / name), artifact_state(reference / "toy" / name), name
        )


def test_a_run_that_never_records_its_end_is_given_up_after_the_idle_timeout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ToyFamily().train(str(tmp_path / "root" / "run"), {"epochs": [0, 1]})  # no training.json
    argv = ["analyze", str(tmp_path / "root"), "--follow", "--poll", "0.1", "--idle-timeout",
            "1", "--quiet"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "wrote 6 (analyzer, epoch) pairs of 1 runs" in err  # what there was, then gave up
    assert "stopped following" in err
    assert "did not record that it finished" in err
