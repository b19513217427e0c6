#!/usr/bin/env python
"""A slider move in a real browser: from the key press until every figure shows the new epoch.

``epochstore serve`` runs in its own process on a synthetic modadd run of the paper's size
(``p = 113``, ``d_mlp = 512``, every modadd analyzer; activations ``(512, 113, 113)`` float32
per epoch, default layout), and headless Chromium (Playwright, the system's Chromium) opens the
page, picks the run and moves the epoch slider with the keyboard, as a user does. A move is
timed from the key press to the first animation frame where every figure of the column shows
the new epoch (its title names it, or its epoch marker sits on it), polled on each frame.

- **new epoch**: a move to an epoch not viewed before (the server reads it);
- **floor: cached epoch**: a move back to one of the two epochs just viewed (the server's LRU
  cache answers in ~1 ms), i.e. the browser's round trip through Dash and the redraw of the
  same figures with nothing read: what a move cannot go below on this page;
- **first draw** after picking the run, and the **first move** (cold caches).

Run from the repository root::

    python benchmarks/bench_dashboard_browser.py              # ~1 min to write the run once
    python benchmarks/bench_dashboard_browser.py --epochs 40 --workdir /tmp/bench-40

Needs the ``dev`` extra (Playwright) and Chromium (``apt-get install chromium``). The run is
kept under ``--workdir`` (default ``/tmp/epochstore-bench-browser``) and reused. Prints a
markdown table and writes ``benchmarks/results/dashboard-browser.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from epochstore.testing.synthetic_modadd import write_synthetic_run

ROOT = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("EPOCHSTORE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
RUN = "modadd/p113"

#: True when every figure of column a shows epoch ``e``: its title names it ("epoch 600",
#: not "epoch 6000"), or its epoch marker (the first shape) sits on it.
SHOWS = """(e) => {
  const plots = Array.from(document.querySelectorAll('#views-a .js-plotly-plot'));
  const named = new RegExp('epoch ' + e + '(?![0-9])');
  return plots.length > 0 && plots.every(p =>
    named.test(p.layout?.title?.text ?? '') || (p.layout?.shapes ?? []).some(s => s.x0 === e));
}"""
COUNT = "document.querySelectorAll('#views-a .js-plotly-plot').length"


def _write_run(root: Path, epochs: list[int]) -> None:
    run = root / RUN
    if (run / "artifacts").exists():
        return
    print(f"writing {len(epochs)} epochs of a p = 113 run under {run} ...", flush=True)
    write_synthetic_run(run, epochs, p=113, d_mlp=512, key_frequencies=(14, 35, 41, 42, 52))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(root: Path) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "epochstore.cli", "serve", str(root), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "_dash-layout", timeout=2):
                return proc, url
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.2)


def _move(page: Page, key: str, epoch: int) -> float:
    """Press ``key`` on the focused slider; seconds until every figure shows ``epoch``."""
    start = time.perf_counter()
    page.keyboard.press(key)
    page.wait_for_function(SHOWS, arg=epoch, polling="raf", timeout=60_000)
    return time.perf_counter() - start


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(1000 * s for s in seconds)
    return {"median_ms": statistics.median(ms), "p90_ms": ms[int(0.9 * (len(ms) - 1))],
            "min_ms": ms[0], "n": len(ms)}


def measure(root: Path, epochs: list[int]) -> dict[str, Any]:
    proc, url = _serve(root)
    new: list[float] = []
    cached: list[float] = []
    out: dict[str, Any] = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1560})
            page.goto(url)
            page.wait_for_selector("#run-a")
            start = time.perf_counter()
            page.click("#run-a")
            page.get_by_role("option", name=RUN).click()
            page.wait_for_function(SHOWS, arg=epochs[-1], polling="raf", timeout=60_000)
            out["first draw after picking the run"] = _summary([time.perf_counter() - start])
            out["figures per move"] = page.evaluate(COUNT)
            thumb = page.locator("#epoch [role=slider]")
            thumb.focus()
            out["first move (Home)"] = _summary([_move(page, "Home", epochs[0])])
            for i in range(1, len(epochs)):
                new.append(_move(page, "ArrowRight", epochs[i]))
                # The floor: back and forth between the two epochs just viewed.
                cached.append(_move(page, "ArrowLeft", epochs[i - 1]))
                cached.append(_move(page, "ArrowRight", epochs[i]))
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    out["new epoch"] = _summary(new)
    out["floor: cached epoch (no read)"] = _summary(cached)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/epochstore-bench-browser"))
    parser.add_argument("--output", type=Path,
                        default=ROOT / "results" / "dashboard-browser.json")
    args = parser.parse_args(argv)
    epochs = list(range(0, 100 * args.epochs, 100))
    _write_run(args.workdir, epochs)
    load_before = os.getloadavg()
    results = measure(args.workdir, epochs)
    new = results["new epoch"]["median_ms"]
    floor = results["floor: cached epoch (no read)"]["median_ms"]
    print(f"## Slider moves in Chromium ({len(epochs)} epochs, "
          f"{results['figures per move']} figures)\n")
    print("| move | median ms | p90 ms | min ms | n |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        if isinstance(r, dict):
            print(f"| {name} | {r['median_ms']:.0f} | {r['p90_ms']:.0f} | {r['min_ms']:.0f} "
                  f"| {r['n']} |")
    print(f"\nnew epoch / floor: {new / floor:.2f}x (target: <= 150 ms or <= 1.5x the floor)")
    results["machine"] = {
        "python": platform.python_version(), "epochs": len(epochs),
        "load_before": list(load_before), "load_after": list(os.getloadavg()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
