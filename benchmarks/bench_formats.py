#!/usr/bin/env python
"""The storage suite (issue 6): formats, codecs and chunkings against the ``.npz`` designs.

One command, two modes::

    python benchmarks/bench_formats.py --quick   # ~2-3 minutes: synthetic data, 8 epochs
    python benchmarks/bench_formats.py           # full: 95 epochs, synthetic and real data

Per dataset (``(512, 113, 113)`` float32 per epoch: synthetic ReLU-like activations from
``bench_store.py``, and the real ``neuron_activations`` of a trained p = 113 model, tiled to
the epoch count), three parts:

1. **Limits**: memcpy, page-cache and cold disk read bandwidth, Blosc decode of one epoch.
2. **Sweep**: a sample of epochs written with every codec (none, Blosc lz4, Blosc zstd 1/3/5,
   no/byte/bit shuffle) and chunking (whole epoch, 64, 16 and 1 neuron per chunk; sharded,
   plus unsharded through plain zarr), and in ``.npy``, ``.npz`` (per epoch and all epochs in
   one file) and safetensors: size, write speed, warm reads of a whole epoch and one neuron
   (:func:`epochstore.bench.compare.compare`, what ``epochstore bench`` runs).
3. **Headline**: every epoch in the main formats: size and file count, write MB/s (and the
   cost of adding the last epoch to the one-file ``.npz``), reads of one full epoch, one neuron
   of one epoch, one neuron across all epochs and the mean over epochs, warm and cold
   (``posix_fadvise(DONTNEED)`` on the files read, checked with ``mincore``), and peak RSS
   growth of each read in a fresh process.

Writes JSON and markdown to ``benchmarks/results/formats[-quick].{json,md}`` and the
trade-off plot to ``benchmarks/results/formats[-quick].png``. Generated data goes to
``/tmp/epochstore-bench-*`` (``--workdir``), deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_store import Activations, machine_info  # noqa: E402
from epochstore.bench.compare import compare, parse_chunking, parse_codec  # noqa: E402
from epochstore.bench.formats import (  # noqa: E402
    EpochstoreFormat,
    Format,
    NpyPerEpoch,
    NpzAllEpochs,
    NpzPerEpoch,
    SafetensorsPerEpoch,
    ZarrPerEpoch,
    codec_label,
    format_from_spec,
    rows_per_chunk,
)
from epochstore.bench.timing import (  # noqa: E402
    Timing,
    disk_read_time,
    drop_caches_available,
    evict,
    interleaved,
    memcpy_time,
    page_cache_read_time,
    peak_rss_growth,
    resident_fraction,
    time_calls,
)
from epochstore.store.codecs import DEFAULT_CODEC, TARGET_CHUNK_BYTES, Codec  # noqa: E402

SHAPE = (512, 113, 113)
EPOCH_BYTES = math.prod(SHAPE) * 4
NEURON = 7
DIMS = ("neuron", "a", "b")
MB = 1e6
DEFAULT_K = rows_per_chunk(SHAPE, np.dtype(np.float32), None)
REAL_RUN = Path("/tmp/epochstore-bench-real/p113")
REAL_TRAIN = [
    "--preset",
    "paper",
    "--set",
    "num_epochs=1500",
    "--set",
    "checkpoint_epochs=[0,100,200,300,500,700,1000,1499]",
    "--quiet",
]

Json = dict[str, Any]


def log(msg: str) -> None:
    print(f"[bench_formats {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_sample() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- data -----------------------------------------------------------------------------------


class Dataset:
    """Epochs of ``(512, 113, 113)`` float32, generated or tiled from a real run."""

    def __init__(self, name: str, n_epochs: int, real: list[np.ndarray] | None = None) -> None:
        self.name = name
        self.n_epochs = n_epochs
        self.real = real
        self.gen = Activations(seed=0) if real is None else None

    def epoch(self, e: int) -> np.ndarray:
        if self.real is not None:
            return self.real[e * len(self.real) // self.n_epochs]
        assert self.gen is not None
        return self.gen.epoch(e, self.n_epochs)

    def describe(self) -> str:
        if self.real is None:
            return "synthetic ReLU-like activations (bench_store.Activations)"
        return (
            f"real neuron_activations of {len(self.real)} checkpoints of a trained p = 113 "
            f"model, each reused for {self.n_epochs / len(self.real):.1f} consecutive epochs"
        )


def real_activations(run: Path, make: bool) -> list[np.ndarray] | None:
    """Load the real activations of ``run``; train and analyze it first if ``make``."""
    if not (run / "artifacts" / "neuron_activations").is_dir():
        if not make:
            return None
        log(f"training and analysing {run} (real data; several minutes)")
        exe = [sys.executable, "-m", "epochstore.cli"]
        if not (run / "variant.json").exists():
            subprocess.run([*exe, "train", str(run), *REAL_TRAIN], check=True)
        subprocess.run(
            [*exe, "analyze", str(run), "--analyzers", "neuron_activations", "--quiet"],
            check=True,
        )
    from epochstore import ArtifactLoader

    loader = ArtifactLoader(run)
    epochs = loader.get_epochs("neuron_activations")
    out = []
    for e in epochs:
        x = np.asarray(loader.load_epoch("neuron_activations", e)["activations"].values)
        if x.shape != SHAPE:
            raise ValueError(f"{run}: activations of epoch {e} are {x.shape}, not {SHAPE}")
        out.append(np.ascontiguousarray(x, dtype=np.float32))
    log(f"real data: epochs {epochs} of {run}")
    return out


# --- part 1: limits -------------------------------------------------------------------------


def limits(work: Path, sample: np.ndarray, quick: bool) -> Json:
    from numcodecs import Blosc

    reps = 7 if quick else 15
    big = work / "limits_big.bin"
    big_bytes = (128 if quick else 1024) * 2**20
    rng = np.random.default_rng(1)
    with big.open("wb") as f:
        block = rng.integers(0, 255, size=16 * 2**20, dtype=np.uint8).tobytes()
        for _ in range(big_bytes // len(block)):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    npy = work / "limits_epoch.npy"
    np.save(npy, sample)
    out: Json = {
        "memcpy_epoch": memcpy_time(EPOCH_BYTES, reps).to_dict(),
        "page_cache_epoch": page_cache_read_time(npy, reps, block=EPOCH_BYTES + 4096).to_dict(),
        "page_cache_big": page_cache_read_time(big, 3 if quick else 5).to_dict(),
        "disk_epoch": disk_read_time(npy, 3 if quick else 7, block=EPOCH_BYTES + 4096).to_dict(),
        "disk_big": disk_read_time(big, 2 if quick else 3).to_dict(),
        "big_bytes": big_bytes,
        "evict_check_resident_after": 0.0,
    }
    evict([big])
    out["evict_check_resident_after"] = resident_fraction([big])
    dst = np.empty_like(sample)
    for cname, level in (("lz4", 5), ("zstd", 1), ("zstd", 3)):
        codec = Blosc(cname=cname, clevel=level, shuffle=Blosc.NOSHUFFLE)
        enc = codec.encode(sample)
        out[f"decode_{cname}{level}"] = time_calls(
            lambda c=codec, b=enc: c.decode(b, out=dst), reps, warmup=1
        ).to_dict()
    big.unlink()
    npy.unlink()
    out["memcpy_gbps"] = EPOCH_BYTES / out["memcpy_epoch"]["median_s"] / 1e9
    out["page_cache_epoch_gbps"] = EPOCH_BYTES / out["page_cache_epoch"]["median_s"] / 1e9
    out["page_cache_big_gbps"] = big_bytes / out["page_cache_big"]["median_s"] / 1e9
    out["disk_epoch_gbps"] = EPOCH_BYTES / out["disk_epoch"]["median_s"] / 1e9
    out["disk_big_gbps"] = big_bytes / out["disk_big"]["median_s"] / 1e9
    return out


# --- part 2: sweep --------------------------------------------------------------------------

SWEEP_CODECS_FULL = [
    "none",
    "lz4-5",
    "lz4-5-shuffle",
    "lz4-5-bitshuffle",
    "zstd-1",
    "zstd-1-shuffle",
    "zstd-1-bitshuffle",
    "zstd-3",
    "zstd-3-shuffle",
    "zstd-3-bitshuffle",
    "zstd-5",
    "zstd-5-shuffle",
    "zstd-5-bitshuffle",
]
SWEEP_CODECS_QUICK = ["none", "lz4-5", "zstd-1", "zstd-3", "zstd-1-shuffle", "zstd-1-bitshuffle"]
SWEEP_CHUNKINGS_FULL = ["whole", "64", "16", "1"]
SWEEP_CHUNKINGS_QUICK = ["whole", "16", "1"]
SWEEP_CHUNK_CODECS_FULL = ["none", "lz4-5", "zstd-1", "zstd-3"]
SWEEP_CHUNK_CODECS_QUICK = ["lz4-5"]


def sweep(ds: Dataset, work: Path, quick: bool, n_sample: int, rounds: int) -> Json:
    picks = sorted({round(i * (ds.n_epochs - 1) / max(n_sample - 1, 1)) for i in range(n_sample)})
    arrays = {e: ds.epoch(e) for e in picks}
    codecs = [parse_codec(c) for c in (SWEEP_CODECS_QUICK if quick else SWEEP_CODECS_FULL)]
    chunk_codecs = [
        parse_codec(c) for c in (SWEEP_CHUNK_CODECS_QUICK if quick else SWEEP_CHUNK_CODECS_FULL)
    ]
    extra: list[Callable[[Path], Format]] = [
        lambda r: NpzAllEpochs(r, "npz_all", ".npz, all epochs in one file"),
        lambda r: SafetensorsPerEpoch(r, "safetensors", "safetensors per epoch"),
        lambda r: ZarrPerEpoch(
            r, "zarr_k16_unsharded", "plain zarr lz4-5, 16 rows, unsharded",
            codec=DEFAULT_CODEC, rows=16, sharded=False,
        ),
    ]
    if not quick:
        extra += [
            lambda r: ZarrPerEpoch(
                r, "zarr_k16_sharded", "plain zarr lz4-5, 16 rows, sharded",
                codec=DEFAULT_CODEC, rows=16, sharded=True,
            ),
            lambda r: ZarrPerEpoch(
                r, "zarr_k1_unsharded", "plain zarr lz4-5, 1 row, unsharded",
                codec=DEFAULT_CODEC, rows=1, sharded=False,
            ),
            lambda r: ZarrPerEpoch(
                r, "zarr_k16_unsharded_zstd1", "plain zarr zstd-1, 16 rows, unsharded",
                codec=parse_codec("zstd-1"), rows=16, sharded=False,
            ),
        ]
    log(f"sweep {ds.name}: codecs at the default chunking, epochs {picks}")
    t0 = time.perf_counter()
    load = [load_sample()]
    rows = compare(
        arrays, work, codecs=codecs, chunkings=[None], dims=DIMS, rounds=rounds, extra=extra,
        progress=lambda line: log(f"  {line}"),
    )
    load.append(load_sample())
    log(f"sweep {ds.name}: chunkings")
    chunk_rows = compare(
        arrays, work, codecs=chunk_codecs,
        chunkings=[
            parse_chunking(c) for c in (SWEEP_CHUNKINGS_QUICK if quick else SWEEP_CHUNKINGS_FULL)
        ],
        dims=DIMS, rounds=rounds,
        baselines=False, progress=lambda line: log(f"  {line}"),
    )
    load.append(load_sample())
    return {
        "epochs": picks,
        "codecs": [r.to_dict() for r in rows],
        "chunkings": [r.to_dict() for r in chunk_rows],
        "elapsed_s": time.perf_counter() - t0,
        "load": load,
    }


# --- part 3: headline -----------------------------------------------------------------------


def headline_formats(work: Path, quick: bool, candidates: Sequence[Codec]) -> list[Format]:
    fmts: list[Format] = [
        NpyPerEpoch(work / "npy", "npy", "raw .npy per epoch"),
        NpzPerEpoch(work / "npz", "npz", ".npz per epoch"),
        NpzAllEpochs(work / "npz_all", "npz_all", ".npz, all epochs in one file"),
        SafetensorsPerEpoch(work / "st", "safetensors", "safetensors per epoch"),
        EpochstoreFormat(
            work / "es_default", "es_default",
            f"epochstore default ({codec_label(DEFAULT_CODEC)}, k={DEFAULT_K})",
            codec=DEFAULT_CODEC, dims=DIMS,
        ),
    ]
    for i, candidate in enumerate(c for c in candidates if c != DEFAULT_CODEC):
        fmts.append(
            EpochstoreFormat(
                work / f"es_cand{i}", f"es_cand{i}",
                f"epochstore {codec_label(candidate)}, k={DEFAULT_K}",
                codec=candidate, dims=DIMS,
            )
        )
    if not quick:
        fmts += [
            EpochstoreFormat(
                work / "es_none", "es_none", f"epochstore none, k={DEFAULT_K}",
                codec=Codec(cname=None), dims=DIMS,
            ),
            EpochstoreFormat(
                work / "es_whole", "es_whole", f"epochstore {codec_label(DEFAULT_CODEC)}, "
                "whole epoch (k=512)", codec=DEFAULT_CODEC, rows=512, dims=DIMS,
            ),
            EpochstoreFormat(
                work / "es_k1", "es_k1", f"epochstore {codec_label(DEFAULT_CODEC)}, k=1",
                codec=DEFAULT_CODEC, rows=1, dims=DIMS,
            ),
            ZarrPerEpoch(
                work / "zarr_unsh", "zarr_k16_unsharded",
                f"plain zarr {codec_label(DEFAULT_CODEC)}, k={DEFAULT_K} unsharded",
                codec=DEFAULT_CODEC, rows=DEFAULT_K, sharded=False,
            ),
        ]
    return fmts


def read_cases(fmt: Format, epochs: list[int], mid: int) -> dict[str, Callable[[], object]]:
    cases: dict[str, Callable[[], object]] = {
        "full": lambda: fmt.read_epoch(mid),
        "row": lambda: fmt.read_row(mid, NEURON),
        "across": lambda: fmt.read_row_across(epochs, NEURON),
        "mean": lambda: fmt.mean_over_epochs(epochs),
    }
    if isinstance(fmt, EpochstoreFormat):
        cases["across_dask"] = lambda: fmt.read_row_across(epochs, NEURON, chunks="auto")
        cases["mean_epoch_chunks"] = lambda: fmt.mean_over_epochs(epochs, chunks={"epoch": 1})
        cases["mean_loop"] = lambda: fmt.mean_over_epochs(epochs, dask=False)
    return cases


def headline(
    ds: Dataset, work: Path, quick: bool, rounds: int, cold_rounds: int, rss: bool,
    candidates: Sequence[Codec],
) -> Json:
    n = ds.n_epochs
    epochs = list(range(n))
    mid = n // 2
    fmts = headline_formats(work, quick, candidates)
    per_epoch = [f for f in fmts if not isinstance(f, NpzAllEpochs)]
    npz_all = next(f for f in fmts if isinstance(f, NpzAllEpochs))
    out: Json = {"epochs": n, "formats": {}, "load": [load_sample()]}
    writes: dict[str, list[float]] = {f.name: [] for f in per_epoch}
    zeros = []
    t_start = time.perf_counter()
    for e in epochs:
        x = ds.epoch(e)
        zeros.append(float((x == 0).mean()))
        for fmt in per_epoch:
            t0 = time.perf_counter()
            fmt.write(e, x)
            writes[fmt.name].append(time.perf_counter() - t0)
        if e % 10 == 0:
            log(f"  {ds.name}: wrote epoch {e}")
    npy = next(f for f in fmts if isinstance(f, NpyPerEpoch))

    def from_npy(upto: int) -> Iterator[tuple[int, np.ndarray]]:
        for e in range(upto):
            yield e, np.load(npy.path(e))

    t0 = time.perf_counter()
    npz_all.write_all(from_npy(n - 1))
    all_but_last = time.perf_counter() - t0
    t0 = time.perf_counter()
    npz_all.append(n - 1, np.load(npy.path(n - 1)))
    add_last = time.perf_counter() - t0
    out["npz_all_write"] = {
        "write_all_first_n_minus_1_s": all_but_last,
        "append_epoch_n_s": add_last,
        "append_epoch_n_over_per_epoch_npz": add_last / statistics.median(writes["npz"]),
        "incremental_total_estimate_s": sum(all_but_last / (n - 1) * k for k in range(1, n + 1)),
    }
    out["zero_fraction"] = statistics.mean(zeros)
    out["write_elapsed_s"] = time.perf_counter() - t_start
    log(f"  {ds.name}: writes done in {out['write_elapsed_s']:.0f} s; adding epoch {n} to the "
        f"one-file .npz took {add_last:.1f} s")
    for fmt in fmts:
        usage = fmt.disk_usage()
        per = (all_but_last / (n - 1),) if fmt is npz_all else tuple(writes[fmt.name])
        w = Timing(per)
        out["formats"][fmt.name] = {
            "label": fmt.label,
            "spec": fmt.spec(),
            **usage,
            "ratio": n * EPOCH_BYTES / usage["bytes"],
            "write": w.to_dict(),
            "write_mbps": EPOCH_BYTES / MB / w.median,
        }

    # correctness, and warm caches
    ref_mid = ds.epoch(mid)
    for fmt in fmts:
        if not np.array_equal(fmt.read_epoch(mid), ref_mid):
            raise AssertionError(f"{fmt.name}: full epoch differs")
        across = fmt.read_row_across(epochs, NEURON)
        if not np.array_equal(across[mid], ref_mid[NEURON]):
            raise AssertionError(f"{fmt.name}: across-epochs read differs")
    means = {f.name: f.mean_over_epochs(epochs) for f in fmts[:1]}
    ref_mean = means[fmts[0].name]
    for fmt in fmts[1:]:
        got = fmt.mean_over_epochs(epochs)
        if not np.allclose(got, ref_mean, rtol=1e-4, atol=1e-5):
            raise AssertionError(f"{fmt.name}: mean over epochs differs")
    log(f"  {ds.name}: reads checked")

    repeats = {
        "full": 3, "row": 5, "across": 1, "mean": 1, "across_dask": 1, "mean_loop": 1,
        "mean_epoch_chunks": 1,
    }
    warm_cases: dict[str, Callable[[], Timing]] = {}
    for fmt in fmts:
        for case, fn in read_cases(fmt, epochs, mid).items():
            warm_cases[f"{fmt.name}|{case}"] = lambda fn=fn, c=case: time_calls(fn, repeats[c])
    log(f"  {ds.name}: warm reads, {rounds} rounds")
    warm = interleaved(warm_cases, rounds)
    out["load"].append(load_sample())
    cold: dict[str, Timing] = {}
    resident: dict[str, float] = {}
    if cold_rounds:
        cold_cases: dict[str, Callable[[], Timing]] = {}
        for fmt in fmts:
            one = fmt.epoch_files(mid)
            every = fmt.files()
            for case, fn in read_cases(fmt, epochs, mid).items():
                paths = one if case in ("full", "row") else every
                reps = 2 if case in ("full", "row") else 1
                cold_cases[f"{fmt.name}|{case}"] = (
                    lambda fn=fn, p=paths, k=reps: time_calls(fn, k, before=lambda: evict(p))
                )
            evict(every)
            resident[fmt.name] = resident_fraction(every)
        log(f"  {ds.name}: cold reads, {cold_rounds} rounds (resident after evict: "
            f"{max(resident.values()):.3f})")
        cold = interleaved(cold_cases, cold_rounds)
    out["load"].append(load_sample())
    out["resident_after_evict"] = resident
    out["warm"] = {k: v.to_dict() for k, v in warm.items()}
    out["cold"] = {k: v.to_dict() for k, v in cold.items()}

    if rss:
        probes: Json = {}
        for fmt in fmts:
            if quick and fmt.kind not in ("npz", "epochstore"):
                continue
            reads = ["full", "row", "across", "mean"]
            if isinstance(fmt, EpochstoreFormat):
                reads += ["across_dask", "mean_epoch_chunks", "mean_loop"]
            if quick:
                reads = [r for r in reads if r in ("full", "across", "across_dask")]
            for read in reads:
                for warmup in (False, True):
                    if warmup and (quick or not read.startswith("across")):
                        continue
                    key = f"{fmt.name}|{read}" + ("+warm" if warmup else "")
                    probes[key] = probe(
                        {"format": fmt.spec(), "read": read, "epochs": epochs, "warmup": warmup}
                    )
        out["rss"] = probes
        log(f"  {ds.name}: rss probes done")
    out["elapsed_s"] = time.perf_counter() - t_start
    for fmt in fmts:
        fmt.delete()
    return out


# --- peak RSS in a fresh process ------------------------------------------------------------


def run_probe(spec: Json) -> Json:
    import dask.array  # noqa: F401
    import xarray  # noqa: F401
    import zarr  # noqa: F401

    import epochstore  # noqa: F401

    fmt = format_from_spec(spec["format"])
    epochs: list[int] = spec["epochs"]
    mid = len(epochs) // 2
    fn = read_cases(fmt, epochs, mid)[spec["read"]]
    if spec.get("warmup"):
        # the same kind of read on other data first: imports, thread pools and event loops
        # start here, so what is measured is what the read itself needs
        other = read_cases(fmt, epochs[:2], 0)
        fmt.read_row_across(epochs[:2], NEURON + 100)
        other[spec["read"]]()
    seconds, growth = peak_rss_growth(fn)
    return {"seconds": seconds, "peak_growth_mb": growth / MB}


def probe(spec: Json) -> Json:
    res = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--probe", json.dumps(spec)],
        check=True, capture_output=True, text=True,
    )
    result: Json = json.loads(res.stdout.strip().splitlines()[-1])
    return result


# --- the run --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="~2 minutes: synthetic, 8 epochs")
    parser.add_argument("--epochs", type=int, default=None, help="headline epochs (8 / 95)")
    parser.add_argument("--sample", type=int, default=None, help="sweep epochs (3 / 8)")
    parser.add_argument("--rounds", type=int, default=None, help="warm read rounds (1 / 3)")
    parser.add_argument("--cold-rounds", type=int, default=None, help="cold rounds (1 / 2)")
    parser.add_argument("--data", default=None, help="synthetic,real (quick: synthetic)")
    parser.add_argument("--real-run", default=str(REAL_RUN), help="run with neuron_activations")
    parser.add_argument(
        "--make-real", action="store_true",
        help="train and analyze --real-run first if it has no activations (~10-25 min)",
    )
    parser.add_argument(
        "--candidates", default=None,
        help="codecs measured next to the default over all epochs (default: zstd-1 quick; "
        "zstd-1,zstd-3,lz4-5 full, without the default)",
    )
    parser.add_argument("--no-rss", action="store_true")
    parser.add_argument("--no-headline", action="store_true")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--out", default=None)
    parser.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe is not None:
        print(json.dumps(run_probe(json.loads(args.probe))))
        return 0
    quick: bool = args.quick
    n_epochs = args.epochs or (8 if quick else 95)
    n_sample = args.sample or (3 if quick else 8)
    rounds = args.rounds or (1 if quick else 3)
    cold_rounds = args.cold_rounds if args.cold_rounds is not None else (1 if quick else 2)
    wanted = (args.data or ("synthetic" if quick else "synthetic,real")).split(",")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="epochstore-bench-formats-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    res: Json = {
        "mode": "quick" if quick else "full",
        "machine": machine_info(),
        "drop_caches_available": drop_caches_available(),
        "cold_method": "posix_fadvise(POSIX_FADV_DONTNEED) on the files read, after fsync",
        "shape": list(SHAPE),
        "epoch_mb": EPOCH_BYTES / MB,
        "neuron": NEURON,
        "default_codec": DEFAULT_CODEC.to_dict(),
        "target_chunk_bytes": TARGET_CHUNK_BYTES,
        "rounds": rounds,
        "cold_rounds": cold_rounds,
        "datasets": {},
    }
    try:
        datasets: list[Dataset] = []
        if "synthetic" in wanted:
            datasets.append(Dataset("synthetic", n_epochs))
        if "real" in wanted:
            real = real_activations(Path(args.real_run), args.make_real)
            if real is None:
                log(f"no real activations in {args.real_run}: skipped (see --make-real)")
            else:
                datasets.append(Dataset("real", n_epochs, real))
        res["limits"] = limits(work, datasets[0].epoch(0), quick)
        log("limits: " + json.dumps(
            {k: round(v, 2) for k, v in res["limits"].items() if k.endswith("gbps")}
        ))
        for ds in datasets:
            entry: Json = {"description": ds.describe()}
            entry["sweep"] = sweep(ds, work, quick, n_sample, rounds + (1 if quick else 0))
            names = args.candidates or ("zstd-1" if quick else "zstd-1,zstd-3,lz4-5")
            cands = [c for c in map(parse_codec, names.split(",")) if c != DEFAULT_CODEC]
            entry["candidate_codecs"] = [c.to_dict() for c in cands]
            if not args.no_headline:
                # peak RSS depends on the layout, not the values: probed on one dataset
                rss = not args.no_rss and ds is datasets[-1]
                entry["headline"] = headline(
                    ds, work / ds.name, quick, rounds, cold_rounds, rss, cands
                )
            res["datasets"][ds.name] = entry
    finally:
        res["elapsed_s"] = time.perf_counter() - started
        res["load_at_end"] = load_sample()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    out = Path(args.out) if args.out else HERE / "results" / (
        "formats-quick.json" if quick else "formats.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=str) + "\n")
    from bench_formats_report import plot, report

    text = report(res)
    out.with_suffix(".md").write_text(text + "\n")
    print(text)
    try:
        plot(res, out.with_suffix(".png"))
    except ImportError:
        log(f"no plot: install matplotlib (pip install -e '.[bench]'), then run "
            f"python benchmarks/bench_formats_report.py {out}")
    log(f"wrote {out}, {out.with_suffix('.md')}, {out.with_suffix('.png')} in "
        f"{res['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
