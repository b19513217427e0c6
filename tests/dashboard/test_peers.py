"""The variant table and peer comparison pages, server side, with reads counted."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from epochstore.dashboard import callbacks
from epochstore.dashboard.app import view_boxes
from epochstore.dashboard.service import DashboardService, RunState
from epochstore.store import ArtifactStore
from epochstore.store.freshness import supersede

from .conftest import write_sweep

_OPENED: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _OPENED is not None and isinstance(args[0], str | Path):
        _OPENED.append(str(args[0]))


sys.addaudithook(_audit)  # audit hooks cannot be removed: this one records only when asked


@contextmanager
def opened_files() -> Iterator[list[str]]:
    """Every file this process opens inside the block."""
    global _OPENED
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None


def test_the_variant_table_reads_summaries_only(sweep_root: Path) -> None:
    service = DashboardService(sweep_root)
    with opened_files() as opened:
        rows, records, columns = callbacks.variant_table(service)
    under = [Path(f) for f in opened if Path(f).is_relative_to(sweep_root)]
    # One summary per run (and each variant.json, finding the runs): no chunk, no manifest.
    assert sorted(f.name for f in under) == ["summary.json"] * 4 + ["variant.json"] * 4
    assert [r["name"] for r in records] == [
        "toy/lr=0.05,seed=1", "toy/lr=0.05,seed=2", "toy/lr=0.2,seed=1", "toy/lr=0.2,seed=2"]
    ids = [c["id"] for c in columns]
    assert ids[:4] == ["name", "family", "param:lr", "param:seed"]
    assert "metric:loss" in ids
    assert all(r["analysed"] == 100.0 and r["stale"] == 0 for r in records)
    assert rows[0]["swept"] == {"lr": 0.05, "seed": 1}
    # A clicked cell opens its row's run.
    assert callbacks.opened_variant({"row": 2, "column_id": "stale",
                                     "row_id": records[2]["id"]}) == rows[2]["run"]
    assert callbacks.opened_variant(None) is None


def test_peer_overlay_reads_the_series_once_and_scatter_reads_nothing(
        sweep_root: Path, counting: Callable[..., Any]) -> None:
    c = counting(sweep_root)
    rows, _, _ = callbacks.variant_table(c.service)
    choices = callbacks.peer_choices(c.service, rows, "toy")
    assert [o["value"] for o in choices["families"]] == ["toy"]
    assert [o["value"] for o in choices["series"]] == [
        "metrics/loss", "output_norm/loss", "output_norm/norm", "weight_drift/distance"]
    assert next(o["label"] for o in choices["variants"]) == "lr=0.05, seed=1"
    assert c.chunk_keys() == []  # the choices come from manifests
    runs = [o["value"] for o in choices["variants"]]
    fig = callbacks.peer_overlay(c.service, rows, "toy", "output_norm/norm", runs)
    assert [t.name for t in fig.data] == ["lr=0.05, seed=1", "lr=0.05, seed=2",
                                          "lr=0.2, seed=1", "lr=0.2, seed=2"]
    assert all(list(t.x) == [0, 2, 4] for t in fig.data)
    keys = c.chunk_keys()
    assert keys
    assert {k.split("/")[1] for k in keys} == {"output_norm"}
    # The chosen field alone: its nodes, or its derived series (".series/norm.safetensors").
    assert all("/norm/" in k or k.endswith("/.series/norm.safetensors") for k in keys)
    c.reset()
    again = callbacks.peer_overlay(c.service, rows, "toy", "output_norm/norm", runs[:2])
    assert len(again.data) == 2
    assert c.chunk_keys() == []  # the series are kept
    scatter = callbacks.peer_scatter(rows, "toy", "lr", "final_metrics.loss", "seed")
    assert [len(t.x) for t in scatter.data] == [2, 2]
    assert c.chunk_keys() == []


def test_stale_epochs_are_marked(tmp_path: Path, counting: Callable[..., Any]) -> None:
    runs = write_sweep(tmp_path / "runs")
    supersede(ArtifactStore(runs[0]), "output_norm", "2", {})  # a newer analyzer version
    c = counting(tmp_path / "runs")
    state = RunState.from_dict(callbacks.select_run(c.service, runs[0], None))
    assert state.stale == {"output_norm": (0, 2, 4)}
    assert "3 stale epochs of output_norm" in state.message
    assert "--recompute-stale" in state.message
    badges = {b.id: b.children[0].children for b in view_boxes("a", state)
              if isinstance(b.children, list)}
    assert badges == {"a-output_norm__loss__curve": "stale: 3 of 3 epochs of output_norm",
                      "a-output_norm__norm__curve": "stale: 3 of 3 epochs of output_norm"}
    rows, _, _ = callbacks.variant_table(c.service)
    fig = callbacks.peer_overlay(c.service, rows, "toy", "output_norm/norm",
                                 [r["run"] for r in rows])
    assert fig.data[-1].name == "stale (older analyzer version)"
    assert list(fig.data[-1].x) == [0, 2, 4]


@pytest.mark.parametrize(("path", "shown"), [("/", 0), ("/variants", 1), ("/peers", 2),
                                         (None, 0), ("/nowhere", 0)])
def test_pages_by_path(path: str | None, shown: int) -> None:
    styles = callbacks.page_styles(path)
    assert [s["display"] for s in styles] == [
        "block" if i == shown else "none" for i in range(3)]
