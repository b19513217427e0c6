"""The variant summary and table: `epochstore ls ROOT` shows what the stored data says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from epochstore import ArtifactLoader, peer_series, variant_table
from epochstore.checkpoints import CheckpointManager
from epochstore.cli import main
from epochstore.families.modadd.family import CIRCUIT_LOSS
from epochstore.interface import EventSpec
from epochstore.summary import SUMMARY_FILE, read_summary, summarize
from epochstore.testing.synthetic_modadd import write_synthetic_run

SMALL = ["--set", "d_model=32", "--set", "d_mlp=64", "--set", "n_heads=2", "--set", "d_head=16",
         "--set", "num_epochs=60", "--set", "checkpoint_epochs=[0,20,30,40,50,59]",
         "--set", "lr=0.01", "--set", "frac_train=0.8"]


def _first(records: Any, metric: str) -> int | None:
    return next((r.epoch for r in records if r.metrics[metric] >= 0.99), None)


def test_ls_shows_each_variant_with_the_events_its_metrics_say(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "sweep"
    argv = ["train", str(root), "--family", "modadd", "--sweep", "p=17,19", "--threads", "1",
            "--quiet", *SMALL]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["ls", str(root), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["run"] for row in rows] == [str(root / "modadd" / f"p={p}") for p in (17, 19)]
    for row, p in zip(rows, (17, 19), strict=True):
        records = CheckpointManager(checkpoint_dir=Path(row["run"], "checkpoints"),
                                    read_only=True).records()
        assert row["swept"] == {"p": p}
        assert row["checkpoints"] == 6
        assert row["finished"] is True
        assert row["analysed"] == 0.0
        assert row["final_metrics"] == dict(records[-1].metrics)
        assert row["events"]["memorisation"] == _first(records, "train_accuracy")
        assert row["events"]["memorisation"] is not None
        assert row["events"]["grokking"] == _first(records, "test_accuracy")
        assert row["events"]["circuit_formation"] is None  # progress_measures not analysed
    assert main(["ls", str(root)]) == 0
    table = capsys.readouterr().out.splitlines()
    header = table[0].split()
    assert header[:3] == ["run", "family", "p"]
    assert "grokking@" in header
    assert "memorisation@" in header
    for line, row in zip(table[1:], rows, strict=True):
        cells = dict(zip(header, line.split(), strict=True))
        assert cells["memorisation@"] == str(row["events"]["memorisation"])
        grokked = row["events"]["grokking"]
        assert cells["grokking@"] == ("-" if grokked is None else str(grokked))


def test_events_from_artifacts_and_the_summary_is_rebuildable(tmp_path: Path) -> None:
    run = write_synthetic_run(tmp_path / "runs" / "syn", range(0, 100, 10), p=11, d_mlp=8,
                              key_frequencies=(2, 4))
    assert read_summary(run, rebuild=False) is None  # nothing written yet: derived data
    summary = summarize(run)
    loss = ArtifactLoader(run).load_epochs("progress_measures")["restricted_loss"]
    expected = next(int(e) for e, v in zip(loss["epoch"].values, loss.values, strict=True)
                    if v <= CIRCUIT_LOSS)
    assert summary.events["circuit_formation"] == expected
    assert summary.events["memorisation"] is None  # no checkpoints: no metrics
    assert summary.checkpoints == 0
    assert summary.analysed == 0.0
    rows = variant_table(tmp_path / "runs")
    assert rows[0]["events"] == dict(summary.events)
    assert not (run / SUMMARY_FILE).exists()  # listing never writes


def test_event_spec_first_epoch() -> None:
    spec = EventSpec("grokking", "metrics", "test_accuracy", ">=", 0.99)
    assert spec.first_epoch([0, 10, 20], [0.1, float("nan"), 0.995]) == 20
    assert spec.first_epoch([0, 10], [0.1, 0.2]) is None
    with pytest.raises(ValueError, match="op"):
        EventSpec("x", "metrics", "y", "==", 1.0)  # type: ignore[arg-type]


def test_peer_series_aligns_runs_by_epoch_with_swept_params_as_coords(tmp_path: Path) -> None:
    from epochstore import sweep
    from epochstore.testing.toy import ToyFamily

    report = sweep(tmp_path, ToyFamily(), {"seed": [1, 2]}, overrides={"epochs": [0, 2, 4]},
                   threads=1, progress=False)
    series = peer_series(report.runs, "metrics", "loss")
    assert series.dims == ("run", "epoch")
    assert series["epoch"].values.tolist() == [0, 2, 4]
    assert series["seed"].values.tolist() == [1, 2]
    assert np.isfinite(series.values).all()


def test_the_summary_reads_the_checkpoint_manifest_by_its_name() -> None:
    from epochstore.checkpoints.manifest import MANIFEST_NAME
    from epochstore.summary import _CHECKPOINT_MANIFEST

    assert _CHECKPOINT_MANIFEST == MANIFEST_NAME
