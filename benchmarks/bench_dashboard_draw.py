#!/usr/bin/env python
"""The dashboard's cross-epoch first draw, old and new code side by side in one run (issue 14).

The run of :mod:`bench_dashboard` (``p = 113``, ``d_mlp = 512``, 95 epochs of the paper's
schedule, every modadd analyzer; written once under ``--workdir`` and reused) is drawn by two
checkouts of ``src/``: the old one (``git archive BEFORE src``, default the commit this work
started from) and the working tree's. Each measurement is a fresh Python process (what
``epochstore serve`` is), the two codes interleaved in a shuffled order per round:

- **cold first draw**: a new process builds the app (``create_app``; the new code starts its
  background warm-up there, and the process waits for it as a user's browser loads the page
  and a run is picked), selects the run (metadata only), then draws the run's cross-epoch
  panels once through Dash's HTTP endpoint (Flask's test client: the request the browser
  sends, figures serialised to JSON), at the last epoch, neuron 0;
- **first draw, warm process**: the same request with the service's caches emptied (no
  manifest, series or figure cached), ``--repeats`` times, and the callback called directly;
- **without series**: that draw on a loader with ``series=False`` (a read-only location, or
  series not written yet): each small field of each epoch read from its node;
- **norm over epochs**: a generic view's read (``RunSource.load_series(..., norm=True)``) of
  neuron 5's activations ``(113, 113)`` and of ``neuron_freq_norm / norm_matrix`` over the
  95 epochs, on a fresh source each time.

Each process also hashes every cross-epoch figure's JSON: the two codes must draw the same
figures (``identical_figures``). Medians over rounds (cold) and over all repeats (warm).

Run from the repository root::

    python benchmarks/bench_dashboard_draw.py                 # ~1 min after bench_dashboard's data
    python benchmarks/bench_dashboard_draw.py --rounds 3 --before main

Prints a markdown table and writes ``benchmarks/results/dashboard-draw.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
#: The commit the dashboard draw work started from (issue 14, dashboard target).
DEFAULT_BEFORE = "0e60e4c"


def child(run: Path, repeats: int) -> dict[str, Any]:
    """One process's measurements (runs in the child, on whichever ``src`` it imports)."""
    started = time.perf_counter()
    import epochstore
    from epochstore.dashboard import callbacks
    from epochstore.dashboard.app import create_app
    from epochstore.dashboard.service import DashboardService
    from epochstore.viz import RunSource

    imported = time.perf_counter()
    root = run.parents[1]
    service = DashboardService(root)
    app = create_app(root, service=service)
    created = time.perf_counter()
    warming = getattr(service, "warming", None)
    if warming is not None:
        warming.join()
    warmed = time.perf_counter()
    state = callbacks.select_run(service, str(run), None)
    assert state is not None
    last = state["epochs"][-1]
    client = app.server.test_client()
    names = [v["name"] for v in state["views"] if v["scope"] == "across"]
    ids = [{"type": "across", "column": "a", "view": n} for n in names]
    pick = {"type": "pick", "dim": "neuron"}
    body = {
        "output": next(k for k in app.callback_map
                       if '"column":"a"' in k and '"type":"across"' in k),
        "outputs": [{"id": g, "property": "figure"} for g in ids],
        "inputs": [{"id": "selected", "property": "data", "value": last},
                   [{"id": pick, "property": "value", "value": 0}],
                   {"id": "state-a", "property": "data", "value": state}],
        "changedPropIds": ["state-a.data"],
        "state": [[{"id": g, "property": "id", "value": g} for g in ids],
                  [{"id": pick, "property": "id", "value": pick}]],
    }

    def forget() -> None:  # a run never drawn: no manifest, series or figure cached
        for cache in (service.figures, service.series, service.blocks, service._loaders):
            cache.clear()

    def post() -> float:
        t = time.perf_counter()
        response = client.post("/_dash-update-component", json=body)
        elapsed = time.perf_counter() - t
        assert response.status_code == 200, response.data[:300]
        return elapsed

    cold = post()
    figures = callbacks.view_figures(service, state, "across", last, {"neuron": 0})  # cached
    hashes = [hashlib.sha256(f.to_json().encode()).hexdigest()[:16] for f in figures]
    traces = [len(f.data) for f in figures]

    warm, http = [], []
    for _ in range(repeats):
        forget()
        t = time.perf_counter()
        callbacks.view_figures(service, state, "across", last, {"neuron": 0})
        warm.append(time.perf_counter() - t)
        forget()
        http.append(post())

    # Without the derived series (a read-only location, or series not written yet): every
    # epoch's small fields from their nodes, 12 fields x 95 epochs.
    from epochstore import ArtifactLoader

    nodes = []
    for _ in range(repeats):
        plain = DashboardService(root, loader_factory=lambda r: ArtifactLoader(r, series=False))
        plain_state = callbacks.select_run(plain, str(run), None)
        t = time.perf_counter()
        callbacks.view_figures(plain, plain_state, "across", last, {"neuron": 0})
        nodes.append(time.perf_counter() - t)

    norms: dict[str, list[float]] = {}
    cases = {"activations, neuron 5": ("neuron_activations", "activations", {"neuron": 5}),
             "neuron_freq_norm / norm_matrix": ("neuron_freq_norm", "norm_matrix", {})}
    for label, (analyzer, field, select) in cases.items():
        norms[label] = []
        for _ in range(repeats):
            source = RunSource(str(run))
            t = time.perf_counter()
            source.load_series(analyzer, [field], select=select, norm=True)
            norms[label].append(time.perf_counter() - t)
    return {
        "epochstore": str(Path(epochstore.__file__).parent),
        "import_ms": 1000 * (imported - started),
        "create_app_ms": 1000 * (created - imported),
        "warm_up_wait_ms": 1000 * (warmed - created),
        "cold_first_draw_ms": 1000 * cold,
        "warm_first_draw_ms": [1000 * x for x in warm],
        "warm_first_draw_http_ms": [1000 * x for x in http],
        "no_series_first_draw_ms": [1000 * x for x in nodes],
        "norm_ms": {k: [1000 * x for x in v] for k, v in norms.items()},
        "figure_hashes": hashes,
        "traces": traces,
        "panels": len(figures),
    }


def _extract(rev: str, into: Path) -> Path:
    """``src/`` of ``rev`` under ``into`` (``git archive``: the repository is not touched)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def _run_child(src: Path, run: Path, repeats: int) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(src))
    out = subprocess.run([sys.executable, __file__, "--child", "--run", str(run),
                          "--repeats", str(repeats)], check=True, capture_output=True,
                         text=True, env=env)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if Path(result["epochstore"]).resolve() != (src / "epochstore").resolve():
        raise RuntimeError(f"the child imported {result['epochstore']}, not {src}")
    return result


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of one code's rounds."""
    return {
        "cold_first_draw_ms": _median([r["cold_first_draw_ms"] for r in rounds]),
        "cold_first_draw_ms_all": [r["cold_first_draw_ms"] for r in rounds],
        "warm_first_draw_ms": _median([x for r in rounds for x in r["warm_first_draw_ms"]]),
        "warm_first_draw_min_ms": min(x for r in rounds for x in r["warm_first_draw_ms"]),
        "warm_first_draw_http_ms": _median([x for r in rounds
                                            for x in r["warm_first_draw_http_ms"]]),
        "no_series_first_draw_ms": _median([x for r in rounds
                                            for x in r["no_series_first_draw_ms"]]),
        "import_ms": _median([r["import_ms"] for r in rounds]),
        "create_app_ms": _median([r["create_app_ms"] for r in rounds]),
        "warm_up_wait_ms": _median([r["warm_up_wait_ms"] for r in rounds]),
        "norm_ms": {k: _median([x for r in rounds for x in r["norm_ms"][k]])
                    for k in rounds[0]["norm_ms"]},
        "traces": rounds[0]["traces"],
        "panels": rounds[0]["panels"],
    }


def table(result: dict[str, Any]) -> str:
    b, a = result["before"], result["after"]
    rows = [
        ("cross-epoch first draw, new process, Dash HTTP endpoint (5 panels)",
         "cold_first_draw_ms"),
        ("cross-epoch first draw, warm process, Dash HTTP endpoint", "warm_first_draw_http_ms"),
        ("  same, the callback alone (no JSON)", "warm_first_draw_ms"),
        ("  same, without derived series (every epoch's node)", "no_series_first_draw_ms"),
        ("create_app (server start)", "create_app_ms"),
        ("background warm-up still running after create_app", "warm_up_wait_ms"),
    ]
    lines = ["| step | before (ms) | after (ms) |", "| --- | ---: | ---: |"]
    lines += [f"| {label} | {b[key]:.0f} | {a[key]:.0f} |" for label, key in rows]
    lines += [f"| norm over {result['setup']['epochs']} epochs: {k} | {b['norm_ms'][k]:.0f} | "
              f"{a['norm_ms'][k]:.0f} |" for k in b["norm_ms"]]
    lines.append(f"| traces per panel | {b['traces']} | {a['traces']} |")
    lines.append(f"\nidentical figures: {result['identical_figures']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / "_data" / "dashboard-p113")
    parser.add_argument("--epochs", type=int, default=95)
    parser.add_argument("--rounds", type=int, default=5, help="processes per code")
    parser.add_argument("--repeats", type=int, default=6, help="warm draws per process")
    parser.add_argument("--before", default=DEFAULT_BEFORE, help="git revision of the old code")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "dashboard-draw.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.run, args.repeats)))
        return 0

    sys.path.insert(0, str(ROOT))
    from bench_dashboard import build
    from epochstore.families.modadd.config import paper_schedule

    epochs = list(paper_schedule())[: args.epochs]
    run = build(args.workdir, epochs, epochs[-3:])
    codes: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        sources = {"before": _extract(args.before, Path(tmp)), "after": REPO / "src"}
        # One process per code first, unmeasured: the page cache holds the run's files.
        for src in sources.values():
            _run_child(src, run, 1)
        rng = random.Random(0)
        for i in range(args.rounds):
            order = list(sources)
            rng.shuffle(order)
            for name in order:
                codes[name].append(_run_child(sources[name], run, args.repeats))
            print(f"round {i + 1}/{args.rounds}", file=sys.stderr)
    hashes = {name: {tuple(r["figure_hashes"]) for r in rounds} for name, rounds in codes.items()}
    result: dict[str, Any] = {
        "before": summarise(codes["before"]),
        "after": summarise(codes["after"]),
        "identical_figures": len(hashes["before"]) == 1 and hashes["before"] == hashes["after"],
        "raw": codes,
        "setup": {"before": args.before, "epochs": len(epochs), "rounds": args.rounds,
                  "repeats": args.repeats, "python": platform.python_version(),
                  "cpus": os.cpu_count(), "load_average": os.getloadavg()},
    }
    print(table(result))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
