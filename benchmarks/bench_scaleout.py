#!/usr/bin/env python
"""Scale-out measurements (issue 8): Dask workers, Dask overhead, and S3 requests.

Three parts, each printed as a markdown table:

``scaling``
    Epochs per second of ``AnalysisPipeline.run(client=...)`` on a LocalCluster with 1 and 2
    worker processes (1 thread each), on a Modulo Addition run at small ``p`` in a local
    directory (the shared filesystem of one machine), next to the in-process sequential run.
``overhead``
    Per-epoch wall time of the toy family (tiny epochs: what is measured is the machinery)
    in-process, with 2 local processes and with 2 Dask workers, and the start-up costs of each.
``s3``
    Requests received by a real S3 endpoint (moto's server on 127.0.0.1, counting every HTTP
    request) for listing 1000 epochs, opening ``load_epochs`` lazily and reading one neuron
    across all epochs, with the request count of the listing epochstore used before; plus the
    requests of one write and of one pipeline task.

Run from the repository root::

    python benchmarks/bench_scaleout.py                # everything, ~5 minutes on 2 cores
    python benchmarks/bench_scaleout.py --part s3      # one part

The machine is shared and small (2 cores): timings are noisy, request counts are exact.
Results also go to ``benchmarks/results/scaleout.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


# --- helpers -------------------------------------------------------------------------------------


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


@contextmanager
def _cluster(n_workers: int) -> Iterator[tuple[Any, float]]:
    from distributed import Client, LocalCluster

    started = time.perf_counter()
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        seconds = time.perf_counter() - started
        yield client, seconds


def _warm_worker(modules: list[str]) -> None:
    import importlib

    for name in modules:
        importlib.import_module(name)


def _copy_run(trained: Path, target: Path) -> Path:
    """A fresh run with the trained checkpoints and no artifacts."""
    shutil.copytree(trained, target, ignore=shutil.ignore_patterns("artifacts"))
    return target


def _timed_run(run: Path | str, **kwargs: Any) -> tuple[float, Any]:
    from epochstore import AnalysisPipeline

    pipeline = AnalysisPipeline(run, storage_options=kwargs.pop("storage_options", None))
    started = time.perf_counter()
    report = pipeline.run(progress=False, **kwargs)
    seconds = time.perf_counter() - started
    assert report.ok, report.failed
    return seconds, report


def _measured_run(run: Path, parallel: int, **kwargs: Any) -> dict[str, float]:
    """Run the pipeline on ``run``; return wall time, steady-state throughput and task time.

    The steady state is taken from the completion times of the epochs after the first one, so
    it excludes start-up (spawning processes, importing torch, opening the store).
    """
    from epochstore import AnalysisPipeline

    done: list[float] = []
    pipeline = AnalysisPipeline(run)
    started = time.perf_counter()
    report = pipeline.run(progress=False, callback=lambda *_: done.append(time.perf_counter()),
                          **kwargs)
    wall = time.perf_counter() - started
    assert report.ok, report.failed
    n = len(done)
    steady = (done[-1] - done[0]) / (n - 1)
    task = statistics.median(r.seconds for r in report.results)
    return {
        "wall_s": wall,
        "epochs": n,
        "epochs_per_s": n / wall,
        "steady_epochs_per_s": 1 / steady,
        "first_result_s": done[0] - started,
        "task_ms": 1000 * task,
        # Time a worker spends per epoch beyond the task itself (scheduling, transfer, idle).
        "overhead_ms": 1000 * (steady * parallel - task),
    }


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _compare(
    trained: Path, work: Path, repeat: int, paths: dict[str, Callable[[Path], dict[str, float]]]
) -> dict[str, list[dict[str, float]]]:
    """Run every path ``repeat`` times, interleaved, so that a shared machine's load hits all."""
    out: dict[str, list[dict[str, float]]] = {name: [] for name in paths}
    for r in range(repeat):
        for i, (name, fn) in enumerate(paths.items()):
            result = fn(_copy_run(trained, work / f"run-{r}-{i}-{time.monotonic_ns()}"))
            out[name].append(result)
            print(f"  {name}: {result['wall_s']:.2f} s, {result['steady_epochs_per_s']:.2f} "
                  f"epochs/s steady, task {result['task_ms']:.0f} ms", file=sys.stderr)
    return out


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the highest steady throughput (the least disturbed by other load)."""
    return max(runs, key=lambda r: r["steady_epochs_per_s"])


# --- part 1: scaling with Dask workers ------------------------------------------------------


def bench_scaling(work: Path, *, p: int, epochs: int, repeat: int) -> dict[str, Any]:
    from epochstore.families import get_family

    family = get_family("modadd")
    config = {
        **family.presets()["demo"],
        "p": p,
        "num_epochs": epochs,
        "checkpoint_epochs": None,
        "checkpoint_every": 1,
    }
    trained = work / "modadd-trained"
    started = time.perf_counter()
    family.train(str(trained), config)
    print(f"trained modadd p={p}, {epochs} checkpoints in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    warm = ["torch", "epochstore.pipeline.worker", "epochstore.families.modadd"]
    with _cluster(1) as (one, startup1), _cluster(2) as (two, startup2):
        one.run(_warm_worker, warm)
        two.run(_warm_worker, warm)

        def sequential(run: Path) -> dict[str, float]:
            with _torch_threads(1):
                return _measured_run(run, 1)

        runs = _compare(trained, work, repeat, {
            "in-process sequential (1 torch thread)": sequential,
            "Dask, 1 worker x 1 thread": lambda run: _measured_run(run, 1, client=one),
            "Dask, 2 workers x 1 thread": lambda run: _measured_run(run, 2, client=two),
        })
    best = {name: _best(r) for name, r in runs.items()}
    ratio = (best["Dask, 2 workers x 1 thread"]["steady_epochs_per_s"]
             / best["Dask, 1 worker x 1 thread"]["steady_epochs_per_s"])
    wall_ratio = (best["Dask, 2 workers x 1 thread"]["epochs_per_s"]
                  / best["Dask, 1 worker x 1 thread"]["epochs_per_s"])
    # Runs of one round ran back to back, under about the same outside load.
    round_ratios = [
        two["steady_epochs_per_s"] / one["steady_epochs_per_s"]
        for one, two in zip(runs["Dask, 1 worker x 1 thread"], runs["Dask, 2 workers x 1 thread"],
                            strict=True)
    ]
    return {"p": p, "epochs": best["Dask, 1 worker x 1 thread"]["epochs"], "runs": runs,
            "best": best, "scaling_ratio": ratio, "scaling_ratio_wall": wall_ratio,
            "round_ratios": round_ratios,
            "cluster_startup_s": {"1 worker": startup1, "2 workers": startup2}}


# --- part 2: per-epoch overhead (toy family) ------------------------------------------------------


def _noop(x: int) -> int:
    return x


def bench_overhead(work: Path, *, epochs: int, repeat: int) -> dict[str, Any]:
    from epochstore.testing.toy import ToyFamily

    trained = work / "toy-trained"
    ToyFamily().train(str(trained), {"epochs": list(range(epochs))})
    with _cluster(2) as (client, startup):
        client.run(_warm_worker, ["torch", "epochstore.pipeline.worker"])
        started = time.perf_counter()
        client.gather(client.map(_noop, range(200), pure=False))
        empty_ms = 1000 * (time.perf_counter() - started) / 200

        def sequential(run: Path) -> dict[str, float]:
            with _torch_threads(1):
                return _measured_run(run, 1)

        runs = _compare(trained, work, repeat, {
            "in-process sequential (1 torch thread)": sequential,
            "2 local processes (workers=2)": lambda run: _measured_run(run, 2, workers=2),
            "Dask LocalCluster, 2 workers x 1 thread": lambda run: _measured_run(
                run, 2, client=client
            ),
        })
    return {"epochs": epochs, "runs": runs, "best": {n: _best(r) for n, r in runs.items()},
            "cluster_startup_s": startup, "empty_dask_task_ms": empty_ms}


# --- part 3: S3 requests --------------------------------------------------------------------------


def _old_listing(store: Any, key: str) -> list[int]:
    """The listing epochstore used before: one list_dir, then one existence check per epoch."""
    from zarr.core.sync import sync

    from epochstore.naming import parse_epoch_name

    async def run() -> list[int]:
        names = [n async for n in store.list_dir(key)]
        candidates = [(e, n) for n in names if (e := parse_epoch_name(n)) is not None]
        flags = await asyncio.gather(*(store.exists(f"{key}/{n}/zarr.json") for _, n in candidates))
        return sorted(e for (e, _), ok in zip(candidates, flags, strict=True) if ok)

    return sync(run())


def bench_s3(work: Path, *, epochs: int) -> dict[str, Any]:
    import s3fs

    from epochstore import ArtifactLoader, ArtifactStore
    from epochstore.testing.s3 import TEST_CREDENTIALS, MotoS3Server
    from epochstore.testing.toy import ToyFamily

    os.environ.update(TEST_CREDENTIALS)
    shape = (64, 23, 23)
    out: dict[str, Any] = {"epochs": epochs, "field_shape": list(shape), "rows": []}
    with MotoS3Server() as server:
        server.create_bucket("bench")
        options = server.storage_options
        url = "s3://bench/runs/p23"
        store = ArtifactStore(url, storage_options=options)
        rng = np.random.default_rng(0)
        dims = {"activations": ("neuron", "a", "b")}
        # One neuron per chunk, all chunks in one shard: the default layout of the real
        # (512, 113, 113) activations, at a size moto holds 1000 times in memory.
        chunks = {"activations": (1, shape[1], shape[2])}
        for epoch in range(3):
            data = np.maximum(rng.standard_normal(shape), 0).astype(np.float32)
            store.write_epoch("neuron_activations", epoch, {"activations": data}, dims=dims,
                              chunks=chunks)
        server.reset_requests()
        data = np.maximum(rng.standard_normal(shape), 0).astype(np.float32)
        store.write_epoch("neuron_activations", 3, {"activations": data}, dims=dims)
        write_counts = server.reset_requests()

        # The other epochs: the objects of epoch 3 copied under each epoch's name (the group's
        # metadata with its own epoch number), written concurrently to save time.
        fs = s3fs.S3FileSystem(use_listings_cache=False, **options)
        node = "bench/runs/p23/artifacts/neuron_activations/epoch_00003"
        objects = {path: fs.cat_file(path) for path in fs.find(node)}
        group = json.loads(objects[f"{node}/zarr.json"])
        batch: dict[str, bytes] = {}
        for epoch in range(4, epochs):
            name = f"epoch_{epoch:05d}"
            for path, content in objects.items():
                target = path.replace("epoch_00003", name)
                if path.endswith("epoch_00003/zarr.json"):
                    group["attributes"]["epoch"] = epoch
                    content = json.dumps(group).encode()
                batch[target] = content
        started = time.perf_counter()
        fs.pipe(batch, batch_size=64)
        print(f"  wrote {len(batch)} objects in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)

        def measure(what: str, fn: Callable[[], Any]) -> Any:
            server.reset_requests()
            started = time.perf_counter()
            value = fn()
            seconds = time.perf_counter() - started
            counts = server.reset_requests()
            out["rows"].append({"what": what, "requests": dict(counts),
                                "total": sum(counts.values()), "seconds": seconds})
            print(f"  {what}: {dict(counts)} in {seconds:.2f} s", file=sys.stderr)
            return value

        loader = ArtifactLoader(url, storage_options=options)
        got = measure(f"get_epochs, {epochs} epochs (new loader)",
                      lambda: loader.get_epochs("neuron_activations"))
        assert got == list(range(epochs)), got[:5]
        measure(f"get_epochs, {epochs} epochs (again)",
                lambda: loader.get_epochs("neuron_activations"))
        old = measure(f"before: list_dir + 1 exists per epoch, {epochs} epochs",
                      lambda: _old_listing(loader.store, "artifacts/neuron_activations"))
        assert old == got
        fresh = ArtifactLoader(url, storage_options=options)
        ds = measure(f"open load_epochs lazily, {epochs} epochs (new loader)",
                     lambda: fresh.load_epochs("neuron_activations"))
        measure("open load_epochs lazily (again)", lambda: fresh.load_epochs("neuron_activations"))
        values = measure(f"one neuron across {epochs} epochs (chunks='zarr', dask)",
                         lambda: ds["activations"].sel(neuron=7).values)
        assert values.shape == (epochs, 23, 23)
        lazy = fresh.load_epochs("neuron_activations", chunks=None)
        measure(f"one neuron across {epochs} epochs (chunks=None)",
                lambda: lazy["activations"].sel(neuron=7).values)
        measure("has_epoch (absent)", lambda: loader.has_epoch("neuron_activations", 99_999))
        out["rows"].append({"what": "write_epoch, 1 field (steady state)",
                            "requests": dict(write_counts), "total": sum(write_counts.values()),
                            "seconds": None})

        # One pipeline task on S3 (toy family: 3 analyzers, 1 + 2 + 1 fields).
        toy = "s3://bench/runs/toy"
        ToyFamily().train(toy, {"epochs": list(range(8))}, storage_options=options)
        server.reset_requests()
        seconds, _ = _timed_run(toy, storage_options=options)
        counts = server.reset_requests()
        out["rows"].append({
            "what": "pipeline run, toy family, 8 epochs x 3 analyzers (in-process)",
            "requests": dict(counts), "total": sum(counts.values()), "seconds": seconds,
        })
        print(f"  toy pipeline: {dict(counts)} in {seconds:.2f} s", file=sys.stderr)
    return out


# --- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["all", "scaling", "overhead", "s3"], default="all")
    parser.add_argument("--p", type=int, default=31, help="modadd prime for the scaling part")
    parser.add_argument("--scaling-epochs", type=int, default=24)
    parser.add_argument("--overhead-epochs", type=int, default=120)
    parser.add_argument("--s3-epochs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)

    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
    }
    work = Path(tempfile.mkdtemp(prefix="bench-scaleout-", dir=args.workdir))
    try:
        if args.part in ("all", "s3"):
            print("[s3] requests", file=sys.stderr)
            s3 = results["s3"] = bench_s3(work, epochs=args.s3_epochs)
            print(f"\n### S3 requests ({s3['epochs']} epochs, field {s3['field_shape']}, "
                  "1-neuron chunks in one shard per epoch)\n")
            print(_table(
                ["operation", "requests", "by kind", "time on moto (s)"],
                [[r["what"], r["total"],
                  ", ".join(f"{k} {v}" for k, v in sorted(r["requests"].items())),
                  "-" if r["seconds"] is None else r["seconds"]] for r in s3["rows"]],
            ))
        if args.part in ("all", "overhead"):
            print("[overhead] toy family", file=sys.stderr)
            ov = results["overhead"] = bench_overhead(
                work, epochs=args.overhead_epochs, repeat=args.repeat
            )
            print(f"\n### Per-epoch cost of the execution paths (toy family, {ov['epochs']} "
                  "epochs, local run directory)\n")
            print(_table(
                ["path", "wall (s)", "first result (s)", "steady epochs/s", "task (ms)",
                 "overhead per epoch per worker (ms)"],
                [[name, r["wall_s"], r["first_result_s"], r["steady_epochs_per_s"],
                  r["task_ms"], r["overhead_ms"]] for name, r in ov["best"].items()],
            ))
            print(f"\nLocalCluster start-up: {ov['cluster_startup_s']:.1f} s; an empty Dask task "
                  f"costs {ov['empty_dask_task_ms']:.1f} ms of wall time (2 workers).")
        if args.part in ("all", "scaling"):
            print("[scaling] modadd", file=sys.stderr)
            sc = results["scaling"] = bench_scaling(
                work, p=args.p, epochs=args.scaling_epochs, repeat=args.repeat
            )
            print(f"\n### Dask scaling (modadd p={sc['p']}, {sc['epochs']} epochs, local run "
                  "directory)\n")
            print(_table(
                ["execution", "wall (s)", "epochs/s (wall)", "steady epochs/s", "task (ms)"],
                [[name, r["wall_s"], r["epochs_per_s"], r["steady_epochs_per_s"], r["task_ms"]]
                 for name, r in sc["best"].items()],
            ))
            rounds = ", ".join(f"{r:.2f}" for r in sc["round_ratios"])
            print(f"\nScaling ratio, 2 workers / 1 worker: {sc['scaling_ratio']:.2f} (best "
                  f"steady), {sc['scaling_ratio_wall']:.2f} (best wall); per round (same outside "
                  f"load): {rounds}.")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    name = "scaleout.json" if args.part == "all" else f"scaleout-{args.part}.json"
    (out / name).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
