"""Peer figures: one trace per run, legend and colour from the swept params, scatter points."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from epochstore.viz.peers import (
    peer_overlay,
    peer_scatter,
    summary_keys,
    variant_columns,
    variant_records,
)


def _series() -> xr.DataArray:
    runs = ["r/a", "r/b", "r/c", "r/d"]
    values = np.array([[1.0, 0.5, 0.1], [1.0, 0.4, np.nan], [2.0, 1.0, 0.5],
                       [2.0, 0.9, 0.4]])
    return xr.DataArray(values, dims=("run", "epoch"),
                        coords={"run": runs, "epoch": [0, 10, 20],
                                "wd": ("run", [0.1, 0.1, 1.0, 1.0]),
                                "seed": ("run", [1, 2, 1, 2])},
                        name="metrics.test_loss")


def _rows() -> list[dict[str, Any]]:
    def row(run: str, wd: float, seed: int, grok: int | None, acc: float) -> dict[str, Any]:
        return {"run": f"/root/fam/{run}", "family": "fam", "installed": True,
                "analyzers": ["x"], "swept": {"wd": wd, "seed": seed},
                "final_metrics": {"test_accuracy": acc}, "checkpoints": 3, "last_epoch": 20,
                "analysed": 2 / 3, "stale": 1 if run == "a" else 0,
                "events": {"grokking": grok}, "finished": True}

    return [row("a", 0.1, 1, 400, 1.0), row("b", 0.1, 2, 500, 0.99),
            row("c", 1.0, 1, 100, 1.0), row("d", 1.0, 2, None, float("nan"))]


def test_overlay_has_one_trace_per_run_named_and_coloured_by_swept_params() -> None:
    fig = peer_overlay(_series(), stale={"r/c": [10]})
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["wd=0.1, seed=1", "wd=0.1, seed=2", "wd=1.0, seed=1",
                                       "wd=1.0, seed=2"]
    assert [t.meta["run"] for t in lines] == ["r/a", "r/b", "r/c", "r/d"]
    # Colour follows the first param, the dash the second.
    assert lines[0].line.color == lines[1].line.color != lines[2].line.color
    assert lines[0].line.dash == lines[2].line.dash != lines[1].line.dash
    assert list(lines[1].x) == [0, 10]  # a missing epoch is left out, not drawn as 0
    stale = fig.data[-1]
    assert (list(stale.x), list(stale.y)) == ([10], [1.0])
    assert fig.layout.legend.title.text == "wd, seed"
    assert fig.layout.title.text == "metrics.test_loss: 4 variants"


def test_overlay_without_swept_params_names_runs_and_a_log_axis_for_decades() -> None:
    series = xr.DataArray([[1e-4, 1.0], [1e-3, 2.0]], dims=("run", "epoch"),
                          coords={"run": ["x/one", "x/two"], "epoch": [0, 1]})
    fig = peer_overlay(series, names={"x/one": "first"})
    assert [t.name for t in fig.data] == ["first", "two"]
    assert fig.layout.yaxis.type == "log"
    empty = peer_overlay(series.isel(run=[]))
    assert "No variant" in empty.layout.meta["epochstore_message"]


def test_scatter_one_point_per_variant_with_the_value_and_a_note_for_the_rest() -> None:
    rows = _rows()
    assert summary_keys(rows) == ["events.grokking", "final_metrics.test_accuracy"]
    fig = peer_scatter(rows, "wd", "events.grokking", color="seed")
    assert [t.name for t in fig.data] == ["seed=1", "seed=2"]
    assert [(list(t.x), list(t.y)) for t in fig.data] == [([0.1, 1.0], [400, 100]),
                                                          ([0.1], [500])]
    assert fig.layout.meta["missing"] == ["wd=1.0, seed=2"]
    assert fig.layout.xaxis.type == "linear"
    alone = peer_scatter(rows, "seed", "final_metrics.test_accuracy")
    assert len(alone.data) == 1
    assert list(alone.data[0].y) == [1.0, 0.99, 1.0]  # NaN is no point


def test_table_columns_and_records_from_rows() -> None:
    rows = _rows()
    columns = variant_columns(rows)
    assert [c["id"] for c in columns] == [
        "name", "family", "param:seed", "param:wd", "checkpoints", "analysed", "stale",
        "metric:test_accuracy", "event:grokking", "finished"]
    records = variant_records(rows, "/root")
    assert records[0]["id"] == "/root/fam/a"
    assert records[0]["name"] == "fam/a"
    assert records[0]["analysed"] == 66.7
    assert records[3]["metric:test_accuracy"] is None
    assert records[3]["event:grokking"] is None
