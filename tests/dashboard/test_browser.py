"""The real thing: `epochstore serve` in a subprocess, driven by headless Chromium.

Picks a variant, moves the epoch slider, checks that the figures follow, that epochs written
while the page is open appear, and that a second variant shows side by side; then a run written
with ArtifactStore alone (analyzers epochstore has never seen), every view following the
slider and the picker. Saves the
screenshot: always under the test's tmp dir, and into the README's docs/images/dashboard.png when
EPOCHSTORE_UPDATE_SCREENSHOT=1 (so an ordinary test run leaves the checkout clean).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import (
    Page,
    sync_playwright,  # the dev extra installs it
)
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from epochstore.testing.synthetic_modadd import write_synthetic_run
from epochstore.testing.unknown_run import write_unknown_run

if os.environ.get("EPOCHSTORE_SKIP_BROWSER_TEST"):
    pytest.skip("EPOCHSTORE_SKIP_BROWSER_TEST is set", allow_module_level=True)

CHROMIUM = os.environ.get("EPOCHSTORE_CHROMIUM", "/usr/bin/chromium")
# Never let Playwright fetch a browser: the system's Chromium, quiet and offline.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "dashboard.png"
EPOCHS = tuple(range(0, 1300, 200))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _serving(
    command: list[str], root: Path, write: Callable[[], None] | None = None
) -> Iterator[str]:
    """Run ``command serve ROOT`` on a free port, calling ``write`` while it starts; yield its
    URL once Dash answers, stop it after."""
    port = _free_port()
    proc = subprocess.Popen(
        [*command, "serve", str(root), "--port", str(port), "--refresh", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        if write is not None:
            write()
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in first, first
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "_dash-layout", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def _page(url: str, height: int) -> Iterator[Page]:
    """A headless Chromium page at ``url``; on leaving, no page error may have been raised."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `apt-get install chromium` (.ci/run does), or "
                    "set EPOCHSTORE_CHROMIUM; EPOCHSTORE_SKIP_BROWSER_TEST=1 skips this test")
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": height})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url)
            yield page
        finally:
            browser.close()
    assert errors == []


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "runs"
    root.mkdir()

    def write() -> None:
        # Written while the server starts: every page load lists the runs anew.
        write_synthetic_run(root / "modadd" / "p23", EPOCHS, p=23, d_mlp=32,
                            key_frequencies=(4, 9), grok_epoch=650)
        write_synthetic_run(root / "modadd" / "p29", range(0, 1300, 300), p=29, d_mlp=32,
                            key_frequencies=(5, 11, 13), grok_epoch=500, seed=3)
        write_unknown_run(root / "mine", (0, 100, 200, 300))

    with _serving([sys.executable, "-m", "epochstore.cli"], root, write) as url:
        yield url, root


def _title(graph: str) -> str:
    return (f"document.querySelector('#{graph} .js-plotly-plot')?.layout?.title?.text ?? ''")


#: The titles of every view of column a, in page order.
ALL_TITLES = ("Array.from(document.querySelectorAll('#views-a .js-plotly-plot'))"
              ".map(e => e.layout?.title?.text ?? '')")


def test_dashboard_in_a_real_browser(server: tuple[str, Path], tmp_path: Path) -> None:
    url, root = server
    with _page(url, 1560) as page:

        def wait_title(graph: str, expected: str) -> None:
            page.wait_for_function(f"({_title(graph)}) === {expected!r}", timeout=15_000)

        # Pick a variant: the slider goes to its last epoch.
        page.click("#run-a")
        page.get_by_role("option", name="modadd/p23").click()
        wait_title("a-heatmap", "Neuron 0 activation, epoch 1200")
        assert "7 epochs" in page.inner_text("#status")

        # Move the slider (keyboard on the thumb): every panel follows.
        thumb = page.locator("#epoch [role=slider]")
        thumb.focus()
        page.keyboard.press("Home")
        wait_title("a-heatmap", "Neuron 0 activation, epoch 0")
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        wait_title("a-heatmap", "Neuron 0 activation, epoch 600")
        wait_title("a-loss", "Loss (epoch 600)")
        wait_title("a-dominant", "Embedding Fourier components, epoch 600")
        marker = page.evaluate(
            "document.querySelector('#a-loss .js-plotly-plot').layout.shapes[0].x0")
        assert marker == 600
        assert page.inner_text("#epoch-label").startswith("epoch 600")

        # Another neuron.
        page.fill("#pick-neuron input", "5")
        page.keyboard.press("Enter")
        wait_title("a-heatmap", "Neuron 5 activation, epoch 600")

        # An epoch written while the page is open appears without a restart.
        write_synthetic_run(root / "modadd" / "p23", (*EPOCHS, 1400), p=23, d_mlp=32,
                            key_frequencies=(4, 9), grok_epoch=650)
        page.wait_for_function(
            "document.querySelector('#epoch-label').innerText.includes('of 8')",
            timeout=15_000)
        wait_title("a-heatmap", "Neuron 5 activation, epoch 600")
        page.wait_for_function(  # every analyzer has it: "analysis in progress" is over
            "document.querySelector('#status').innerText.includes('8 epochs')",
            timeout=15_000)

        page.mouse.move(0, 0)
        page.wait_for_timeout(300)
        shot = page.screenshot(path=str(tmp_path / "dashboard.png"))
        assert shot[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("EPOCHSTORE_UPDATE_SCREENSHOT") == "1":
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            SCREENSHOT.write_bytes(shot)

        # A second variant side by side, at the nearest epoch to the slider's.
        page.click("#run-b")
        page.get_by_role("option", name="modadd/p29").click()
        wait_title("b-heatmap", "Neuron 5 activation, epoch 600")
        assert page.is_visible("#column-b")
        thumb.focus()
        page.keyboard.press("ArrowRight")
        wait_title("a-heatmap", "Neuron 5 activation, epoch 800")
        wait_title("b-heatmap", "Neuron 5 activation, epoch 900 (nearest to 800)")
    assert SCREENSHOT.stat().st_size > 10_000


def test_a_run_of_artifacts_alone_in_a_real_browser(server: tuple[str, Path]) -> None:
    url, _ = server
    with _page(url, 1560) as page:
        page.click("#run-a")
        page.get_by_role("option", name="artifacts only / mine").click()

        def every_view_at(epoch: int, head: int) -> None:
            # Ten views: four at the epoch, six across epochs with the epoch marked.
            expected = [
                f"head_maps / attn, head {head}, epoch {epoch}",
                f"probe_vector / spectrum, epoch {epoch}",
                f"probe_vector / counts, epoch {epoch}",
                f"weight_map / w, epoch {epoch}",
                f"head_maps / attn: norm of head {head} over epochs (epoch {epoch})",
                f"probe_vector / spectrum over epochs (epoch {epoch})",
                f"probe_vector / counts over epochs (epoch {epoch})",
                f"run_stats / loss (epoch {epoch})",
                f"run_stats / converged (epoch {epoch})",
                f"weight_map / w: norm over epochs (epoch {epoch})",
            ]
            as_js = json.dumps(expected, separators=(",", ":"))  # as JSON.stringify writes
            try:
                page.wait_for_function(f"JSON.stringify({ALL_TITLES}) === {as_js!r}",
                                       timeout=30_000)
            except PlaywrightTimeout:
                shown = page.evaluate(ALL_TITLES)
                raise AssertionError(f"views show {shown}, expected {expected}") from None

        every_view_at(300, 0)
        assert "4 analyzers" in page.inner_text("#status")
        thumb = page.locator("#epoch [role=slider]")
        thumb.focus()
        page.keyboard.press("Home")
        every_view_at(0, 0)
        page.keyboard.press("ArrowRight")
        every_view_at(100, 0)
        marker = page.evaluate(
            "document.querySelector('#a-run_stats__loss__curve .js-plotly-plot')"
            ".layout.shapes[0].x0")
        assert marker == 100
        page.fill("#pick-head input", "2")
        page.keyboard.press("Enter")
        every_view_at(100, 2)


@pytest.fixture
def sweep_server(tmp_path: Path) -> Iterator[str]:
    """`epochstore serve` on a small toy sweep (lr x seed; trained, not analysed: the table
    and the metrics' overlay need the summaries and the checkpoint records alone)."""
    from .conftest import write_sweep

    root = tmp_path / "runs"
    write_sweep(root, analyse=False)
    script = ("import sys; from epochstore.testing import toy; toy.register(); "
              "from epochstore.cli import main; sys.exit(main(sys.argv[1:]))")
    with _serving([sys.executable, "-c", script], root) as url:
        yield url


def _cells(column: str) -> str:
    return (f"Array.from(document.querySelectorAll('#variants-table "
            f"td[data-dash-column=\"{column}\"]')).map(e => e.innerText.trim())")


def test_variant_table_and_peer_comparison_in_a_real_browser(sweep_server: str) -> None:
    labels = ["lr=0.05, seed=1", "lr=0.05, seed=2", "lr=0.2, seed=1", "lr=0.2, seed=2"]
    with _page(sweep_server + "variants", 1200) as page:
        page.wait_for_function(f"{_cells('name')}.length === 4", timeout=15_000)
        assert page.evaluate(_cells("param:seed")) == ["1", "2", "1", "2"]

        # Sort by seed: click its header's sort arrow (ascending, then descending).
        sort = page.locator('#variants-table th[data-dash-column="param:seed"] '
                            '.column-header--sort')
        sort.click()
        page.wait_for_function(f"{_cells('param:seed')}.join() === '1,1,2,2'",
                               timeout=10_000)
        sort.click()
        page.wait_for_function(f"{_cells('param:seed')}.join() === '2,2,1,1'",
                               timeout=10_000)

        # A row clicked opens that variant in the run view.
        first = page.evaluate(_cells("name"))[0]
        page.locator('#variants-table td[data-dash-column="name"]').first.click()
        page.wait_for_function("window.location.pathname === '/'", timeout=10_000)
        page.wait_for_function(
            f"document.querySelector('#status').innerText.startsWith("
            f"{first.rsplit('/', 1)[-1] + ':'!r})", timeout=15_000)
        assert page.is_visible("#page-run")
        assert not page.is_visible("#page-variants")

        # Peer comparison: one trace per variant, named by the swept params.
        page.click("#nav-peers")
        traces = ("Array.from(document.querySelector('#peer-overlay .js-plotly-plot')"
                  "?.data ?? []).map(t => t.name)")
        page.wait_for_function(f"{traces}.length === 4", timeout=15_000)
        assert page.evaluate(traces) == labels
        title = page.evaluate("document.querySelector('#peer-overlay .js-plotly-plot')"
                              ".layout.title.text")
        assert title == "toy: metrics / loss: 4 variants"
        points = ("(document.querySelector('#peer-scatter .js-plotly-plot')?.data ?? [])"
                  ".reduce((n, t) => n + (t.x?.length ?? 0), 0)")
        page.wait_for_function(f"{points} === 4", timeout=15_000)
