#!/usr/bin/env python
"""Reads at the machine's limit (issue 14): engines, lazy reductions, small fields, listing.

Every row is timed in interleaved rounds (each round runs every row once, in a shuffled
order), so that the load of other jobs on the shared machine falls on all rows alike; the
tables give medians and ratios of medians to the raw ``.npy`` read of the same run.

Rows:

- **full epoch** (``(512, 113, 113)`` float32, 26 MB, default LZ4 and ``codec="none"``):
  ``load_epoch(...)[f].values`` (epochstore's direct path), the same stored array read by zarr
  itself (zarr's default codec pipeline, and the ``zarrs`` Rust pipeline if installed),
  tensorstore (if installed), against ``np.load`` of a raw ``.npy``;
- **mean over epochs**: ``load_epochs(a)[f].mean("epoch")`` with the default dask blocks, with
  ``chunks="zarr"`` and with whole-epoch blocks (the default before slabs, "(before)"), a loop
  of ``load_epoch``, a loop of ``np.load``;
- **one neuron across epochs**: default dask, ``chunks=None``, a loop over per-epoch ``.npz``
  and over memory-mapped ``.npy``;
- **small fields across 1,000 epochs**: one scalar and one 56-vector
  (``load_epochs(a)[f].values``, default and ``chunks=None``), from the derived series and,
  side by side, from the nodes as before it ("no series (before)"); ``get_epochs``.

Run from the repository root::

    python benchmarks/bench_reads.py                 # 16 epochs, ~5 min the first time
    python benchmarks/bench_reads.py --epochs 95     # the storage suite's size
    python benchmarks/bench_reads.py --profile       # also the breakdown of one full-epoch read

Data is written once under ``--workdir`` (default ``/tmp/epochstore-bench-reads``) and reused.
Writes ``benchmarks/results/reads.json`` (``--output``) and prints markdown tables.
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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.core.sync import sync

from epochstore import ArtifactLoader, ArtifactStore
from epochstore.store import direct, lazy, reader, series

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_store import Activations

ROOT = Path(__file__).resolve().parent
A, F = "neuron_activations", "activations"
SMALL_EPOCHS = 1000


def build(workdir: Path, n_epochs: int) -> None:
    """Write the runs once: default and uncompressed activations, .npy/.npz, small fields."""
    done = workdir / f"done-{n_epochs}"
    if done.exists():
        return
    acts = Activations()
    for codec in ("default", "none"):
        store = ArtifactStore(workdir / codec, codec=codec)
        written = set(store.get_epochs(A)) if A in store.get_available_analyzers() else set()
        for e in range(n_epochs):
            if e in written:
                continue
            data = acts.epoch(e, n_epochs)
            store.write_epoch(A, e, {F: data}, dims={F: ("neuron", "a", "b")})
            if codec == "default":
                np.save(workdir / f"e{e:05d}.npy", data)
                np.savez_compressed(workdir / f"e{e:05d}.npz", activations=data)
    small = ArtifactStore(workdir / "small")
    analyzers = small.get_available_analyzers()
    have = set(small.get_epochs("metrics")) if "metrics" in analyzers else set()
    rng = np.random.default_rng(0)
    for e in range(SMALL_EPOCHS):
        if e not in have:
            small.write_epoch(
                "metrics", e,
                {"loss": np.float32(e), "norms": rng.random(56, dtype=np.float32)},
            )
    done.touch()


def _array_path(workdir: Path, codec: str, epoch: int) -> Path:
    return workdir / codec / "artifacts" / A / f"epoch_{epoch:05d}" / F


def engines(workdir: Path) -> dict[str, Callable[[], Any]]:
    """Full-epoch readers of the same stored array."""
    rows: dict[str, Callable[[], Any]] = {}
    path = _array_path(workdir, "default", 3)

    def zarr_read(pipeline: str | None) -> Callable[[], Any]:
        def read() -> Any:
            config = {"codec_pipeline.path": pipeline} if pipeline else {}
            with zarr.config.set(config):
                return zarr.open_array(str(path), mode="r")[...]
        return read

    rows["zarr (default pipeline)"] = zarr_read(None)
    try:
        import zarrs  # noqa: F401

        rows["zarr + zarrs pipeline"] = zarr_read("zarrs.ZarrsCodecPipeline")
    except ImportError:
        pass
    try:
        import tensorstore as ts

        handle = ts.open(
            {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path)}},
            open=True, read=True,
        ).result()
        rows["tensorstore"] = lambda: handle.read().result()
    except ImportError:
        pass
    return rows


def _without_series(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` as it ran before the derived series: every small field read from its nodes."""

    def run() -> Any:
        kept = series.SERIES_MAX_FIELD_BYTES
        series.SERIES_MAX_FIELD_BYTES = -1  # no field has a series: the earlier read path
        try:
            return fn()
        finally:
            series.SERIES_MAX_FIELD_BYTES = kept

    return run


def _slab_before(
    root: Path, paths: Sequence[str], layout: direct.DirectLayout, lead: slice, out: np.ndarray
) -> list[int]:
    """``direct.read_slab_local`` before engine2: ``os.pread`` into fresh bytes, then decode."""
    c0 = layout.chunks[0]
    first, last = lead.start // c0, -(-lead.stop // c0)
    failed = []
    for i, path in enumerate(paths):
        try:
            fd = os.open(f"{root}/{path}/{layout.key}", os.O_RDONLY)
            try:
                size = os.fstat(fd).st_size
                raw_index = np.frombuffer(
                    os.pread(fd, layout.index_nbytes, size - layout.index_nbytes), np.uint8
                )
                raw_index = direct._checked(raw_index, "shard index")
                index = raw_index.view("<u8").reshape(layout.n_chunks, 2)[first:last]
                start, stop = int(index[:, 0].min()), int((index[:, 0] + index[:, 1]).max())
                data = np.frombuffer(os.pread(fd, stop - start, start), np.uint8)
            finally:
                os.close(fd)
            for k, (offset, nbytes) in enumerate(index.tolist()):
                piece = data[offset - start : offset - start + nbytes]
                direct._decode_into(layout, piece, out[i, k * c0 : (k + 1) * c0], path)
        except (OSError, ValueError, RuntimeError, TypeError):
            failed.append(i)
    return failed


@contextmanager
def _engine1() -> Iterator[None]:
    """The read path before engine2 (issue 14, items 1 and 3), in this process.

    Full fields through ``read_direct`` on the event loop (read into a buffer, decode into a
    block), group metadata through the event loop, CRC32C by google-crc32c, slabs of 32 MiB
    read by ``os.pread`` into fresh bytes.
    """
    import google_crc32c

    saved = (lazy.EpochFieldArray._read_full_local, reader.local_root, direct._crc32c,
             reader.DASK_BLOCK_BYTES, lazy.read_slab_local)
    lazy.EpochFieldArray._read_full_local = lambda self: None  # type: ignore[method-assign]
    reader.local_root = lambda store: None  # type: ignore[assignment]
    direct._crc32c = google_crc32c.value
    reader.DASK_BLOCK_BYTES = 32 * 2**20
    lazy.read_slab_local = _slab_before
    try:
        yield
    finally:
        (lazy.EpochFieldArray._read_full_local, reader.local_root, direct._crc32c,  # type: ignore[method-assign]
         reader.DASK_BLOCK_BYTES, lazy.read_slab_local) = saved


def _before(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` on the read path before engine2."""

    def run() -> Any:
        with _engine1():
            return fn()

    return run


def _before_rows(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` without the local rows reader (``direct.read_rows_local``): parts of epochs read
    by ``read_direct`` on the event loop, one epoch after another, as before it."""

    def run() -> Any:
        saved = lazy.StackedFieldArray._read_rows
        lazy.StackedFieldArray._read_rows = lambda self, indices, inner: None  # type: ignore[method-assign]
        try:
            return fn()
        finally:
            lazy.StackedFieldArray._read_rows = saved  # type: ignore[method-assign]

    return run


def _in_memory_mean(loader: ArtifactLoader) -> Callable[[], Any]:
    """xarray's ``mean("epoch")`` over the default blocks with the data already in memory.

    The reduction's own cost, without any read: what ``load_epochs(...).mean`` cannot go below.
    """
    held: dict[str, Any] = {}

    def run() -> Any:
        if not held:
            lazy = loader.load_epochs(A)[F]
            held["x"] = lazy.copy(data=lazy.data.persist())
        return held["x"].mean("epoch").values

    return run


def rows_for(workdir: Path, n_epochs: int) -> dict[str, Callable[[], Any]]:
    loaders = {c: ArtifactLoader(workdir / c) for c in ("default", "none")}
    small = ArtifactLoader(workdir / "small")
    epochs = list(range(n_epochs))
    npy = [workdir / f"e{e:05d}.npy" for e in epochs]
    npz = [workdir / f"e{e:05d}.npz" for e in epochs]
    rows: dict[str, Callable[[], Any]] = {
        "full epoch: .npy": lambda: np.load(npy[3]),
        "full epoch: epochstore default (LZ4)": lambda: loaders["default"].load_epoch(A, 3)[
            F
        ].values,
        "full epoch: epochstore codec=none": lambda: loaders["none"].load_epoch(A, 3)[F].values,
        "full epoch: epochstore default (LZ4), before engine2": _before(
            lambda: loaders["default"].load_epoch(A, 3)[F].values
        ),
        "full epoch: epochstore codec=none, before engine2": _before(
            lambda: loaders["none"].load_epoch(A, 3)[F].values
        ),
    }
    for name, fn in engines(workdir).items():
        rows[f"full epoch: {name}"] = fn
    rows |= {
        "mean over epochs: .npy loop": lambda: sum(np.load(p) for p in npy) / len(npy),
        "mean over epochs: load_epoch loop": lambda: sum(
            loaders["default"].load_epoch(A, e)[F].values for e in epochs
        ) / len(epochs),
        "mean over epochs: load_epochs default (auto)": lambda: loaders["default"].load_epochs(
            A
        )[F].mean("epoch").values,
        "mean over epochs: load_epoch loop, before engine2": _before(
            lambda: sum(loaders["default"].load_epoch(A, e)[F].values for e in epochs)
            / len(epochs)
        ),
        "mean over epochs: load_epochs default (auto), before engine2": _before(
            lambda: loaders["default"].load_epochs(A)[F].mean("epoch").values
        ),
        "mean over epochs: load_epochs chunks=zarr": lambda: loaders["default"].load_epochs(
            A, chunks="zarr"
        )[F].mean("epoch").values,
        "mean over epochs: floor, xarray mean of the same blocks already in memory": (
            _in_memory_mean(loaders["default"])
        ),
        "mean over epochs: load_epochs whole-epoch blocks (before)": lambda: loaders[
            "default"
        ].load_epochs(A, chunks={"epoch": 1})[F].mean("epoch").values,
        "one neuron across: .npy mmap": lambda: np.stack(
            [np.load(p, mmap_mode="r")[7] for p in npy]
        ),
        "one neuron across: .npz": lambda: np.stack([np.load(p)["activations"][7] for p in npz]),
        "one neuron across: load_epochs default (auto)": lambda: loaders["default"].load_epochs(
            A
        )[F].isel(neuron=7).values,
        "one neuron across: load_epochs chunks=None": lambda: loaders["default"].load_epochs(
            A, chunks=None
        )[F].isel(neuron=7).values,
        "one neuron across: load_epochs default (auto), before rows": _before_rows(
            lambda: loaders["default"].load_epochs(A)[F].isel(neuron=7).values
        ),
        "one neuron across: load_epochs chunks=None, before rows": _before_rows(
            lambda: loaders["default"].load_epochs(A, chunks=None)[F].isel(neuron=7).values
        ),
        "one neuron across: load_epochs whole-epoch blocks (before)": lambda: loaders[
            "default"
        ].load_epochs(A, chunks={"epoch": 1})[F].isel(neuron=7).values,
        "scalar across 1000: load_epochs default": lambda: small.load_epochs("metrics")[
            "loss"
        ].values,
        "scalar across 1000: load_epochs chunks=None": lambda: small.load_epochs(
            "metrics", chunks=None
        )["loss"].values,
        "scalar across 1000: load_epochs default, no series (before)": _without_series(
            lambda: small.load_epochs("metrics")["loss"].values
        ),
        "scalar across 1000: load_epochs chunks=None, no series (before)": _without_series(
            lambda: small.load_epochs("metrics", chunks=None)["loss"].values
        ),
        "56-vector across 1000: load_epochs default": lambda: small.load_epochs("metrics")[
            "norms"
        ].values,
        "56-vector across 1000: load_epochs default, no series (before)": _without_series(
            lambda: small.load_epochs("metrics")["norms"].values
        ),
        "get_epochs 1000": lambda: small.get_epochs("metrics"),
    }
    return rows


def measure(rows: dict[str, Callable[[], Any]], rounds: int) -> dict[str, dict[str, float]]:
    for fn in rows.values():  # warm-up: page cache, imports, first-call costs
        fn()
    times: dict[str, list[float]] = {k: [] for k in rows}
    order = list(rows)
    rng = random.Random(0)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            start = time.perf_counter()
            rows[name]()
            times[name].append(time.perf_counter() - start)
    return {
        k: {"median_ms": 1000 * statistics.median(v), "min_ms": 1000 * min(v), "n": len(v)}
        for k, v in times.items()
    }


def profile(workdir: Path, rounds: int) -> dict[str, dict[str, float]]:
    """Where the milliseconds of one full-epoch read go (each step timed alone)."""
    out: dict[str, dict[str, float]] = {}
    for codec in ("default", "none"):
        loader = ArtifactLoader(workdir / codec)
        store = loader.store
        path = f"artifacts/{A}/epoch_00003/{F}"
        meta = sync(lazy._array_metadata(store, path))
        assert meta is not None
        layout = direct.DirectLayout.from_metadata(meta)
        assert layout is not None
        shard = sync(direct._get(store, f"{path}/{layout.key}"))
        index = np.ascontiguousarray(shard[-layout.index_nbytes : -4]).view("<u8").reshape(-1, 2)
        spans = [(int(o), int(o + n)) for o, n in index]
        result = np.empty(layout.shape, layout.dtype)

        def crc(spans: list[tuple[int, int]] = spans, shard: np.ndarray = shard) -> None:
            for a, b in spans:
                direct._checked(shard[a:b], "chunk")

        def decode(spans: list[tuple[int, int]] = spans, shard: np.ndarray = shard,
                   result: np.ndarray = result, layout: direct.DirectLayout = layout) -> None:
            rows = layout.chunks[0]
            for i, (a, b) in enumerate(spans):
                body = shard[a : b - 4] if layout.crc32c else shard[a:b]
                target = result[i * rows : (i + 1) * rows]
                if layout.blosc:
                    direct.blosc.decompress(body, target)
                else:
                    target.reshape(-1).view(np.uint8)[:] = body

        steps: dict[str, Callable[[], Any]] = {
            "end to end: load_epoch(a, e)[f].values": lambda ld=loader: ld.load_epoch(
                A, 3
            )[F].values,
            "metadata + xarray: load_epoch(a, e) (group zarr.json, Dataset)": lambda ld=loader: (
                ld.load_epoch(A, 3)
            ),
            "write-token check: the array's zarr.json, read twice": lambda s=store, p=path: [
                sync(lazy._array_metadata(s, p)) for _ in range(2)
            ],
            "read_direct (GET + checksums + decode, 2 threads)": lambda s=store, p=path,
            lay=layout: sync(direct.read_direct(s, p, lay, ())),
            "GET of the shard (page cache -> fresh buffer)": lambda s=store, p=path,
            lay=layout: sync(direct._get(s, f"{p}/{lay.key}")),
            "CRC32C of every chunk (1 thread)": crc,
            "decode (LZ4) or copy (none) into the result (1 thread)": decode,
            "np.load of the .npy (reference)": lambda: np.load(workdir / "e00003.npy"),
            "memcpy of 26 MB (reference)": lambda r=result: r.copy(),
        }
        out |= {f"{codec}: {k}": v for k, v in measure(steps, rounds).items()}
    return out


def s3_reads(n_epochs: int, rounds: int) -> dict[str, dict[str, float]]:
    """One neuron across ``n_epochs`` on moto's S3 server: s3fs (fsspec) against obstore.

    The field is ``(64, 23, 23)`` float32 with one neuron per chunk in one shard per epoch (as
    ``bench_scaleout.py --part s3``). Requests are counted by the server.
    """
    import os

    from obstore.store import S3Store
    from zarr.storage import ObjectStore

    from epochstore.testing.s3 import TEST_CREDENTIALS, MotoS3Server

    os.environ.update(TEST_CREDENTIALS)
    out: dict[str, dict[str, float]] = {}
    with MotoS3Server() as server:
        server.create_bucket("bench-reads")
        url = "s3://bench-reads/run"
        store = ArtifactStore(url, storage_options=server.storage_options)
        rng = np.random.default_rng(0)
        for e in range(n_epochs):
            store.write_epoch(
                "a", e, {"x": rng.random((64, 23, 23), dtype=np.float32)},
                dims={"x": ("neuron", "p", "q")}, chunks={"x": (1, 23, 23)},
            )
        obj = ObjectStore(S3Store(
            "bench-reads", prefix="run", endpoint=server.endpoint_url,
            access_key_id="testing", secret_access_key="testing", region="us-east-1",
            client_options={"allow_http": True}, virtual_hosted_style_request=False,
        ), read_only=True)
        loaders = {
            "s3fs": ArtifactLoader(url, storage_options=server.storage_options),
            "obstore": ArtifactLoader(obj),
        }
        expected = None
        for _ in range(rounds):
            for name, loader in loaders.items():
                for chunks in ("auto", None):
                    loader.get_epochs("a")  # listing cached in neither; counted apart
                    server.reset_requests()
                    start = time.perf_counter()
                    values = loader.load_epochs("a", chunks=chunks)["x"].isel(neuron=7).values
                    elapsed = time.perf_counter() - start
                    requests = sum(server.requests().values())
                    if expected is None:
                        expected = values
                    assert np.array_equal(values, expected)
                    row = out.setdefault(
                        f"one neuron across {n_epochs} epochs on S3 (moto): {name}, "
                        f"chunks={chunks!r}", {"times": [], "requests": requests},
                    )
                    row["times"].append(elapsed)  # type: ignore[union-attr]
    return {
        k: {"median_ms": 1000 * statistics.median(v["times"]),  # type: ignore[arg-type]
            "min_ms": 1000 * min(v["times"]), "n": len(v["times"]),  # type: ignore[arg-type]
            "requests": v["requests"]}  # type: ignore[dict-item]
        for k, v in out.items()
    }


#: The reductions whose peak memory ``--rss`` measures, each in a fresh process.
RSS_MODES = ("load_epoch loop", "load_epochs default (auto)",
             "load_epochs default (auto), before engine2")


def _vm_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_child(workdir: Path, mode: str) -> float:
    """Peak RSS growth (MB) of one mean over epochs: ``VmHWM`` after minus ``VmRSS`` before."""
    loader = ArtifactLoader(workdir / "default")
    epochs = loader.get_epochs(A)
    loader.load_epochs(A)  # the manifest, imports: not the reduction's memory
    _ = loader.load_epoch(A, epochs[0])[F][0].values
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _vm_bytes("VmRSS")
    if mode == "load_epoch loop":
        _ = sum(loader.load_epoch(A, e)[F].values for e in epochs) / len(epochs)
    elif mode == "load_epochs default (auto)":
        _ = loader.load_epochs(A)[F].mean("epoch").values
    elif mode == "load_epochs default (auto), before engine2":
        with _engine1():
            _ = loader.load_epochs(A)[F].mean("epoch").values
    else:
        raise ValueError(mode)
    return (_vm_bytes("VmHWM") - before) / 1e6


def rss(workdir: Path, n_epochs: int) -> dict[str, dict[str, float]]:
    """Peak RSS growth of each of :data:`RSS_MODES`, a fresh process each."""
    import subprocess

    out = {}
    for mode in RSS_MODES:
        got = subprocess.run(
            [sys.executable, __file__, "--workdir", str(workdir), "--epochs", str(n_epochs),
             "--rss-child", mode],
            check=True, capture_output=True, text=True,
        )
        out[f"mean over epochs: {mode}"] = {"peak_rss_growth_mb": float(got.stdout.split()[-1])}
    return out


def table(results: dict[str, dict[str, float]], reference: str | None) -> str:
    ref = results[reference]["median_ms"] if reference else None
    lines = ["| read | median ms | min ms | x reference |", "| --- | ---: | ---: | ---: |"]
    for name, r in results.items():
        ratio = f"{r['median_ms'] / ref:.2f}" if ref else ""
        lines.append(f"| {name} | {r['median_ms']:.1f} | {r['min_ms']:.1f} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/epochstore-bench-reads"))
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "reads.json")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated substrings of row names")
    parser.add_argument("--rss", action="store_true",
                        help="also the peak RSS growth of the mean over epochs (fresh processes)")
    parser.add_argument("--rss-child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--s3-epochs", type=int, default=0,
                        help="also one neuron across N epochs on moto's S3: s3fs vs obstore")
    args = parser.parse_args(argv)
    if args.rss_child:
        print(f"{rss_child(args.workdir, args.rss_child):.1f}")
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    build(args.workdir, args.epochs)
    rows = rows_for(args.workdir, args.epochs)
    if args.only:
        keys = [k.strip() for k in args.only.split(",")]
        rows = {n: f for n, f in rows.items() if any(k in n for k in keys)}
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(), "zarr": zarr.__version__,
            "numpy": np.__version__, "epochs": args.epochs, "rounds": args.rounds,
            "load_before": list(__import__("os").getloadavg()),
        },
        "reads": measure(rows, args.rounds),
    }
    print(f"## Reads ({args.epochs} epochs, {args.rounds} interleaved rounds)\n")
    print(table(results["reads"], "full epoch: .npy" if "full epoch: .npy" in rows else None))
    if args.profile:
        results["profile"] = profile(args.workdir, args.rounds * 3)
        print("\n## Profile of one full-epoch read\n")
        print(table(results["profile"], None))
    if args.rss:
        results["rss"] = rss(args.workdir, args.epochs)
        print("\n## Peak RSS growth of the mean over epochs (fresh process each)\n")
        for name, r in results["rss"].items():
            print(f"- {name}: {r['peak_rss_growth_mb']:.1f} MB")
    if args.s3_epochs:
        results["s3"] = s3_reads(args.s3_epochs, max(2, args.rounds // 2))
        print("\n## S3 (moto), s3fs vs obstore\n")
        print(table(results["s3"], None))
        for name, r in results["s3"].items():
            print(f"- {name}: {r['requests']} requests")
    results["machine"]["load_after"] = list(__import__("os").getloadavg())
    results["machine"]["seconds"] = time.time() - started
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
