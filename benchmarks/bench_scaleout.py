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
    n = len(list((trained / "checkpoints").glob("checkpoint_epoch_*.safetensors")))
    results: dict[str, Any] = {"p": p, "epochs": n, "runs": {}}

    def record(name: str, seconds: list[float], extra: dict[str, Any] | None = None) -> None:
        best = min(seconds)
        results["runs"][name] = {"seconds": seconds, "epochs_per_s": n / best, **(extra or {})}
        print(f"  {name}: {n / best:.2f} epochs/s (best of {seconds})", file=sys.stderr)

    counter = iter(range(10_000))
    seq = [_timed_run(_copy_run(trained, work / f"s{next(counter)}"))[0] for _ in range(repeat)]
    record("in-process sequential (torch 2 threads)", seq)
    warm = ["torch", "epochstore.pipeline.worker", "epochstore.families.modadd"]
    for workers in (1, 2):
        with _cluster(workers) as (client, startup):
            client.run(_warm_worker, warm)
            times = [
                _timed_run(_copy_run(trained, work / f"s{next(counter)}"), client=client)[0]
                for _ in range(repeat)
            ]
        record(f"Dask LocalCluster, {workers} worker(s) x 1 thread", times,
               {"cluster_startup_s": startup})
    one = results["runs"]["Dask LocalCluster, 1 worker(s) x 1 thread"]["epochs_per_s"]
    two = results["runs"]["Dask LocalCluster, 2 worker(s) x 1 thread"]["epochs_per_s"]
    results["scaling_ratio"] = two / one
    return results


# --- part 2: per-epoch overhead (toy family) ------------------------------------------------------


def _noop(x: int) -> int:
    return x


def bench_overhead(work: Path, *, epochs: int, repeat: int) -> dict[str, Any]:
    from epochstore.pipeline.executors import ProcessExecutor
    from epochstore.testing.toy import ToyFamily

    trained = work / "toy-trained"
    ToyFamily().train(str(trained), {"epochs": list(range(epochs))})
    counter = iter(range(10_000))
    out: dict[str, Any] = {"epochs": epochs, "runs": {}}

    def record(name: str, seconds: list[float], startup: float = 0.0, **extra: Any) -> None:
        best = min(seconds)
        out["runs"][name] = {
            "seconds": seconds,
            "startup_s": startup,
            "ms_per_epoch": 1000 * (best - startup) / epochs,
            **extra,
        }
        print(f"  {name}: {1000 * (best - startup) / epochs:.1f} ms/epoch", file=sys.stderr)

    runs = [_timed_run(_copy_run(trained, work / f"t{next(counter)}")) for _ in range(repeat)]
    task_ms = statistics.median(r.seconds for _, report in runs for r in report.results) * 1000
    record("in-process sequential", [s for s, _ in runs], task_ms=task_ms)

    # Local processes: a fresh spawn pool per run; its start-up (spawn + import torch) is timed
    # with trivial tasks and subtracted.
    startups = []
    for _ in range(repeat):
        started = time.perf_counter()
        list(ProcessExecutor(2).map_unordered(_noop, [0, 1]))
        startups.append(time.perf_counter() - started)
    times = [
        _timed_run(_copy_run(trained, work / f"t{next(counter)}"), workers=2)[0]
        for _ in range(repeat)
    ]
    record("2 local processes (workers=2)", times, min(startups))

    with _cluster(2) as (client, startup):
        client.run(_warm_worker, ["torch", "epochstore.pipeline.worker"])
        started = time.perf_counter()
        client.gather(client.map(_noop, range(epochs), pure=False))
        empty_ms = 1000 * (time.perf_counter() - started) / epochs
        times = [
            _timed_run(_copy_run(trained, work / f"t{next(counter)}"), client=client)[0]
            for _ in range(repeat)
        ]
    record("Dask LocalCluster, 2 workers (started)", times, 0.0,
           cluster_startup_s=startup, empty_task_ms=empty_ms)
    return out


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
    parser.add_argument("--repeat", type=int, default=2)
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
                  "epochs)\n")
            print(_table(
                ["path", "wall per epoch (ms)", "start-up (s)", "wall runs (s)"],
                [[name, r["ms_per_epoch"],
                  r.get("cluster_startup_s", r["startup_s"]),
                  ", ".join(f"{s:.2f}" for s in r["seconds"])]
                 for name, r in ov["runs"].items()],
            ))
            dask = ov["runs"]["Dask LocalCluster, 2 workers (started)"]
            procs = ov["runs"]["2 local processes (workers=2)"]
            print(f"\nDask minus local processes: "
                  f"{dask['ms_per_epoch'] - procs['ms_per_epoch']:+.1f} ms per epoch; an empty "
                  f"Dask task costs {dask['empty_task_ms']:.1f} ms (2 workers).")
        if args.part in ("all", "scaling"):
            print("[scaling] modadd", file=sys.stderr)
            sc = results["scaling"] = bench_scaling(
                work, p=args.p, epochs=args.scaling_epochs, repeat=args.repeat
            )
            print(f"\n### Dask scaling (modadd p={sc['p']}, {sc['epochs']} epochs, local run "
                  "directory)\n")
            print(_table(
                ["execution", "epochs/s (best)", "runs (s)"],
                [[name, r["epochs_per_s"], ", ".join(f"{s:.1f}" for s in r["seconds"])]
                 for name, r in sc["runs"].items()],
            ))
            print(f"\nScaling ratio, 2 workers / 1 worker: {sc['scaling_ratio']:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    name = "scaleout.json" if args.part == "all" else f"scaleout-{args.part}.json"
    (out / name).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
