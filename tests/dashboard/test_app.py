"""The Dash wiring, in process (Flask's test client), and the `serve` command line."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from epochstore.cli import build_parser, main
from epochstore.dashboard import callbacks
from epochstore.dashboard.app import create_app, graph_id, view_boxes
from epochstore.dashboard.service import DashboardService, RunState


def _ids(component: Any) -> set[str]:
    found = set()
    if getattr(component, "id", None):
        found.add(component.id)
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children]:
        if child is not None and not isinstance(child, str):
            found |= _ids(child)
    return found


def test_layout_lists_runs_per_page_load_and_boxes_follow_the_views(root: Path) -> None:
    app = create_app(root)
    layout = app.layout()
    ids = {i for i in _ids(layout) if isinstance(i, str)}
    assert {"run-a", "run-b", "epoch", "pickers", "status", "refresh", "selected",
            "views-a", "views-b"} <= ids
    service = DashboardService(root)
    state = RunState.from_dict(callbacks.select_run(service, str(root / "modadd" / "a"), None))
    boxes = view_boxes("a", state)
    assert [b.id for b in boxes] == [graph_id("a", v["name"]) for v in state.views]
    assert boxes[0].children.id == {"type": "epoch", "column": "a", "view": "dominant"}


def test_selecting_a_variant_over_http_reads_no_chunk(root: Path,
                                                      counting: Callable[..., Any]) -> None:
    c = counting(root)
    app = create_app(root, service=c.service)
    run = str(root / "modadd" / "a")
    response = app.server.test_client().post("/_dash-update-component", json={
        "output": "state-a.data",
        "outputs": {"id": "state-a", "property": "data"},
        "inputs": [{"id": "run-a", "property": "value", "value": run},
                   {"id": "refresh", "property": "n_intervals", "value": None}],
        "changedPropIds": ["run-a.value"],
        "state": [{"id": "state-a", "property": "data", "value": None}],
    })
    assert response.status_code == 200
    state = response.get_json()["response"]["state-a"]["data"]
    assert state["epochs"] == [0, 100, 200, 300, 400]
    assert c.chunk_keys() == []


def test_serve_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["serve", str(tmp_path), "--port", "9999"])
    assert (args.host, args.port, args.refresh) == ("127.0.0.1", 9999, 3.0)
    assert main(["serve", str(tmp_path / "nowhere")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_the_app_warms_up_in_the_background_and_covers_the_views(
        root: Path, counting: Callable[..., Any]) -> None:
    from plotly.validator_cache import ValidatorCache

    c = counting(root)
    app = create_app(root, service=c.service)
    assert app is not None
    assert c.service.warming is not None
    c.service.warming.join()
    assert c.chunk_keys() == []  # reads no run
    assert c.service.start_warm_up() is c.service.warming  # once per service
    # What the first panels of a run then still load: no plotly validator (a view using a
    # trace or layout property warm_up() does not draw would load it here).
    state = callbacks.select_run(c.service, str(root / "modadd" / "a"), None)
    loaded = set(ValidatorCache._cache)
    for scope in ("epoch", "across"):
        callbacks.view_figures(c.service, state, scope, 300, {"neuron": 3})
    # (Numbered subplot axes beyond the warm-up's two reuse the same validator classes.)
    subplots = re.compile(r"[xy]axis\d+")
    new = [k for k in set(ValidatorCache._cache) - loaded
           if not (k[0] == "layout" and subplots.fullmatch(k[1]))]
    assert sorted(new) == []
