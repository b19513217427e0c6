#!/usr/bin/env python
"""The dashboard's slider: time from a slider change to the callback's return, and bytes read.

A synthetic run of the paper's size (``p = 113``, ``d_mlp = 512``, the 95-checkpoint schedule,
every modadd analyzer; activations ``(512, 113, 113)`` float32 per epoch, default layout) is
written with :func:`epochstore.testing.synthetic_modadd.write_synthetic_run`, plus the original
design's per-epoch ``.npz`` (``np.savez_compressed``) of the activations for a few epochs.

Measured, with the page cache warm (the files were just written or read):

- **select a variant**: the ``select_run`` callback (metadata only), with its chunk reads;
- **slider change**: the per-epoch callback of one column at an epoch not viewed before
  (dominant frequencies, neuron heatmap, neuron-frequency matrix, neuron grid), called
  directly and through Dash's HTTP endpoint (Flask test client: routing, JSON in and out);
- **revisit**: one of the last epochs viewed, again (the bounded LRU cache);
- **cross-epoch panels**: first draw (reads every epoch's few values) and after a slider
  change (marker only);
- **per-epoch .npz**: ``np.load(path)["activations"]``, the whole epoch, as the original did.

Bytes are counted by :class:`epochstore.store.instrumented.CountingStore` (compressed bytes
returned by the store) and, for ``.npz``, the file size.

Run from the repository root::

    python benchmarks/bench_dashboard.py            # ~2 minutes the first time (writes ~1.6 GB)
    python benchmarks/bench_dashboard.py --epochs 20 --workdir /tmp/bench-dash  # quicker

The run is kept under ``--workdir`` (default ``benchmarks/_data/dashboard-p113``, git-ignored)
and reused. Prints a markdown table and writes ``benchmarks/results/dashboard.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from zarr.storage import LocalStore

from epochstore import ArtifactLoader
from epochstore.dashboard import callbacks
from epochstore.dashboard.app import create_app
from epochstore.dashboard.service import DashboardService, RunState
from epochstore.families.modadd.config import paper_schedule
from epochstore.store.instrumented import CountingStore
from epochstore.testing.synthetic_modadd import SyntheticModAdd, write_synthetic_run

ROOT = Path(__file__).resolve().parent
P, D_MLP, KEYS = 113, 512, (14, 35, 41, 42, 52)


def _ms(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "median_ms": 1000 * statistics.median(ordered),
        "p90_ms": 1000 * ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "min_ms": 1000 * ordered[0],
        "n": len(ordered),
    }


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def build(workdir: Path, epochs: list[int], npz_epochs: list[int]) -> Path:
    """Write (or reuse) the synthetic run and the per-epoch .npz files."""
    run = workdir / "runs" / "modadd" / "p113"
    started = time.perf_counter()
    write_synthetic_run(run, epochs, p=P, d_mlp=D_MLP, key_frequencies=KEYS,
                        grok_epoch=epochs[len(epochs) * 2 // 3])
    synth = SyntheticModAdd(P, D_MLP, KEYS, grok_epoch=epochs[len(epochs) * 2 // 3],
                            width=max(1.0, epochs[len(epochs) * 2 // 3] / 6))
    npz_dir = workdir / "npz"
    npz_dir.mkdir(parents=True, exist_ok=True)
    for epoch in npz_epochs:
        path = npz_dir / f"neuron_activations_epoch_{epoch:05d}.npz"
        if not path.exists():
            np.savez_compressed(path, **synth.neuron_activations(epoch))
    print(f"data ready in {time.perf_counter() - started:.0f} s under {workdir}", file=sys.stderr)
    return run


def _counting_service(root: Path) -> tuple[DashboardService, dict[str, CountingStore]]:
    stores: dict[str, CountingStore] = {}

    def loader(run: str) -> ArtifactLoader:
        stores[run] = CountingStore(LocalStore(run, read_only=True))
        return ArtifactLoader(stores[run])

    return DashboardService(root, loader_factory=loader), stores


def _neuron(i: int) -> int:
    return (37 * i) % D_MLP


def epoch_panels(service: DashboardService, state: Any, epoch: int, neuron: int) -> list[Any]:
    """The run's per-epoch views at ``epoch`` (what the page's callback draws)."""
    return callbacks.view_figures(service, state, "epoch", epoch, {"neuron": neuron})


def cross_panels(service: DashboardService, state: Any, epoch: int, neuron: int) -> list[Any]:
    """The run's cross-epoch views with ``epoch`` marked."""
    return callbacks.view_figures(service, state, "across", epoch, {"neuron": neuron})


def count_reads(root: Path, run: Path, epochs: list[int], chosen: list[int]) -> dict[str, Any]:
    """The same calls as :func:`time_calls`, through a :class:`CountingStore`.

    Counted separately because a loader on a wrapped store cannot rename, so it lists epochs
    the object-store way (an existence check per epoch): right for counting chunk reads,
    not for timing a local run.
    """
    service, stores = _counting_service(root)
    state = callbacks.select_run(service, str(run), None)
    store = stores[str(run)]
    counts: dict[str, Any] = {"select_variant": {
        "chunk_reads": sum(store.chunk_reads.values()),
        "metadata_reads": sum(store.metadata_reads.values()),
        "list_calls": store.list_calls,
    }}
    sizes, gets, fields = [], [], set()
    for i, epoch in enumerate(chosen):
        store.reset()
        epoch_panels(service, state, epoch, _neuron(i))
        assert all(f"/epoch_{epoch:05d}/" in k for k in store.chunk_reads)
        sizes.append(store.bytes_read)
        gets.append(sum(store.chunk_reads.values()))
        fields |= {k.split("/")[1] + "/" + k.split("/")[3] for k in store.chunk_reads}
    counts["slider_change"] = {"bytes_read_median": int(statistics.median(sizes)),
                               "chunk_gets_median": int(statistics.median(gets)),
                               "fields_read": sorted(fields)}
    store.reset()
    cross_panels(service, state, epochs[-1], 0)
    counts["cross_epoch_first_draw"] = {"chunk_gets": sum(store.chunk_reads.values()),
                                        "bytes_read": store.bytes_read}
    store.reset()
    for epoch in chosen:
        cross_panels(service, state, epoch, 0)
    assert not store.chunk_reads, "a slider change re-read cross-epoch data"
    return counts


def time_calls(root: Path, run: Path, epochs: list[int], chosen: list[int]) -> dict[str, Any]:
    """Time the callbacks on a plain local loader (as ``epochstore serve`` opens runs)."""
    results: dict[str, Any] = {}
    # Select a variant: each round on a fresh service (no cached manifest), after one round
    # that pays the process's first-call costs (imports, zarr's event loop).
    selects = []
    for _ in range(6):
        service = DashboardService(root)
        elapsed, state = _timed(lambda s=service: callbacks.select_run(s, str(run), None))  # type: ignore[misc]
        selects.append(elapsed)
    results["select_variant"] = {**_ms(selects[1:]), "first_call_ms": 1000 * selects[0]}
    # Warm up the code paths on an epoch not measured below.
    epoch_panels(service, state, epochs[0], 0)

    direct = []
    for i, epoch in enumerate(chosen):
        neuron = _neuron(i)
        elapsed, _ = _timed(lambda e=epoch, n=neuron: epoch_panels(  # type: ignore[misc]
            service, state, e, n))
        direct.append(elapsed)
    results["slider_change_direct"] = _ms(direct)

    # Back to the last few epochs viewed (the cache keeps ~24 epochs' figures: it is bounded).
    revisit = []
    for i, epoch in reversed(list(enumerate(chosen))[-8:]):
        neuron = _neuron(i)
        elapsed, _ = _timed(lambda e=epoch, n=neuron: epoch_panels(  # type: ignore[misc]
            service, state, e, n))
        revisit.append(elapsed)
    results["revisit_cached"] = _ms(revisit)

    # Through Dash: the HTTP endpoint the browser calls when the slider moves.
    service.figures.clear()
    service.blocks.clear()
    app = create_app(root, service=service)
    client = app.server.test_client()
    names = RunState.from_dict(state).view_names("epoch")
    ids = [{"type": "epoch", "column": "a", "view": n} for n in names]
    pick = {"type": "pick", "dim": "neuron"}
    output_key = next(k for k in app.callback_map
                      if '"column":"a"' in k and '"type":"epoch"' in k)
    http, payload_bytes = [], []
    for i, epoch in enumerate(chosen):
        body = {
            "output": output_key,
            "outputs": [{"id": g, "property": "figure"} for g in ids],
            "inputs": [
                {"id": "selected", "property": "data", "value": epoch},
                [{"id": pick, "property": "value", "value": _neuron(i + 1)}],
                {"id": "state-a", "property": "data", "value": state},
            ],
            "changedPropIds": ["selected.data"],
            "state": [[{"id": g, "property": "id", "value": g} for g in ids],
                      [{"id": pick, "property": "id", "value": pick}]],
        }
        elapsed, response = _timed(lambda b=body: client.post(  # type: ignore[misc]
            "/_dash-update-component", json=b))
        assert response.status_code == 200, response.data[:500]
        http.append(elapsed)
        payload_bytes.append(len(response.data))
    results["slider_change_http"] = {**_ms(http),
                                     "response_bytes_median": int(statistics.median(payload_bytes))}

    # Cross-epoch panels: the first draw reads every epoch's values; then only the marker.
    elapsed, _ = _timed(lambda: cross_panels(service, state, epochs[-1], 0))
    results["cross_epoch_first_draw"] = {"ms": 1000 * elapsed}
    marker = []
    for epoch in chosen:
        elapsed, _ = _timed(lambda e=epoch: cross_panels(service, state, e, 0))  # type: ignore[misc]
        marker.append(elapsed)
    results["cross_epoch_slider_change"] = _ms(marker)
    return results


def measure(run: Path, epochs: list[int], npz_epochs: list[int], rounds: int) -> dict[str, Any]:
    root = run.parents[1]
    rng = random.Random(0)
    candidates = list(epochs[1:])
    rng.shuffle(candidates)
    chosen = candidates[: min(rounds, len(candidates))]
    results = time_calls(root, run, epochs, chosen)
    counts = count_reads(root, run, epochs, chosen)
    results["select_variant"].update(counts["select_variant"])
    results["slider_change_direct"].update(counts["slider_change"])
    results["cross_epoch_first_draw"].update(counts["cross_epoch_first_draw"])

    # The original design: one .npz per epoch, loaded whole.
    npz_dir = run.parents[2] / "npz"
    loads = []
    for _ in range(max(1, rounds // len(npz_epochs))):
        for epoch in npz_epochs:
            path = npz_dir / f"neuron_activations_epoch_{epoch:05d}.npz"
            elapsed, arr = _timed(lambda p=path: np.load(p)["activations"])  # type: ignore[misc]
            assert arr.shape == (D_MLP, P, P)
            loads.append(elapsed)
    sizes = [(npz_dir / f"neuron_activations_epoch_{e:05d}.npz").stat().st_size
             for e in npz_epochs]
    results["npz_whole_epoch"] = {**_ms(loads), "file_bytes_median": int(statistics.median(sizes)),
                                  "raw_bytes": D_MLP * P * P * 4}
    return results


def table(results: dict[str, Any], n_epochs: int) -> str:
    d, h = results["slider_change_direct"], results["slider_change_http"]
    c, m = results["cross_epoch_first_draw"], results["cross_epoch_slider_change"]
    r, s, z = results["revisit_cached"], results["select_variant"], results["npz_whole_epoch"]
    rows = [
        ("select a variant (metadata only)", f"{s['median_ms']:.0f}",
         (f"{s['chunk_reads']} chunks; {s['metadata_reads']} zarr.json, "
          f"{s['list_calls']} listings")),
        ("slider change, per-epoch callback (4 panels)",
         f"{d['median_ms']:.0f} (p90 {d['p90_ms']:.0f})",
         f"{d['bytes_read_median'] / 1e3:.0f} kB in {d['chunk_gets_median']} ranged gets"),
        ("  same, through Dash's HTTP endpoint",
         f"{h['median_ms']:.0f} (p90 {h['p90_ms']:.0f})",
         f"response {h['response_bytes_median'] / 1e3:.0f} kB of JSON"),
        ("  same epoch again (LRU cache)", f"{r['median_ms']:.1f}", "0"),
        ("cross-epoch panels, first draw (5 panels)", f"{c['ms']:.0f}",
         f"{c['bytes_read'] / 1e3:.0f} kB in {c['chunk_gets']} gets ({n_epochs} epochs)"),
        ("cross-epoch panels, slider change", f"{m['median_ms']:.0f} (p90 {m['p90_ms']:.0f})",
         "0 (marker only)"),
        ("per-epoch `.npz`, whole epoch (`np.load(...)['activations']`)",
         f"{z['median_ms']:.0f} (p90 {z['p90_ms']:.0f})",
         f"{z['file_bytes_median'] / 1e6:.1f} MB file ({z['raw_bytes'] / 1e6:.1f} MB raw)"),
    ]
    lines = ["| step | time (ms, median) | read |", "| --- | ---: | --- |"]
    lines += [f"| {a} | {b} | {c_} |" for a, b, c_ in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / "_data" / "dashboard-p113")
    parser.add_argument("--epochs", type=int, default=95, help="first N epochs of the schedule")
    parser.add_argument("--rounds", type=int, default=30, help="slider changes measured")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "dashboard.json")
    args = parser.parse_args(argv)
    epochs = list(paper_schedule())[: args.epochs]
    npz_epochs = epochs[-3:]
    run = build(args.workdir, epochs, npz_epochs)
    results = measure(run, epochs, npz_epochs, args.rounds)
    manifest = ArtifactLoader(run).manifest("neuron_activations").fields["activations"]
    results["setup"] = {
        "p": P, "d_mlp": D_MLP, "epochs": len(epochs),
        "activations_layout": {"chunks": manifest.layout.chunks, "shards": manifest.layout.shards},
        "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "load_average": os.getloadavg(),
    }
    print(table(results, len(epochs)))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=list) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
