"""Freshness: a changed analyzer version makes exactly its epochs stale; recompute rewrites them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from epochstore import AnalysisPipeline, ArtifactLoader, ArtifactStore
from epochstore.cli import main
from epochstore.store.manifest import SUPERSEDED_FORMAT, Superseded
from epochstore.testing.toy import HiddenActivations, OutputNorm, ToyFamily, WeightDrift

from .conftest import artifact_state, assert_bitwise_equal

EPOCHS = [0, 1, 2, 3, 5, 8]


def _bumped() -> list[Any]:
    return [HiddenActivations(), OutputNorm(version="2"), WeightDrift()]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    ToyFamily().train(str(tmp_path / "run"), {"epochs": EPOCHS})
    AnalysisPipeline(tmp_path / "run").run(progress=False)
    return tmp_path / "run"


def _epoch_attrs(run: Path, analyzer: str, epoch: int) -> dict[str, Any]:
    path = run / "artifacts" / analyzer / f"epoch_{epoch:05d}" / "zarr.json"
    attrs: dict[str, Any] = json.loads(path.read_text())["attributes"]
    return attrs


def test_changing_an_analyzer_version_makes_exactly_its_epochs_stale(run: Path) -> None:
    before = artifact_state(run)
    pipeline = AnalysisPipeline(run, analyzers=_bumped())
    plan = pipeline.plan()
    assert len(plan) == 0  # nothing missing
    assert plan.stale_pairs == [("output_norm", e) for e in EPOCHS]
    assert plan.stale_versions == {"output_norm": (("1",), "2")}
    assert "6 stale (analyzer, epoch) pairs" in plan.summary()

    # Not asked to recompute: nothing is rewritten, the epochs stay stale.
    assert pipeline.run(progress=False).written == []
    assert AnalysisPipeline(run, analyzers=_bumped()).plan().stale_pairs == plan.stale_pairs

    report = AnalysisPipeline(run, analyzers=_bumped()).run(progress=False, recompute_stale=True)
    assert sorted(report.written) == sorted(plan.stale_pairs)
    after = AnalysisPipeline(run, analyzers=_bumped()).plan()
    assert after.stale == ()
    assert len(after) == 0
    manifest = ArtifactLoader(run).manifest("output_norm")
    assert manifest.version == "2"
    assert manifest.superseded == ()
    assert _epoch_attrs(run, "output_norm", 5)["analyzer_version"] == "2"
    # The other analyzers are untouched; the old code now sees output_norm as stale.
    state = artifact_state(run)
    for key in before:
        if not key.startswith("output_norm"):
            assert_bitwise_equal(before[key], state[key], key)
    assert AnalysisPipeline(run).plan().stale_pairs == [("output_norm", e) for e in EPOCHS]


def test_missing_epochs_of_a_new_version_leave_the_old_ones_listed_as_stale(run: Path) -> None:
    ArtifactStore(run).delete_epoch("output_norm", 8)
    report = AnalysisPipeline(run, analyzers=_bumped()).run(progress=False)
    assert report.written == [("output_norm", 8)]
    manifest = ArtifactLoader(run).manifest("output_norm")
    assert manifest.version == "2"
    assert manifest.superseded == (Superseded("1", {}, tuple(EPOCHS[:-1])),)
    plan = AnalysisPipeline(run, analyzers=_bumped()).plan()
    assert plan.stale_pairs == [("output_norm", e) for e in EPOCHS[:-1]]
    root = json.loads((run / "artifacts" / "zarr.json").read_text())
    assert root["attributes"]["epochstore_format"] == SUPERSEDED_FORMAT == 2


def test_analyze_cli_reports_stale_and_recomputes_them(
    run: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ToyFamily, "analyzers", lambda self: _bumped())
    assert main(["analyze", str(run), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "0 missing" in err
    assert "6 stale (analyzer, epoch) pairs" in err
    assert "output_norm 6 (version 1 -> 2)" in err
    assert main(["analyze", str(run), "--quiet", "--recompute-stale"]) == 0
    assert "wrote 6 (analyzer, epoch) pairs" in capsys.readouterr().err
    assert AnalysisPipeline(run).plan().stale == ()


def test_planning_on_s3_costs_the_same_requests_whatever_the_number_of_epochs(s3: Any) -> None:
    counts = []
    for n in (3, 9):
        url = s3.url("run")
        ToyFamily().train(url, {"epochs": list(range(n))}, storage_options=s3.storage_options)
        AnalysisPipeline(url, storage_options=s3.storage_options).run(progress=False)
        s3.server.reset_requests()
        plan = AnalysisPipeline(url, analyzers=_bumped(), storage_options=s3.storage_options).plan()
        counts.append(s3.server.reset_requests())
        assert len(plan.stale_pairs) == n
    assert counts[0] == counts[1]
