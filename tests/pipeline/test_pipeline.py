"""AnalysisPipeline end to end on the toy family: plans, resumes, parallel runs, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from epochstore import AnalysisPipeline, ArtifactLoader, ArtifactStore, EpochstoreError
from epochstore.errors import FamilyNotFoundError, SchemaMismatchError
from epochstore.interface import FieldSpec
from epochstore.testing.snapshots import assert_same, snapshot
from epochstore.testing.toy import ToyFamily

EPOCHS = [0, 1, 2, 3, 5, 8]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    ToyFamily().train(str(tmp_path / "run"), {"epochs": EPOCHS})
    return tmp_path / "run"


def test_plan_lists_every_missing_pair_and_run_computes_them(run: Path) -> None:
    pipeline = AnalysisPipeline(run)
    plan = pipeline.plan()
    assert plan.epochs == tuple(EPOCHS)
    assert len(plan) == 3 * len(EPOCHS)
    report = pipeline.run(progress=False)
    assert report.ok
    assert sorted(report.written) == sorted(plan.pairs)
    loader = ArtifactLoader(run)
    assert loader.get_available_analyzers() == [
        "hidden_activations", "output_norm", "weight_drift"
    ]
    assert loader.get_epochs("output_norm") == EPOCHS
    ds = loader.load_epochs("weight_drift")
    # The final checkpoint's drift from itself is zero; params came from prepare() once.
    assert float(ds["distance"].sel(epoch=8)) == pytest.approx(0.0, abs=1e-6)
    assert float(ds["distance"].sel(epoch=0)) > 0
    assert "final_hidden" in loader.manifest("weight_drift").params
    losses = loader.load_epochs("output_norm")["loss"].values
    assert np.all(np.isfinite(losses))


def test_second_run_is_a_no_op(run: Path) -> None:
    AnalysisPipeline(run).run(progress=False)
    before = snapshot(run)
    pipeline = AnalysisPipeline(run)
    assert len(pipeline.plan()) == 0
    report = pipeline.run(progress=False)
    assert report.written == []
    assert_same(before, snapshot(run))


def test_adding_an_analyzer_computes_only_that_analyzer(run: Path) -> None:
    AnalysisPipeline(run, analyzers=["output_norm"]).run(progress=False)
    pipeline = AnalysisPipeline(run)
    assert {name for name, _ in pipeline.plan().pairs} == {"hidden_activations", "weight_drift"}
    events: list[tuple[int, int]] = []
    report = pipeline.run(
        progress=False, callback=lambda r, done, total: events.append((done, total))
    )
    assert {name for name, _ in report.written} == {"hidden_activations", "weight_drift"}
    assert events[-1] == (len(EPOCHS), len(EPOCHS))


def test_missing_epochs_only(run: Path) -> None:
    AnalysisPipeline(run).run(progress=False)
    ArtifactStore(run).delete_epoch("hidden_activations", 3)
    report = AnalysisPipeline(run).run(progress=False)
    assert report.written == [("hidden_activations", 3)]


def test_two_workers_equal_one(tmp_path: Path) -> None:
    runs = []
    for name in ("seq", "par"):
        ToyFamily().train(str(tmp_path / name), {"epochs": EPOCHS})
        runs.append(tmp_path / name)
    AnalysisPipeline(runs[0]).run(progress=False)
    report = AnalysisPipeline(runs[1]).run(workers=2, progress=False)
    assert report.ok
    assert len(report.written) == 3 * len(EPOCHS)
    assert_same(snapshot(runs[0]), snapshot(runs[1]))


def test_resume_after_sigkill_equals_a_clean_run(tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    ToyFamily().train(str(clean), {"epochs": list(range(40))})
    AnalysisPipeline(clean).run(progress=False)
    killed = tmp_path / "killed"
    ToyFamily().train(str(killed), {"epochs": list(range(40))})
    code = (
        "import sys; from epochstore import AnalysisPipeline\n"
        "from epochstore.testing import toy; toy.register()\n"
        "AnalysisPipeline(sys.argv[1]).run(progress=False, "
        "callback=lambda r, d, t: print(d, flush=True))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(killed)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    for _ in range(5):  # let it write a few epochs, then kill it mid-run
        proc.stdout.readline()
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = AnalysisPipeline(killed).plan()
    assert 0 < len(partial) < 3 * 40
    AnalysisPipeline(killed).run(progress=False)
    assert len(AnalysisPipeline(killed).plan()) == 0
    assert_same(snapshot(clean), snapshot(killed))


def test_a_corrupt_checkpoint_is_reported_and_skipped(run: Path) -> None:
    path = run / "checkpoints" / "checkpoint_epoch_00002.safetensors"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    report = AnalysisPipeline(run, analyzers=["output_norm"]).run(progress=False)
    assert list(report.failed) == [2]
    assert "sha256" in report.failed[2] or "Corrupt" in report.failed[2]
    assert ArtifactLoader(run).get_epochs("output_norm") == [e for e in EPOCHS if e != 2]


def test_bad_input(tmp_path: Path, run: Path) -> None:
    with pytest.raises(FamilyNotFoundError, match="toy"):
        AnalysisPipeline(run, family="no_such_family")
    with pytest.raises(FamilyNotFoundError, match="output_norm"):
        AnalysisPipeline(run, analyzers=["nope"])
    with pytest.raises(EpochstoreError, match=r"variant\.json"):
        AnalysisPipeline(tmp_path / "not_a_run")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "variant.json").write_text((run / "variant.json").read_text())
    with pytest.raises(EpochstoreError, match="no committed checkpoints"):
        AnalysisPipeline(empty).plan()
    with pytest.raises(EpochstoreError, match=r"\[4\]"):
        AnalysisPipeline(run).plan(epochs=[4])


def test_run_level_params_come_from_the_whole_run_not_the_epoch_subset(run: Path) -> None:
    AnalysisPipeline(run, analyzers=["weight_drift"]).run(epochs=[0, 1], progress=False)
    drift = ArtifactLoader(run).load_epochs("weight_drift")["distance"]
    AnalysisPipeline(run, analyzers=["weight_drift"]).run(progress=False)
    full = ArtifactLoader(run).load_epochs("weight_drift")["distance"]
    # The final checkpoint (epoch 8) is at distance 0 from itself, and epochs 0 and 1 computed
    # first agree with the rest: they used the same final checkpoint.
    assert float(full.sel(epoch=8)) == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(drift.values, full.sel(epoch=[0, 1]).values)


def test_codec_applies_to_new_analyzers_only(run: Path) -> None:
    from epochstore import Codec
    from epochstore.errors import InvalidCodecError

    AnalysisPipeline(run, analyzers=["output_norm"]).run(progress=False)
    report = AnalysisPipeline(run, codec="archival").run(progress=False, workers=2)
    assert report.ok
    loader = ArtifactLoader(run)
    assert loader.manifest("output_norm").codec == Codec()  # created before: keeps LZ4
    assert loader.manifest("hidden_activations").codec == Codec(cname="zstd", clevel=1)
    meta = (run / "artifacts" / "hidden_activations" / "epoch_00003" / "activations" / "zarr.json")
    assert '"cname": "zstd"' in meta.read_text()
    with pytest.raises(InvalidCodecError, match="archival"):
        AnalysisPipeline(run, codec="gzip-9")


def test_analyzer_listed_twice_names_it_and_the_fix(run: Path) -> None:
    with pytest.raises(ValueError, match="'weight_drift' is listed twice") as info:
        AnalysisPipeline(run, analyzers=["weight_drift", "weight_drift"])
    assert "list each analyzer once" in str(info.value)


def test_old_attribute_names_warn(run: Path) -> None:
    pipeline = AnalysisPipeline(run)
    assert pipeline.location == os.fspath(run)
    with pytest.warns(DeprecationWarning, match="AnalysisPipeline.artifacts"):
        assert pipeline.store is pipeline.artifacts
    with pytest.warns(DeprecationWarning, match="AnalysisPipeline.location"):
        assert pipeline.run_dir == pipeline.location


@dataclass
class _ShapeShifter:
    """Writes 2 values at epoch 0 and 3 after: the store refuses its second epoch."""

    name: str = "shape_shifter"
    version: str = "1"
    fields: Mapping[str, FieldSpec] = field(
        default_factory=lambda: {"x": FieldSpec(("i",), "float32")}
    )

    def prepare(self, run: Any) -> Mapping[str, Any]:
        return {}

    def compute(self, model: Any, cache: Any, probe: Any, context: Any) -> dict[str, np.ndarray]:
        return {"x": np.zeros(2 if context.epoch == 0 else 3, dtype=np.float32)}


def test_a_failed_write_stops_the_task_and_raises_after_the_writes_before_it(run: Path) -> None:
    # Results are written on a background thread while the next analyzer computes; a failed
    # write must still end the task with its error, keep what was written before it in the
    # analyzer order, and write nothing after it.
    toy = {a.name: a for a in ToyFamily().analyzers()}
    analyzers = [toy["output_norm"], _ShapeShifter(), toy["weight_drift"]]
    pipeline = AnalysisPipeline(run, analyzers=analyzers)
    with pytest.raises(SchemaMismatchError, match="shape_shifter"):
        pipeline.run(workers=1, progress=False)
    loader = ArtifactLoader(run)
    assert loader.get_epochs("shape_shifter") == [0]
    assert loader.get_epochs("output_norm") == [0, 1]  # written before the failed write
    assert loader.get_epochs("weight_drift") == [0]  # after it: not written
