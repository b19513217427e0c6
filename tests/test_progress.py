"""Progress: one live bar on a terminal, ~20 plain lines in a log, nothing when quiet.

Lines are counted, never timed: the 30-second rule is switched off with ``line_seconds``.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from epochstore.cli import main
from epochstore.progress import Progress


class Terminal(io.StringIO):
    """A stream that says it is a terminal (what tqdm draws a live bar on)."""

    def isatty(self) -> bool:
        return True


def test_a_log_gets_a_line_every_five_percent() -> None:
    log = io.StringIO()
    with Progress(400, "analyze run", file=log, line_seconds=3600) as bar:
        for _ in range(400):
            bar.advance()
    lines = log.getvalue().splitlines()
    assert len(lines) == 20
    assert lines[0].startswith("analyze run:   5% 20/400 epoch [")
    assert lines[-1].startswith("analyze run: 100% 400/400 epoch [")
    assert "\r" not in log.getvalue()


def test_quiet_prints_nothing() -> None:
    log = Terminal()
    with Progress(10, "train", file=log, enabled=False) as bar:
        for epoch in range(10):
            bar.training_callback()(epoch, {"train_loss": 1.0})
        bar.write("a message")
    assert log.getvalue() == ""


def test_a_resumed_run_counts_from_its_first_epoch_and_shows_checkpoint_metrics() -> None:
    log = io.StringIO()
    with Progress(100, "train", file=log, initial=None, line_seconds=3600) as bar:
        report = bar.training_callback()
        for epoch in range(60, 100):
            metrics = {"train_loss": 0.5, "train_accuracy": 1.0}
            if epoch % 10 == 0:
                metrics |= {"test_loss": 2.0, "test_accuracy": 0.25}
            report(epoch, metrics)
    lines = log.getvalue().splitlines()
    # 61..100 crosses eight 5% marks (65, 70, ..., 100).
    assert len(lines) == 8
    assert "100/100" in lines[-1]
    assert "test_accuracy=0.25" in lines[-1]
    assert "train_loss=0.5" in lines[-1]


def test_a_terminal_gets_one_live_bar_with_metrics() -> None:
    term = Terminal()
    with Progress(50, "train", file=term, initial=None) as bar:
        report = bar.training_callback()
        for epoch in range(50):
            report(epoch, {"train_loss": 0.1, "test_accuracy": 0.9})
        bar.write("epoch 3: skipped")
    text = term.getvalue()
    assert "\r" in text  # redrawn in place, not one line per epoch
    assert text.count("\n") == 2  # the message, and the bar left on screen when it closes
    assert "50/50" in text
    assert "test_accuracy=0.9" in text


def test_unknown_total_writes_one_closing_line() -> None:
    log = io.StringIO()
    with Progress(None, "train", file=log, line_seconds=3600) as bar:
        for _ in range(7):
            bar.advance()
    lines = log.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("train: 7 epoch [")


def test_train_command_logs_a_few_lines_not_one_per_epoch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(["train", str(run), "--family", "modadd", "--set", "p=5", "--set", "d_mlp=8",
                 "--set", "num_epochs=400", "--set", "checkpoint_epochs=[0,100,200,300]"]) == 0
    err = capsys.readouterr().err.splitlines()
    progress = [line for line in err if line.startswith(f"train {run}:")]
    assert len(progress) == 20
    assert "400/400" in progress[-1]
    assert "test_accuracy=" in progress[-1]
    assert err[-1].startswith(f"trained {run} in ")
    assert main(["analyze", str(run), "--analyzers", "dominant_frequencies"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert sum(line.startswith(f"analyze {run}:") for line in err) == 5  # 5 checkpoints
