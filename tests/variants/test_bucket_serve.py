"""Roots in a bucket, shown: a sweep trained into s3:// (moto's server) is served and reported.

The sweep is trained and analysed once for the module; the dashboard is built on its URL with
``storage_options`` and driven through its callbacks and Flask's test client, the report is
written by the command line. The session's default S3 endpoint is a dead port (see
``tests/conftest.py``), so any read that lost the options fails instead of passing unseen.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from epochstore import StorageUnreachableError
from epochstore.cli import main
from epochstore.dashboard import callbacks
from epochstore.dashboard.app import create_app
from epochstore.dashboard.service import DashboardService, RunState

pytest.importorskip("torch")

#: The toy sweep's epochs (small: the point is where the data lives, not how much).
EPOCHS = [0, 1, 2]


def _options(s3: Any) -> list[str]:
    return ["--storage-options", json.dumps(s3.storage_options)]


@pytest.fixture(scope="module")
def bucket_root(s3: Any) -> str:
    """A 2-variant toy sweep (seed=1,2) trained and analysed into the bucket; its root URL."""
    root = str(s3.url("runs"))
    assert main(["train", root, "--family", "toy", "--sweep", "seed=1,2", "--set",
                 f"epochs={EPOCHS}", "--threads", "1", "--quiet", *_options(s3)]) == 0
    assert main(["analyze", root, "--quiet", *_options(s3)]) == 0
    return root


def _runs(root: str) -> list[str]:
    return [f"{root}/toy/seed=1", f"{root}/toy/seed=2"]


def _find(component: Any, id_: str) -> Any:
    """The component of ``id_`` in a Dash layout tree, or ``None``."""
    if getattr(component, "id", None) == id_:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children]:
        if child is not None and not isinstance(child, str):
            found = _find(child, id_)
            if found is not None:
                return found
    return None


def _message(fig: Any) -> str:
    return str((fig.layout.meta or {}).get("epochstore_message", ""))


def test_the_app_of_a_bucket_lists_its_variants_and_describes_them_over_http(
    bucket_root: str, s3: Any
) -> None:
    app = create_app(bucket_root, storage_options=s3.storage_options)
    layout = app.layout()
    runs = _runs(bucket_root)
    picker = _find(layout, "run-a")
    assert [o["value"] for o in picker.options] == runs
    assert [o["label"] for o in picker.options] == [
        "toy / toy/seed=1  (seed=1)", "toy / toy/seed=2  (seed=2)"]

    # Picking a variant in the page: the app's own service reads its metadata from the bucket.
    response = app.server.test_client().post("/_dash-update-component", json={
        "output": "state-a.data",
        "outputs": {"id": "state-a", "property": "data"},
        "inputs": [{"id": "run-a", "property": "value", "value": runs[1]},
                   {"id": "refresh", "property": "n_intervals", "value": None}],
        "changedPropIds": ["run-a.value"],
        "state": [{"id": "state-a", "property": "data", "value": None}],
    })
    assert response.status_code == 200
    state = response.get_json()["response"]["state-a"]["data"]
    assert (state["run"], state["family"], state["epochs"]) == (runs[1], "toy", EPOCHS)
    assert state["status"] == "complete", state["message"]
    assert state["checkpoints"] == len(EPOCHS)


def test_views_of_a_variant_in_a_bucket_draw_its_data(bucket_root: str, s3: Any) -> None:
    service = DashboardService(bucket_root, storage_options=s3.storage_options)
    run = _runs(bucket_root)[0]
    state = callbacks.select_run(service, run, None)
    assert state is not None
    described = RunState.from_dict(state)
    assert described.status == "complete"
    assert described.view_names("epoch")
    assert described.view_names("across")
    messages = {}
    for scope in ("epoch", "across"):
        figures = callbacks.view_figures(service, state, scope, EPOCHS[1])
        for name, fig in zip(described.view_names(scope), figures, strict=True):
            if _message(fig):
                messages[name] = _message(fig)
            else:
                assert fig.data, name  # drawn from the chunks and manifests in the bucket
    # Every view draws but accuracy: the toy family records none (locally the same).
    assert messages == {"accuracy": "No accuracy recorded yet: no checkpoint records it."}
    assert "loss" in described.view_names("across")
    # Moving the slider reads that epoch's objects alone: no listing, no HEAD; moving back to
    # an epoch seen reads nothing (the figures are cached).
    s3.server.reset_requests()
    callbacks.view_figures(service, state, "epoch", EPOCHS[2])
    moved = s3.server.reset_requests()
    assert set(moved) == {"GetObject"}, moved
    callbacks.view_figures(service, state, "epoch", EPOCHS[1])
    assert s3.server.reset_requests() == {}
    status, title_a, _, _, _ = callbacks.compare_view(state, None, root=service.root)
    assert title_a == "toy/seed=1"
    assert status.startswith("seed=1: 3 epochs")


def test_the_variant_table_and_peer_views_of_a_bucket(bucket_root: str, s3: Any) -> None:
    service = DashboardService(bucket_root, storage_options=s3.storage_options)
    runs = _runs(bucket_root)
    rows, records, columns = callbacks.variant_table(service)
    assert [r["name"] for r in records] == ["toy/seed=1", "toy/seed=2"]
    assert [r["id"] for r in records] == runs
    assert [r["swept"] for r in rows] == [{"seed": 1}, {"seed": 2}]
    assert all(r["analysed"] == 100.0 and r["checkpoints"] == len(EPOCHS) for r in records)
    assert "param:seed" in [c["id"] for c in columns]
    assert callbacks.opened_variant({"row_id": records[1]["id"]}) == runs[1]

    choices = callbacks.peer_choices(service, rows, "toy")
    assert [o["value"] for o in choices["variants"]] == runs
    series = [o["value"] for o in choices["series"]]
    assert {"metrics/loss", "output_norm/norm"} <= set(series)
    for chosen in ("metrics/loss", "output_norm/norm"):
        fig = callbacks.peer_overlay(service, rows, "toy", chosen, runs)
        assert [t.name for t in fig.data] == ["seed=1", "seed=2"], chosen
        assert all(list(t.x) == EPOCHS for t in fig.data), chosen
    scatter = callbacks.peer_scatter(rows, "toy", "seed", "checkpoints")
    assert not _message(scatter)


def test_report_of_a_bucket_root_and_of_a_run_in_it(
    bucket_root: str, s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "root.html"
    assert main(["report", bucket_root, "-o", str(page), *_options(s3)]) == 0
    assert f"wrote {page}" in capsys.readouterr().err
    html = page.read_text()
    assert f"<h1>{bucket_root}</h1>" in html
    assert "<td>toy/seed=1</td>" in html
    assert "<td>toy/seed=2</td>" in html
    assert "toy / loss" in html  # the peer overlay of a checkpoint metric

    run = _runs(bucket_root)[1]
    single = tmp_path / "run.html"
    assert main(["report", run, "-o", str(single), *_options(s3)]) == 0
    text = single.read_text()
    assert f"<h1>{run}</h1>" in text
    assert "<code>toy</code>" in text


def test_a_bucket_root_holding_no_run_is_refused_with_the_fix(
    s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = s3.url("nothing-here")
    for command in ("serve", "report"):
        assert main([command, empty, *_options(s3)]) == 2
        err = capsys.readouterr().err
        assert f"{empty} is not a run and holds none" in err, command
        assert "check the bucket and the prefix" in err
        assert "--storage-options" in err


def test_an_unreachable_bucket_is_refused_with_the_fix(
    s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # A closed port, one attempt: the error comes at once instead of after botocore's retries.
    dead = {**s3.storage_options,
            "client_kwargs": {"endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1"},
            "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1}}
    root = s3.url("runs")
    for command in ("serve", "report"):
        assert main([command, root, "--storage-options", json.dumps(dead)]) == 2
        err = capsys.readouterr().err
        assert f"cannot reach {root} (EndpointConnectionError" in err, command
        assert "--storage-options" in err
    # An option the filesystem does not take is said the same way, naming the option.
    with pytest.raises(StorageUnreachableError, match="no_such_option"):
        DashboardService(root, storage_options={**s3.storage_options,
                                                "no_such_option": 1}).runs()


def test_storage_options_are_refused_for_a_local_root(
    tmp_path: Path, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("serve", "report"):
        assert main([command, str(tmp_path), *_options(s3)]) == 2
        assert "--storage-options are for URLs" in capsys.readouterr().err, command
    with pytest.raises(ValueError, match="storage_options are only for fsspec URLs"):
        DashboardService(tmp_path, storage_options=s3.storage_options)
    with pytest.raises(ValueError, match="give storage_options to the DashboardService"):
        create_app(tmp_path, service=DashboardService(tmp_path),
                   storage_options=s3.storage_options)


@pytest.fixture
def bucket_server(bucket_root: str, s3: Any) -> Iterator[str]:
    """``epochstore serve URL --storage-options ...`` in a subprocess; the page's address."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "epochstore.cli", "serve", bucket_root, *_options(s3),
         "--port", str(port), "--refresh", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"epochstore dashboard for {bucket_root} at http://127.0.0.1:{port}/" in first
        url = f"http://127.0.0.1:{port}/"
        for _ in range(150):  # the app imports Dash before it listens
            try:
                with urllib.request.urlopen(url + "_dash-layout", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise
                time.sleep(0.2)
        else:
            pytest.fail(f"epochstore serve never answered at {url}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_bucket_served_in_a_real_browser(bucket_server: str) -> None:
    if os.environ.get("EPOCHSTORE_SKIP_BROWSER_TEST"):
        pytest.skip("EPOCHSTORE_SKIP_BROWSER_TEST is set")
    from playwright.sync_api import sync_playwright  # the dev extra installs it

    chromium = os.environ.get("EPOCHSTORE_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        pytest.fail(f"no Chromium at {chromium}: `apt-get install chromium`")
    names = ("Array.from(document.querySelectorAll('#variants-table "
             "td[data-dash-column=\"name\"]')).map(e => e.innerText.trim())")
    traces = ("Array.from(document.querySelector('#peer-overlay .js-plotly-plot')?.data ?? [])"
              ".map(t => t.name)")
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(bucket_server + "variants")
            page.wait_for_function(f"{names}.length === 2", timeout=20_000)
            assert page.evaluate(names) == ["toy/seed=1", "toy/seed=2"]
            page.click("#nav-peers")
            page.wait_for_function(f"{traces}.length === 2", timeout=20_000)
            assert page.evaluate(traces) == ["seed=1", "seed=2"]
        finally:
            browser.close()
    assert errors == []
