#!/usr/bin/env python
"""First storage measurements: epochstore vs raw ``.npy`` and per-epoch ``.npz`` (issue 2).

Synthetic ReLU-like activations of the real shape, ``(512, 113, 113)`` float32 per epoch
(~26 MB, ~60% exact zeros), written as

- one raw ``.npy`` per epoch (the physical reference, read with ``np.load``),
- one ``.npz`` per epoch (``np.savez_compressed``, the per-epoch "after" design),
- epochstore with the current default layout and with explicit layouts of ``k`` neurons per chunk
  (all chunks of an epoch in one shard; ``k = 512`` is one unsharded chunk per epoch),

then read warm (page cache) in interleaved rounds, so that the load of a shared machine hits
every format alike. Peak RSS growth is measured in a fresh subprocess per read. A study section
checks zarr's concurrency settings, unsharded layouts and what a direct shard decode could gain.

Run from the repository root::

    python benchmarks/bench_store.py --quick      # 20 epochs, no study, ~1.5 minutes
    python benchmarks/bench_store.py              # 95 epochs (the real run's size)

Prints markdown tables and writes ``benchmarks/results/store[-quick].json`` and ``.md``.
Generated data goes to a temporary directory (``--workdir``), deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from epochstore._memory import reset_peak_rss, status_kb

SHAPE = (512, 113, 113)
P = 113
ANALYZER = "neuron_activations"
FIELD = "activations"
DIMS = ("neuron", "a", "b")
NEURON = 7
EPOCH_BYTES = math.prod(SHAPE) * 4
MB = 1e6
HERE = Path(__file__).resolve().parent

Json = dict[str, Any]


# --- synthetic data ---------------------------------------------------------------------------


class Activations:
    """Deterministic ReLU-like activations of a modular-addition MLP, epoch by epoch.

    Each neuron is a sum of three sinusoids over the ``(a, b)`` grid (in ``a``, in ``b`` and in
    ``a + b``) with neuron-specific frequencies, phases and amplitudes that drift with the epoch,
    plus Gaussian noise, minus a per-neuron threshold, through ReLU: 45-75% exact zeros per
    neuron, ~60% overall; Blosc-lz4 and zlib compress it about as well as real activations.
    """

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        n = SHAPE[0]
        a = np.arange(P)
        freqs = rng.integers(1, P // 2, size=(n, 3))
        phase = rng.uniform(0, 2 * np.pi, size=(n, 3))
        w = 2 * np.pi / P
        self.ca = np.cos(w * freqs[:, 0, None] * a + phase[:, 0, None]).astype(np.float32)
        self.cb = np.cos(w * freqs[:, 1, None] * a + phase[:, 1, None]).astype(np.float32)
        total = a[:, None] + a[None, :]
        self.cab = np.cos(w * freqs[:, 2, None, None] * total + phase[:, 2, None, None]).astype(
            np.float32
        )
        self.amp0 = rng.gamma(2.0, 0.5, size=(n, 3)).astype(np.float32)
        self.amp1 = rng.gamma(2.0, 0.5, size=(n, 3)).astype(np.float32)
        self.zero_frac = rng.uniform(0.45, 0.75, size=n)
        self.seed = seed

    def epoch(self, epoch: int, n_epochs: int) -> np.ndarray:
        """Return epoch ``epoch`` of ``n_epochs`` (amplitudes move from amp0 to amp1)."""
        rng = np.random.default_rng((self.seed, epoch))
        t = np.float32(epoch / max(n_epochs - 1, 1))
        amp = (1 - t) * self.amp0 + t * self.amp1
        x = rng.standard_normal(SHAPE, dtype=np.float32)
        x *= np.float32(0.1)
        x += amp[:, 2, None, None] * self.cab
        x += (amp[:, 0, None] * self.ca)[:, :, None]
        x += (amp[:, 1, None] * self.cb)[:, None, :]
        sample = np.sort(x.reshape(SHAPE[0], -1)[:, ::7], axis=1)
        idx = (self.zero_frac * (sample.shape[1] - 1)).astype(np.intp)
        x -= sample[np.arange(SHAPE[0]), idx][:, None, None]
        np.maximum(x, 0, out=x)
        return x


# --- formats --------------------------------------------------------------------------------


def epoch_file(root: Path, epoch: int, suffix: str) -> Path:
    return root / f"epoch_{epoch:05d}{suffix}"


@dataclass
class Format:
    """One way of storing the epochs, and its read functions."""

    name: str
    label: str
    root: Path
    kind: str  # "npy" | "npz" | "epochstore"
    chunk_neurons: int | None = None  # epochstore: explicit k, or None for the default layout

    def write(self, epoch: int, x: np.ndarray) -> None:
        if self.kind == "npy":
            np.save(epoch_file(self.root, epoch, ".npy"), x)
        elif self.kind == "npz":
            np.savez_compressed(epoch_file(self.root, epoch, ".npz"), activations=x)
        else:
            from epochstore import ArtifactStore

            chunks = None
            if self.chunk_neurons is not None:
                chunks = {FIELD: (self.chunk_neurons, *SHAPE[1:])}
            ArtifactStore(self.root).write_epoch(
                ANALYZER, epoch, {FIELD: x}, dims={FIELD: DIMS}, chunks=chunks
            )


def read_full_epoch(fmt: Format, epoch: int, loader: Any = None) -> np.ndarray:
    if fmt.kind == "npy":
        return np.asarray(np.load(epoch_file(fmt.root, epoch, ".npy")))
    if fmt.kind == "npz":
        with np.load(epoch_file(fmt.root, epoch, ".npz")) as z:
            return np.asarray(z[FIELD])
    return np.asarray(loader.load_epoch(ANALYZER, epoch)[FIELD].values)


def read_one_neuron(fmt: Format, epoch: int, loader: Any = None) -> np.ndarray:
    if fmt.kind == "npy":
        return np.array(np.load(epoch_file(fmt.root, epoch, ".npy"), mmap_mode="r")[NEURON])
    if fmt.kind == "npz":
        with np.load(epoch_file(fmt.root, epoch, ".npz")) as z:
            return np.asarray(z[FIELD][NEURON])
    return np.asarray(loader.load_epoch(ANALYZER, epoch)[FIELD].sel(neuron=NEURON).values)


def read_neuron_across(
    fmt: Format,
    epochs: Sequence[int],
    loader: Any = None,
    chunks: str | None = "zarr",
    neuron: int = NEURON,
) -> np.ndarray:
    if fmt.kind == "npy":
        return np.stack(
            [np.load(epoch_file(fmt.root, e, ".npy"), mmap_mode="r")[neuron] for e in epochs]
        )
    if fmt.kind == "npz":
        parts = []
        for e in epochs:
            with np.load(epoch_file(fmt.root, e, ".npz")) as z:
                parts.append(z[FIELD][neuron].copy())  # not a view pinning the epoch
        return np.stack(parts)
    ds = loader.load_epochs(ANALYZER, epochs=list(epochs), chunks=chunks)
    return np.asarray(ds[FIELD].sel(neuron=neuron).values)


def open_loader(fmt: Format) -> Any:
    if fmt.kind != "epochstore":
        return None
    from epochstore import ArtifactLoader

    return ArtifactLoader(fmt.root)


def disk_usage(root: Path) -> tuple[int, int]:
    """Return (bytes, files) under ``root`` (apparent file sizes, metadata files included)."""
    total = files = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            total += Path(dirpath, name).stat().st_size
            files += 1
    return total, files


def shard_file(fmt: Format, epoch: int) -> Path:
    return fmt.root / "artifacts" / ANALYZER / f"epoch_{epoch:05d}" / FIELD / "c" / "0" / "0" / "0"


# --- timing ---------------------------------------------------------------------------------


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 0) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def summary(samples: Sequence[float]) -> Json:
    return {
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
        "n": len(samples),
    }


@contextmanager
def zarr_config(settings: Mapping[str, Any]) -> Iterator[None]:
    import zarr

    with zarr.config.set(dict(settings)):
        yield


# --- RSS probes (fresh subprocess per measurement) -------------------------------------------


def run_probe(spec: Json) -> Json:
    """Measure one read in this (fresh) process: time and peak RSS growth.

    The peak is the kernel's VmHWM, reset just before the read, minus VmRSS at that moment.
    (``ru_maxrss`` cannot be used here: Linux carries it over from the parent across
    fork/exec, so in a child of a large parent it only shows the parent's size.) Without
    ``/proc``, ``ru_maxrss`` before/after is the fallback.
    """
    import zarr

    zarr.config.set(spec.get("zarr_config", {}))
    fmt = Format(**{**spec["format"], "root": Path(spec["format"]["root"])})
    epochs: list[int] = spec["epochs"]
    loader = open_loader(fmt)
    if fmt.kind == "epochstore":
        import dask.array  # noqa: F401  (imported before the baseline, as a notebook would)
    repeats = int(spec.get("repeats", 1))

    def read() -> np.ndarray:
        if spec["read"] == "full_epoch":
            return read_full_epoch(fmt, epochs[len(epochs) // 2], loader)
        return read_neuron_across(fmt, epochs, loader, chunks=spec.get("chunks"))

    if spec.get("warmup"):
        # one small read first: lazy imports, thread pools and zarr's event loop start here,
        # so the measured growth is what the read itself needs
        read_neuron_across(fmt, epochs[:2], loader, chunks=spec.get("chunks"), neuron=NEURON + 100)
    use_proc = reset_peak_rss()
    if use_proc:
        before = status_kb("VmRSS") or 0
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    result = read()
    first = time.perf_counter() - t0
    if use_proc:
        after = status_kb("VmHWM") or 0
    else:
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = [first, *time_calls(read, repeats - 1)]
    return {
        "peak_growth_mb": (after - before) * 1024 / MB,
        "rss_before_mb": before * 1024 / MB,
        "result_mb": result.nbytes / MB,
        "first_s": first,
        "times_s": times,
        "method": "VmHWM reset" if use_proc else "ru_maxrss",
    }


def probe(spec: Json) -> Json:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--probe", json.dumps(spec)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: Json = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def format_spec(fmt: Format) -> Json:
    return {
        "name": fmt.name,
        "label": fmt.label,
        "root": str(fmt.root),
        "kind": fmt.kind,
        "chunk_neurons": fmt.chunk_neurons,
    }


# --- study: prototype of a direct whole-shard read -------------------------------------------


def direct_shard_read(
    path: Path, chunk_neurons: int, pool: ThreadPoolExecutor | None, workers: int = 2
) -> np.ndarray:
    """Decode a whole sharded field without zarr's per-chunk pipeline (prototype).

    Reads the shard object once, checks the index's crc32c, then checks and Blosc-decodes each
    inner chunk straight into the output (in ``pool`` if given). This is what a fast path for
    "whole field of one epoch" in epochstore's read path could do.
    """
    import google_crc32c
    from numcodecs import Blosc

    n_chunks = SHAPE[0] // chunk_neurons
    buf = path.read_bytes()
    raw = np.frombuffer(buf, dtype=np.uint8)
    index_start = len(buf) - 16 * n_chunks - 4
    if google_crc32c.value(raw[index_start:-4]) != int.from_bytes(buf[-4:], "little"):
        raise ValueError("shard index checksum mismatch")
    index = np.frombuffer(buf, dtype="<u8", count=2 * n_chunks, offset=index_start)
    index = index.reshape(n_chunks, 2)
    out = np.empty(SHAPE, dtype=np.float32)
    flat = out.reshape(n_chunks, -1)
    codec = Blosc(cname="lz4", clevel=5, shuffle=Blosc.NOSHUFFLE)

    def decode(which: range) -> None:
        for i in which:
            offset, size = int(index[i, 0]), int(index[i, 1])
            chunk = raw[offset : offset + size]
            if google_crc32c.value(chunk[:-4]) != int.from_bytes(chunk[-4:].tobytes(), "little"):
                raise ValueError(f"chunk {i} checksum mismatch")
            codec.decode(chunk[:-4], out=flat[i])

    if pool is None:
        decode(range(n_chunks))
    else:
        list(pool.map(decode, [range(j, n_chunks, workers) for j in range(workers)]))
    return out


def gathered_neuron_across(loader: Any, epochs: Sequence[int]) -> np.ndarray:
    """Read neuron ``NEURON`` of every epoch with all reads in one ``sync`` (prototype)."""
    import zarr.api.asynchronous as zasync
    from zarr.core.sync import sync

    store = loader._read_store
    prefix = loader.root_path

    async def one(epoch: int) -> Any:
        path = "/".join(p for p in (prefix, ANALYZER, f"epoch_{epoch:05d}", FIELD) if p)
        array = await zasync.open_array(store=store, path=path, mode="r", zarr_format=3)
        return await array.getitem((NEURON, slice(None), slice(None)))

    async def all_epochs() -> list[Any]:
        return list(await asyncio.gather(*(one(e) for e in epochs)))

    return np.stack([np.asarray(v) for v in sync(all_epochs())])


# --- the benchmark --------------------------------------------------------------------------


def machine_info() -> Json:
    import numcodecs
    import xarray
    import zarr

    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        match = re.search(r"MemTotal:\s+(\d+) kB", meminfo.read_text())
        if match:
            mem = f"{int(match.group(1)) / 1024**2:.1f} GiB"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram": mem,
        "load_avg_at_start": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "zarr": zarr.__version__,
        "numcodecs": numcodecs.__version__,
        "xarray": xarray.__version__,
    }


def physical_limits(sample: np.ndarray, npy_path: Path, repeats: int) -> Json:
    import google_crc32c
    from numcodecs import Blosc

    dst = np.empty_like(sample)
    memcpy = summary(time_calls(lambda: np.copyto(dst, sample), repeats, warmup=2))
    buf = bytearray(npy_path.stat().st_size)

    def page_cache_read() -> None:
        with npy_path.open("rb", buffering=0) as f:
            f.readinto(buf)

    cache = summary(time_calls(page_cache_read, repeats, warmup=2))
    codec = Blosc(cname="lz4", clevel=5, shuffle=Blosc.NOSHUFFLE)
    encoded = codec.encode(sample)
    lz4 = summary(time_calls(lambda: codec.decode(encoded, out=dst), repeats, warmup=1))
    crc = summary(time_calls(lambda: google_crc32c.value(encoded), repeats, warmup=1))
    return {
        "memcpy": memcpy,
        "page_cache_read": cache,
        "lz4_decode_one_call": lz4,
        "crc32c_compressed_epoch": crc,
        "memcpy_gbps": EPOCH_BYTES / memcpy["median_s"] / 1e9,
        "page_cache_gbps": EPOCH_BYTES / cache["median_s"] / 1e9,
        "lz4_decode_gbps": EPOCH_BYTES / lz4["median_s"] / 1e9,
    }


def build_formats(work: Path, ks: Sequence[int]) -> tuple[list[Format], int]:
    from epochstore.store.codecs import default_layout

    default_k = default_layout(SHAPE, np.dtype(np.float32)).chunks[0]
    formats = [
        Format("npy", "raw .npy per epoch", work / "npy", "npy"),
        Format("npz", ".npz per epoch (savez_compressed)", work / "npz", "npz"),
        Format(
            f"es_k{default_k}",
            f"epochstore default (k={default_k}{', sharded' if default_k < SHAPE[0] else ''})",
            work / "es_default",
            "epochstore",
        ),
    ]
    for k in sorted(set(ks) - {default_k}):
        label = f"epochstore k={k}" + (", sharded" if k < SHAPE[0] else ", 1 chunk, no shard")
        formats.append(Format(f"es_k{k}", label, work / f"es_k{k}", "epochstore", k))
    for fmt in formats:
        fmt.root.mkdir(parents=True, exist_ok=True)
    return formats, default_k


def chunk_of(fmt: Format, default_k: int) -> int:
    return default_k if fmt.chunk_neurons is None else fmt.chunk_neurons


def run(args: argparse.Namespace) -> Json:
    quick: bool = args.quick
    n_epochs: int = args.epochs or (20 if quick else 95)
    rounds: int = args.rounds or (2 if quick else 3)
    ks = [int(k) for k in args.chunks.split(",")]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="epochstore-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: Json = {
        "mode": "quick" if quick else "full",
        "epochs": n_epochs,
        "rounds": rounds,
        "shape": list(SHAPE),
        "epoch_mb": EPOCH_BYTES / MB,
        "machine": machine_info(),
        "workdir": str(work),
    }
    t_start = time.perf_counter()
    try:
        formats, default_k = build_formats(work, ks)
        results["default_chunk_neurons"] = default_k
        from epochstore.store.codecs import TARGET_CHUNK_BYTES

        results["target_chunk_bytes"] = TARGET_CHUNK_BYTES
        log(f"work dir {work}; {n_epochs} epochs; formats: {[f.name for f in formats]}")

        # 1. write every epoch to every format (data generated once per epoch)
        gen = Activations(seed=0)
        write_times: dict[str, list[float]] = {f.name: [] for f in formats}
        zero_frac = []
        epochs = list(range(n_epochs))
        sample: np.ndarray | None = None
        for e in epochs:
            x = gen.epoch(e, n_epochs)
            zero_frac.append(float((x == 0).mean()))
            if e == n_epochs // 2:
                sample = x.copy()
            for fmt in formats:
                t0 = time.perf_counter()
                fmt.write(e, x)
                write_times[fmt.name].append(time.perf_counter() - t0)
            if e % 10 == 0:
                log(f"  wrote epoch {e}")
        assert sample is not None
        results["zero_fraction"] = statistics.mean(zero_frac)
        mid = n_epochs // 2

        # 2. sizes and write speed
        sizes: Json = {}
        for fmt in formats:
            nbytes, files = disk_usage(fmt.root)
            w = write_times[fmt.name]
            sizes[fmt.name] = {
                "label": fmt.label,
                "bytes": nbytes,
                "files": files,
                "ratio": n_epochs * EPOCH_BYTES / nbytes,
                "write": summary(w),
                "write_mbps": EPOCH_BYTES / MB / statistics.median(w),
            }
        results["storage"] = sizes

        # 3. physical limits
        results["limits"] = physical_limits(
            sample, epoch_file(formats[0].root, mid, ".npy"), repeats=15
        )
        log(
            "limits: "
            + json.dumps(
                {k: round(v, 2) for k, v in results["limits"].items() if k.endswith("gbps")}
            )
        )

        # 4. warm reads, interleaved rounds
        loaders = {f.name: open_loader(f) for f in formats}
        for fmt in formats:  # correctness, and warms the page cache and zarr
            got = read_full_epoch(fmt, mid, loaders[fmt.name])
            if not np.array_equal(got, sample):
                raise AssertionError(f"{fmt.name}: full epoch differs from what was written")
            across = read_neuron_across(fmt, epochs, loaders[fmt.name], chunks=None)
            if across.shape != (n_epochs, P, P) or not np.array_equal(across[mid], sample[NEURON]):
                raise AssertionError(f"{fmt.name}: neuron across epochs differs")
        cases: dict[str, Callable[[Format], Callable[[], object]]] = {
            "full_epoch": lambda f: lambda: read_full_epoch(f, mid, loaders[f.name]),
            "one_neuron": lambda f: lambda: read_one_neuron(f, mid, loaders[f.name]),
            "across_epochs_dask": lambda f: (
                lambda: read_neuron_across(f, epochs, loaders[f.name], chunks="zarr")
            ),
            "across_epochs_nodask": lambda f: (
                lambda: read_neuron_across(f, epochs, loaders[f.name], chunks=None)
            ),
        }
        per_round = {
            "full_epoch": 5,
            "one_neuron": 7,
            "across_epochs_dask": 3,
            "across_epochs_nodask": 3,
        }
        samples: dict[str, dict[str, list[float]]] = {c: {} for c in cases}
        for r in range(rounds):
            log(f"read round {r + 1}/{rounds}")
            for case, make in cases.items():
                for fmt in formats:
                    if case == "across_epochs_dask" and fmt.kind != "epochstore":
                        continue
                    fn = make(fmt)
                    across = case.startswith("across")
                    # across-epochs reads were warmed by the check above (dask: in round 1)
                    warm = 0 if across and (r > 0 or case == "across_epochs_nodask") else 1
                    repeats = 1 if across and fmt.kind == "npz" else per_round[case]
                    got = time_calls(fn, repeats, warmup=warm)
                    samples[case].setdefault(fmt.name, []).extend(got)
        results["reads"] = {
            case: {name: summary(s) for name, s in by_fmt.items()}
            for case, by_fmt in samples.items()
        }

        # 5. peak RSS growth, fresh process per read
        rss: Json = {}
        for fmt in formats:
            if quick and fmt.kind == "epochstore" and fmt.chunk_neurons is not None:
                continue  # quick mode: only the default layout
            modes: list[str | None] = [None, "zarr"] if fmt.kind == "epochstore" else [None]
            for mode in modes:
                key = f"{fmt.name}/across_epochs" + (
                    "" if fmt.kind != "epochstore" else f"_{'dask' if mode else 'nodask'}"
                )
                for warm in (False,) if quick else (False, True):
                    rss[key + ("+warm" if warm else "")] = probe(
                        {
                            "format": format_spec(fmt),
                            "epochs": epochs,
                            "read": "across_epochs",
                            "chunks": mode,
                            "warmup": warm,
                        }
                    )
            rss[f"{fmt.name}/full_epoch"] = probe(
                {"format": format_spec(fmt), "epochs": epochs, "read": "full_epoch"}
            )
        results["rss"] = rss
        log("rss probes done")

        # 6. study: zarr settings, unsharded layouts, direct shard decode
        if args.study if quick else not args.no_study:
            results["study"] = study(formats, default_k, mid, sample, work, quick, loaders)
    finally:
        results["elapsed_s"] = time.perf_counter() - t_start
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return results


STUDY_CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("default (async.concurrency=10, batch_size=1)", {}),
    ("async.concurrency=1", {"async.concurrency": 1}),
    ("async.concurrency=64", {"async.concurrency": 64}),
    ("codec_pipeline.batch_size=16", {"codec_pipeline.batch_size": 16}),
    ("codec_pipeline.batch_size=512", {"codec_pipeline.batch_size": 512}),
]


def study(
    formats: Sequence[Format],
    default_k: int,
    mid: int,
    sample: np.ndarray,
    work: Path,
    quick: bool,
    loaders: Mapping[str, Any],
) -> Json:
    import zarr
    from zarr.codecs import BloscCodec, Crc32cCodec

    out: Json = {}
    es = [f for f in formats if f.kind == "epochstore"]
    reps = 5 if quick else 9

    # zarr config, in this process (full-epoch read through the loader)
    cfg: Json = {}
    for label, settings in STUDY_CONFIGS:
        row: Json = {}
        with zarr_config(settings):
            for fmt in es:
                fn: Callable[[], object] = lambda f=fmt: read_full_epoch(f, mid, loaders[f.name])  # noqa: E731
                row[fmt.name] = summary(time_calls(fn, reps, warmup=1))
        cfg[label] = row
    out["zarr_config_full_epoch"] = cfg
    log("study: zarr config done")

    # threading.max_workers only applies when zarr's pool is created: fresh process each
    workers: Json = {}
    target = [f for f in es if f.chunk_neurons is None or f.chunk_neurons in (1, 32)]
    for n in () if quick else (None, 1, 2, 4):
        for fmt in target:
            workers[f"{fmt.name}/max_workers={n or 'default'}"] = probe(
                {
                    "format": format_spec(fmt),
                    "epochs": [mid],
                    "read": "full_epoch",
                    "repeats": reps,
                    "zarr_config": {} if n is None else {"threading.max_workers": n},
                }
            )
    out["zarr_max_workers_full_epoch"] = workers
    log("study: max_workers done")

    # unsharded k-neuron chunks (plain zarr, same codecs) vs the sharded epochstore arrays
    unsharded: Json = {}
    for k in (1, 8, 32):
        path = work / f"unsharded_k{k}.zarr"
        arr = zarr.create_array(
            str(path),
            shape=SHAPE,
            dtype=np.float32,
            chunks=(k, P, P),
            compressors=[BloscCodec(cname="lz4", clevel=5, shuffle="noshuffle"), Crc32cCodec()],
            fill_value=0,
            config={"write_empty_chunks": True},
            zarr_format=3,
        )
        t0 = time.perf_counter()
        arr[...] = sample
        write_s = time.perf_counter() - t0
        arr = zarr.open_array(str(path), mode="r")
        entry: Json = {
            "write_s": write_s,
            "files": disk_usage(path)[1],
            "full_epoch": summary(time_calls(lambda a=arr: a[...], reps, warmup=1)),
            "one_neuron": summary(time_calls(lambda a=arr: a[NEURON], reps * 3, warmup=1)),
        }
        sharded = [f for f in es if chunk_of(f, default_k) == k]
        if sharded:
            node = sharded[0].root / "artifacts" / ANALYZER / f"epoch_{mid:05d}" / FIELD
            sh = zarr.open_array(str(node), mode="r")
            entry["sharded_full_epoch"] = summary(time_calls(lambda a=sh: a[...], reps, warmup=1))
            entry["sharded_one_neuron"] = summary(
                time_calls(lambda a=sh: a[NEURON], reps * 3, warmup=1)
            )
        unsharded[f"k{k}"] = entry
    out["unsharded_vs_sharded_zarr_direct"] = unsharded
    log("study: unsharded done")

    # one neuron across epochs with every epoch's read issued in one event-loop call
    # (prototype of a concurrent StackedFieldArray read) vs the loader's sequential reads
    epochs = sorted(
        int(p.name.split("_")[1]) for p in (es[0].root / "artifacts" / ANALYZER).glob("epoch_*")
    )
    gathered: Json = {}
    for fmt in es:
        loader = loaders[fmt.name]
        ref = read_neuron_across(fmt, epochs, loader, chunks=None)
        if not np.array_equal(gathered_neuron_across(loader, epochs), ref):
            raise AssertionError("gathered across-epochs read differs")
        gathered[fmt.name] = {
            "loader_nodask": summary(
                time_calls(lambda f=fmt, lo=loader: read_neuron_across(f, epochs, lo, None), 5)
            ),
            "gathered": summary(
                time_calls(lambda lo=loader: gathered_neuron_across(lo, epochs), 5)
            ),
        }
    out["gathered_neuron_across_epochs"] = gathered
    log("study: gathered across-epochs done")

    # zarr's codec pipeline swapped for the Rust one from the optional `zarrs` package
    if importlib.util.find_spec("zarrs") is not None:
        rust: Json = {}
        with zarr_config({"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"}):
            for fmt in es:
                loader = loaders[fmt.name]
                if not np.array_equal(read_full_epoch(fmt, mid, loader), sample):
                    raise AssertionError("zarrs pipeline read differs")
                node = fmt.root / "artifacts" / ANALYZER / f"epoch_{mid:05d}" / FIELD
                plain = zarr.open_array(str(node), mode="r")  # a plain LocalStore, no wrapper
                rust[fmt.name] = {
                    "zarr_direct_full_epoch": summary(
                        time_calls(lambda a=plain: a[...], reps, warmup=1)
                    ),
                    "full_epoch": summary(
                        time_calls(lambda f=fmt, lo=loader: read_full_epoch(f, mid, lo), reps, 1)
                    ),
                    "one_neuron": summary(
                        time_calls(lambda f=fmt, lo=loader: read_one_neuron(f, mid, lo), reps, 1)
                    ),
                    "across_epochs_nodask": summary(
                        time_calls(
                            lambda f=fmt, lo=loader: read_neuron_across(f, epochs, lo, None), 3, 1
                        )
                    ),
                }
        out["zarrs_pipeline"] = rust
        log("study: zarrs pipeline done")

    # a direct whole-shard decode (what a fast path in epochstore's read path could do)
    direct: Json = {}
    with ThreadPoolExecutor(2) as pool:
        for fmt in es:
            k = chunk_of(fmt, default_k)
            if k >= SHAPE[0]:
                continue
            path = shard_file(fmt, mid)
            if not np.array_equal(direct_shard_read(path, k, pool), sample):
                raise AssertionError("direct shard read differs")
            direct[fmt.name] = {
                "one_thread": summary(
                    time_calls(lambda p=path, k=k: direct_shard_read(p, k, None), reps, warmup=1)
                ),
                "two_threads": summary(
                    time_calls(lambda p=path, k=k: direct_shard_read(p, k, pool), reps, warmup=1)
                ),
            }
    out["direct_shard_decode_full_epoch"] = direct
    log("study: direct decode done")
    return out


# --- reporting ------------------------------------------------------------------------------


def ms(s: float) -> str:
    return f"{s * 1e3:.1f}" if s * 1e3 < 100 else f"{s * 1e3:.0f}"


def med_min(entry: Json) -> str:
    return f"{ms(entry['median_s'])} [{ms(entry['min_s'])}]"


def report(res: Json) -> str:
    lines: list[str] = []
    m = res["machine"]
    add = lines.append
    add(
        f"## epochstore storage benchmark ({res['mode']}: {res['epochs']} epochs of "
        f"{tuple(res['shape'])} float32, {res['epoch_mb']:.1f} MB each, "
        f"{res['zero_fraction']:.0%} zeros)"
    )
    add("")
    add(
        f"Machine: {m['nproc']} cores, {m['cpu']}, {m['ram']} RAM, load average at start "
        f"{m['load_avg_at_start'][0]:.2f}; Python {m['python']}, numpy {m['numpy']}, zarr "
        f"{m['zarr']}, numcodecs {m['numcodecs']}, xarray {m['xarray']}. Default layout: "
        f"TARGET_CHUNK_BYTES={res['target_chunk_bytes']} -> {res['default_chunk_neurons']} "
        f"neuron(s) per chunk. Times in ms: median [min] over {res['rounds']} interleaved "
        "rounds; warm page cache."
    )
    add("")
    lim = res["limits"]
    add("### Physical limits (same run)")
    add("")
    add("| what | ms per epoch | GB/s |")
    add("| --- | ---: | ---: |")
    add(f"| memcpy (np.copyto, 26 MB) | {med_min(lim['memcpy'])} | {lim['memcpy_gbps']:.1f} |")
    add(
        f"| page-cache read of the .npy (readinto) | {med_min(lim['page_cache_read'])} | "
        f"{lim['page_cache_gbps']:.1f} |"
    )
    add(
        f"| Blosc-lz4 decode, whole epoch in one call (1 core) | "
        f"{med_min(lim['lz4_decode_one_call'])} | {lim['lz4_decode_gbps']:.1f} |"
    )
    add(f"| crc32c of the compressed epoch | {med_min(lim['crc32c_compressed_epoch'])} | |")
    add("")
    add("### Storage and writes")
    add("")
    add("| format | MB on disk | files | ratio | write ms/epoch | write MB/s |")
    add("| --- | ---: | ---: | ---: | ---: | ---: |")
    for st in res["storage"].values():
        add(
            f"| {st['label']} | {st['bytes'] / MB:,.0f} | {st['files']} | {st['ratio']:.2f} | "
            f"{med_min(st['write'])} | {st['write_mbps']:.0f} |"
        )
    add("")
    add(
        "epochstore writes are durable (fsync of every file, atomic rename); .npy/.npz are not "
        "fsynced."
    )
    add("")
    reads = res["reads"]
    npy_full = reads["full_epoch"]["npy"]["median_s"]
    npz_full = reads["full_epoch"]["npz"]["median_s"]
    npz_across = reads["across_epochs_nodask"]["npz"]["median_s"]
    npz_one = reads["one_neuron"]["npz"]["median_s"]
    add("### Reads (warm page cache)")
    add("")
    add(
        f"| format | full epoch | x .npy | npz / this | one neuron, one epoch | npz / this | "
        f"neuron across {res['epochs']} epochs, dask | no dask | npz / this (best) |"
    )
    add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, st in res["storage"].items():
        full = reads["full_epoch"][name]
        one = reads["one_neuron"][name]
        nod = reads["across_epochs_nodask"][name]
        dk = reads["across_epochs_dask"].get(name)
        best = min(nod["median_s"], dk["median_s"]) if dk else nod["median_s"]
        add(
            f"| {st['label']} | {med_min(full)} | {full['median_s'] / npy_full:.1f} | "
            f"{npz_full / full['median_s']:.1f} | {med_min(one)} | "
            f"{npz_one / one['median_s']:.0f} | {med_min(dk) if dk else '-'} | {med_min(nod)} | "
            f"{npz_across / best:.0f} |"
        )
    add("")
    add(".npy one-neuron reads use `np.load(mmap_mode='r')`; .npz must inflate the whole epoch.")
    add("")
    add("### Peak RSS growth (fresh process per read)")
    add("")
    add(
        "| read (+warm: after a 2-epoch read of another neuron) | format | peak RSS growth MB "
        "| result MB | read ms in that process |"
    )
    add("| --- | --- | ---: | ---: | ---: |")
    for key, r in res["rss"].items():
        name, read = key.split("/", 1)
        add(
            f"| {read} | {res['storage'][name]['label']} | {r['peak_growth_mb']:.1f} | "
            f"{r['result_mb']:.1f} | {ms(r['first_s'])} |"
        )
    add("")
    add(targets(res))
    if "study" in res:
        add(study_report(res))
    return "\n".join(lines)


def targets(res: Json) -> str:
    reads = res["reads"]
    name = f"es_k{res['default_chunk_neurons']}"
    npy_full = reads["full_epoch"]["npy"]["median_s"]
    npz_full = reads["full_epoch"]["npz"]["median_s"]
    npz_across = reads["across_epochs_nodask"]["npz"]["median_s"]
    lines = [
        "### Issue 6 targets, per epochstore layout",
        "",
        (
            "| layout | full <= 3x .npy | full >= 2x faster than .npz | neuron across epochs "
            ">= 50x faster than .npz (dask / no dask) | peak RSS growth < 32 MB, dask: "
            "first read in the process / after a warm-up | same, no dask |"
        ),
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for fname, st in res["storage"].items():
        if not fname.startswith("es_"):
            continue
        full = reads["full_epoch"][fname]["median_s"]
        dk = reads["across_epochs_dask"][fname]["median_s"]
        nod = reads["across_epochs_nodask"][fname]["median_s"]

        def ok(flag: bool) -> str:
            return "yes" if flag else "**no**"

        def rss_ok(mode: str, fname: str = fname) -> str:
            cold = res["rss"].get(f"{fname}/across_epochs_{mode}")
            warm = res["rss"].get(f"{fname}/across_epochs_{mode}+warm")
            if cold is None:
                return "(not probed)"
            a = cold["peak_growth_mb"]
            if warm is None:
                return f"{ok(a < 32)} / - ({a:.1f} / not probed)"
            b = warm["peak_growth_mb"]
            return f"{ok(a < 32)} / {ok(b < 32)} ({a:.1f} / {b:.1f})"

        add = " (default)" if fname == name else ""
        lines.append(
            f"| {st['label']}{add} | {ok(full <= 3 * npy_full)} ({full / npy_full:.1f}x) | "
            f"{ok(npz_full / full >= 2)} ({npz_full / full:.1f}x) | "
            f"{ok(npz_across / dk >= 50)} ({npz_across / dk:.0f}x) / "
            f"{ok(npz_across / nod >= 50)} ({npz_across / nod:.0f}x) | "
            f"{rss_ok('dask')} | {rss_ok('nodask')} |"
        )
    if res["epochs"] != 95:
        lines += [
            "",
            (
                f"(Only {res['epochs']} epochs in this run: the across-epochs target is "
                "defined for 95.)"
            ),
        ]
    lines.append("")
    return "\n".join(lines)


def study_report(res: Json) -> str:
    s = res["study"]
    labels = {k: v["label"] for k, v in res["storage"].items()}
    lines = ["### Study: zarr settings, full-epoch read through the loader (ms, median [min])", ""]
    names = list(next(iter(s["zarr_config_full_epoch"].values())).keys())
    lines.append("| zarr config | " + " | ".join(labels[n] for n in names) + " |")
    lines.append("| --- |" + " ---: |" * len(names))
    for label, row in s["zarr_config_full_epoch"].items():
        lines.append(f"| {label} | " + " | ".join(med_min(row[n]) for n in names) + " |")
    if s["zarr_max_workers_full_epoch"]:
        lines += [
            "",
            ("`threading.max_workers` (fresh process each; median of the reads after the first):"),
            "",
            "| layout, max_workers | full epoch ms |",
            "| --- | ---: |",
        ]
    for key, r in s["zarr_max_workers_full_epoch"].items():
        name, setting = key.split("/")
        rest = r["times_s"][1:] or r["times_s"]
        lines.append(f"| {labels[name]}, {setting} | {ms(statistics.median(rest))} |")
    lines += [
        "",
        (
            "### Study: unsharded chunks (plain zarr, same codecs) vs sharded, read with "
            "zarr directly (ms, median [min])"
        ),
        "",
        (
            "| k neurons/chunk | files per epoch | unsharded full | sharded full | unsharded "
            "one neuron | sharded one neuron |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for k, e in s["unsharded_vs_sharded_zarr_direct"].items():
        lines.append(
            f"| {k[1:]} | {e['files']} | {med_min(e['full_epoch'])} | "
            f"{med_min(e['sharded_full_epoch']) if 'sharded_full_epoch' in e else '-'} | "
            f"{med_min(e['one_neuron'])} | "
            f"{med_min(e['sharded_one_neuron']) if 'sharded_one_neuron' in e else '-'} |"
        )
    lines += [
        "",
        (
            "### Study: one neuron across epochs, all epochs' reads in one event-loop call "
            "(prototype; ms, median [min])"
        ),
        "",
        "| layout | loader, no dask (sequential) | gathered |",
        "| --- | ---: | ---: |",
    ]
    for name, e in s["gathered_neuron_across_epochs"].items():
        lines.append(
            f"| {labels[name]} | {med_min(e['loader_nodask'])} | {med_min(e['gathered'])} |"
        )
    if "zarrs_pipeline" in s:
        lines += [
            "",
            (
                "### Study: the loader with zarr's codec pipeline set to "
                "`zarrs.ZarrsCodecPipeline` (optional Rust package `zarrs`; ms, median [min])"
            ),
            "",
            (
                "| layout | full epoch (default pipeline) | full epoch (zarrs) | "
                "one neuron (zarrs) | neuron across epochs, no dask (zarrs) | "
                "full epoch, plain zarr.open_array (zarrs) |"
            ),
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, e in s["zarrs_pipeline"].items():
            lines.append(
                f"| {labels[name]} | {med_min(res['reads']['full_epoch'][name])} | "
                f"{med_min(e['full_epoch'])} | {med_min(e['one_neuron'])} | "
                f"{med_min(e['across_epochs_nodask'])} | {med_min(e['zarr_direct_full_epoch'])} |"
            )
    lines += [
        "",
        (
            "### Study: direct whole-shard decode (prototype of a read-path fast path; "
            "ms, median [min])"
        ),
        "",
        "| layout | through the loader | direct, 1 thread | direct, 2 threads |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, e in s["direct_shard_decode_full_epoch"].items():
        lines.append(
            f"| {labels[name]} | {med_min(res['reads']['full_epoch'][name])} | "
            f"{med_min(e['one_thread'])} | {med_min(e['two_threads'])} |"
        )
    lines.append("")
    return "\n".join(lines)


def log(msg: str) -> None:
    print(f"[bench_store {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="20 epochs, 2 rounds, no study (~1.5 min)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 20 / 95)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved read rounds")
    parser.add_argument(
        "--chunks",
        default="1,4,8,16,32,512",
        help="neurons per chunk of the epochstore variants (default %(default)s)",
    )
    parser.add_argument("--workdir", default=None, help="where to write data (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--no-study", action="store_true", help="skip the zarr/layout study")
    parser.add_argument("--study", action="store_true", help="run the study in --quick mode too")
    parser.add_argument(
        "--out", default=None, help="JSON output (default benchmarks/results/store[-quick].json)"
    )
    parser.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe is not None:
        print(json.dumps(run_probe(json.loads(args.probe))))
        return 0
    results = run(args)
    text = report(results)
    print(text)
    out = (
        Path(args.out)
        if args.out
        else HERE / "results" / ("store-quick.json" if args.quick else "store.json")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    out.with_suffix(".md").write_text(text + "\n")
    log(f"wrote {out} and {out.with_suffix('.md')} in {results['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
