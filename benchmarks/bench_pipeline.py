#!/usr/bin/env python
"""Pipeline memory and speed (issue 4): peak RSS of ``analyze`` and seconds per epoch.

Measured on the Modulo Addition model at p = 113 (d_mlp 512, so ``neuron_activations`` is
``(512, 113, 113)`` float32 = 26.2 MB per epoch):

``rss``
    Peak RSS of ``AnalysisPipeline(run).run(epochs=first_n)`` (what ``epochstore analyze``
    runs: plan, then run; every analyzer of the family, sequential) for n = 10, 40, 95
    checkpoints, each in a fresh subprocess on a fresh copy of the run (checkpoints hard-linked,
    empty artifact store). The peak is the kernel's ``VmHWM`` of the child, read at its end.
    ``ru_maxrss`` is recorded too, but Linux carries it over from the parent across
    fork/exec, so the driver process stays small (no numpy, no torch). Two extra runs of 10
    checkpoints show where the flat level comes from: one with
    ``ModAddFamily(cache_keys=None)`` (every activation, ~370 MB at p = 113; the family's
    default keeps only ``mlp_post`` and ``logits``, what the built-in analyzers read), one with
    ``MALLOC_MMAP_THRESHOLD_=1048576`` (glibc then returns freed large buffers to the kernel
    at once; the pipeline's worker calls ``malloc_trim(0)`` after every epoch).
``npz``
    The original "before" design for ``neuron_activations``: one ``.npz`` holding every epoch,
    loaded whole (``np.load`` of every array), the new epoch added, and rewritten whole
    (``np.savez_compressed``) after every epoch, driven by the same per-epoch computation
    (checkpoint load, forward pass with the full activation cache, ``NeuronActivations``).
    Two kinds of runs: *full* (every epoch from an empty file, O(n^2) rewriting) and
    *last step* (the n-th epoch of such a run, starting from an ``.npz`` already holding the
    first n - 1 epochs, built from the arrays epochstore wrote). The held arrays grow with the
    file, so the last step sets the run's peak; it is a lower bound, as a full run also carries
    the heap fragmentation of its earlier epochs (the full runs show by how much).
``speed``
    Seconds per epoch of analysis on the first 40 checkpoints, ``workers=1`` (in-process,
    torch's default threads) and ``workers=2`` (two spawned processes, one thread each),
    interleaved, repeated (``--repeats``, 2 by default) and reported as medians. The
    ``workers=1`` samples include the 40-checkpoint run of ``rss``. Worker processes' own
    ``VmHWM`` is recorded through a thin wrapper around the pipeline's task function (a file per
    worker), next to the ``peak_rss_bytes`` the pipeline reports.

The weights come from a short training run (``epochstore train ... --preset paper --set
num_epochs=95 --set checkpoint_every=1``): 95 checkpoints of the real model size; their values
do not change the cost of analysis or storage. Training is timed too.

Run from the repository root::

    python benchmarks/bench_pipeline.py            # p = 113, 10/40/95 checkpoints, ~25 min
    python benchmarks/bench_pipeline.py --quick    # p = 59, 5/10/20 checkpoints, ~2-3 min

Prints markdown tables and writes ``benchmarks/results/pipeline[-quick].json``. Data goes to
``--workdir`` (default ``/tmp/epochstore-bench-pipeline``), deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from epochstore._memory import peak_rss_bytes, status_kb

HERE = Path(__file__).resolve().parent
MARKER = ".bench-pipeline"
MB = 1e6
ANALYZER = "neuron_activations"
MALLOC_LABEL = "MALLOC_MMAP_THRESHOLD_=1048576"
FIELD = "activations"

Json = dict[str, Any]


# --- memory probes (used in the children) -----------------------------------------------------


def memory_mb() -> Json:
    """This process's peak (``VmHWM``) and current (``VmRSS``) RSS, and ``ru_maxrss``, in MB."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    maxrss_bytes = maxrss if sys.platform == "darwin" else maxrss * 1024
    rss = status_kb("VmRSS")
    return {
        "vmhwm_mb": peak_rss_bytes() / MB,
        "vmrss_mb": rss * 1024 / MB if rss is not None else float("nan"),
        "ru_maxrss_mb": maxrss_bytes / MB,
    }


# --- child: analyze with the pipeline ----------------------------------------------------------


def _measured_task(fn: Callable[[Any], Any], rss_dir: str, item: Any) -> Any:
    """Run one pipeline task in a worker, then record the worker's own peak RSS in a file."""
    result = fn(item)
    path = Path(rss_dir, f"worker-{os.getpid()}.json")
    tasks = json.loads(path.read_text())["tasks"] + 1 if path.exists() else 1
    path.write_text(json.dumps({"pid": os.getpid(), "tasks": tasks, **memory_mb()}))
    return result


class MeasuredProcessExecutor:
    """``ProcessExecutor(workers)`` whose task function also records each worker's VmHWM."""

    def __init__(self, workers: int, rss_dir: Path) -> None:
        from epochstore.pipeline import ProcessExecutor

        self.inner = ProcessExecutor(workers)
        self.rss_dir = rss_dir

    def map_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        wrapped = functools.partial(_measured_task, fn, str(self.rss_dir))
        return self.inner.map_unordered(wrapped, items)


def child_analyze(spec: Json) -> Json:
    """Analyze the first ``n`` checkpoints of a fresh run copy; report memory and times."""
    started = time.perf_counter()
    import torch

    from epochstore.pipeline import AnalysisPipeline

    import_s = time.perf_counter() - started
    family = None
    if "cache_keys" in spec:
        from epochstore.families.modadd import ModAddFamily

        family = ModAddFamily(cache_keys=spec["cache_keys"])  # None: every activation
    pipeline = AnalysisPipeline(spec["run"], family=family)
    epochs = list(pipeline.checkpoints.epochs())[: spec["n"]]
    if len(epochs) < spec["n"]:
        raise SystemExit(f"run has {len(epochs)} checkpoints, {spec['n']} asked for")
    marks: list[Json] = []
    t_run = time.perf_counter()

    def callback(result: Any, done: int, total: int) -> None:
        marks.append(
            {
                "epoch": result.epoch,
                "t": time.perf_counter() - t_run,
                "task_seconds": result.seconds,
                "reported_peak_rss_mb": result.peak_rss_bytes / MB,
                "error": result.error,
                **memory_mb(),
            }
        )

    workers = int(spec["workers"])
    rss_dir = Path(spec["run"], ".worker-rss")
    executor = None
    if workers > 1:
        rss_dir.mkdir()
        executor = MeasuredProcessExecutor(workers, rss_dir)
    report = pipeline.run(
        workers=workers, executor=executor, epochs=epochs, progress=False, callback=callback
    )
    wall = time.perf_counter() - t_run
    worker_mem = (
        [json.loads(p.read_text()) for p in sorted(rss_dir.glob("worker-*.json"))]
        if workers > 1
        else []
    )
    return {
        "n": len(epochs),
        "workers": workers,
        "torch_threads": torch.get_num_threads(),
        "import_s": import_s,
        "wall_s": wall,
        "report_seconds": report.seconds,
        "written": len(report.written),
        "failed": {str(k): v for k, v in report.failed.items()},
        "marks": marks,
        "workers_memory": worker_mem,
        **memory_mb(),
    }


# --- child: the "before" design (one .npz per analyzer, rewritten whole) ----------------------


def npz_key(epoch: int) -> str:
    """Name of an epoch's array in the baseline ``.npz``."""
    return f"{FIELD}_epoch_{epoch:05d}"


def child_npz(spec: Json) -> Json:
    """Per epoch: compute ``neuron_activations``, load the whole ``.npz``, add it, rewrite it."""
    started = time.perf_counter()
    import numpy as np
    import torch

    from epochstore.checkpoints import CheckpointManager
    from epochstore.families import get_family
    from epochstore.families.modadd import NeuronActivations
    from epochstore.pipeline import EpochContext
    from epochstore.run import read_variant

    import_s = time.perf_counter() - started
    run = Path(spec["run"])
    variant = read_variant(run)
    family = get_family(variant.family)  # the same family object `analyze` uses
    config = dict(variant.params)
    manager = CheckpointManager(checkpoint_dir=str(run / "checkpoints"), read_only=True)
    probe = family.make_probe(config)
    analyzer = NeuronActivations()
    path = Path(spec["npz"])
    start_arrays = 0
    if path.exists():
        with np.load(path) as existing:
            start_arrays = len(existing.files)
    steps: list[Json] = []
    t_run = time.perf_counter()
    for epoch in spec["epochs"]:
        t0 = time.perf_counter()
        checkpoint = manager.load(epoch, map_location="cpu", include_optimizer=False)
        model = family.build_model(config)
        model.load_state_dict(checkpoint["model"])
        model.eval()
        with torch.no_grad():
            cache = family.run_with_cache(model, probe)
            context = EpochContext(epoch=epoch, config=config)
            new = analyzer.compute(model, cache, probe, context)[FIELD]
        del model, cache, checkpoint
        t1 = time.perf_counter()
        arrays: dict[str, Any] = {}
        if path.exists():
            with np.load(path) as old:
                arrays = {key: old[key] for key in old.files}
        arrays[npz_key(epoch)] = new
        t2 = time.perf_counter()
        np.savez_compressed(path, **arrays)
        t3 = time.perf_counter()
        held = len(arrays)
        del arrays, new
        gc.collect()
        steps.append(
            {
                "epoch": epoch,
                "arrays": held,
                "compute_s": t1 - t0,
                "load_s": t2 - t1,
                "save_s": t3 - t2,
                "seconds": t3 - t0,
                "file_mb": path.stat().st_size / MB,
                **memory_mb(),
            }
        )
    return {
        "start_arrays": start_arrays,
        "end_arrays": start_arrays + len(spec["epochs"]),
        "import_s": import_s,
        "wall_s": time.perf_counter() - t_run,
        "steps": steps,
        **memory_mb(),
    }


def child_export(spec: Json) -> Json:
    """Write ``.npz`` files holding the first ``k`` epochs' activations, from the store.

    Streams one array at a time into the zip (what ``np.savez_compressed`` writes, without
    holding every epoch): the starting files of the "last step" baseline runs.
    """
    import numpy as np

    from epochstore.store import ArtifactLoader

    loader = ArtifactLoader(spec["run"])
    stored = loader.get_epochs(ANALYZER)
    targets = sorted((int(k), Path(p)) for k, p in spec["files"].items())
    done = 0
    previous: Path | None = None
    sizes: Json = {}
    for k, path in targets:
        if k > len(stored):
            raise SystemExit(f"store has {len(stored)} epochs of {ANALYZER}, {k} asked for")
        if previous is not None:
            shutil.copyfile(previous, path)
        mode: Literal["a", "w"] = "a" if previous is not None else "w"
        with zipfile.ZipFile(path, mode, compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for epoch in stored[done:k]:
                array = loader.load_epoch(ANALYZER, epoch)[FIELD].values
                with zf.open(npz_key(epoch) + ".npy", "w", force_zip64=True) as fid:
                    np.lib.format.write_array(fid, np.ascontiguousarray(array))
        done, previous = k, path
        sizes[str(k)] = path.stat().st_size / MB
    return {"sizes_mb": sizes, "epochs": stored}


CHILDREN: dict[str, Callable[[Json], Json]] = {
    "analyze": child_analyze,
    "npz": child_npz,
    "export": child_export,
}


def child_main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    result = CHILDREN[spec["mode"]](spec)
    Path(spec["out"]).write_text(json.dumps(result))
    return 0


# --- driver ------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Driver:
    """Runs every measurement in a fresh subprocess; holds no arrays itself."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.counter = 0

    def child(self, spec: Json, env: dict[str, str] | None = None) -> Json:
        """Run ``spec`` in a fresh interpreter; return its result plus wall time and load."""
        self.counter += 1
        spec_path = self.workdir / f"spec-{self.counter}.json"
        out_path = self.workdir / f"out-{self.counter}.json"
        spec = {**spec, "out": str(out_path)}
        spec_path.write_text(json.dumps(spec))
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", str(spec_path)],
            check=True,
            env={**os.environ, **env} if env else None,
        )
        result: Json = json.loads(out_path.read_text())
        result["process_s"] = time.perf_counter() - t0
        result["load_before"] = load_before
        result["load_after"] = os.getloadavg()[0]
        spec_path.unlink()
        out_path.unlink()
        return result

    def fresh_copy(self, source: Path, name: str) -> Path:
        """A new run directory: ``variant.json`` and the checkpoints (hard-linked), no store."""
        target = self.workdir / name
        if target.exists():
            shutil.rmtree(target)
        target.mkdir()
        shutil.copy2(source / "variant.json", target / "variant.json")

        def link_or_copy(src: str, dst: str) -> None:
            if src.endswith(".safetensors"):
                os.link(src, dst)
            else:
                shutil.copy2(src, dst)

        shutil.copytree(source / "checkpoints", target / "checkpoints", copy_function=link_or_copy)
        return target


def train(run: Path, p: int, epochs: int) -> Json:
    exe = shutil.which("epochstore")
    cmd = [exe] if exe else [sys.executable, "-m", "epochstore.cli"]
    cmd += [
        "train",
        str(run),
        "--family",
        "modadd",
        "--preset",
        "paper",
        "--set",
        f"num_epochs={epochs}",
        "--set",
        "checkpoint_every=1",
        "--quiet",
    ]
    if p != 113:
        cmd += ["--set", f"p={p}"]
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - t0
    files = sorted((run / "checkpoints").glob("*.safetensors"))
    shown = " ".join(c if " " not in c else repr(c) for c in cmd)
    if exe:
        shown = "epochstore" + shown[len(exe) :]
    return {
        "command": shown,
        "seconds": seconds,
        "epochs": epochs,
        "checkpoints": len(files),
        "checkpoint_mb": sum(f.stat().st_size for f in files) / len(files) / MB,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def steady_seconds_per_epoch(marks: Sequence[Json]) -> float:
    """Seconds per epoch between the first and the last finished task (no start-up)."""
    if len(marks) < 2:
        return float("nan")
    return float(marks[-1]["t"] - marks[0]["t"]) / (len(marks) - 1)


def machine() -> Json:
    import importlib.metadata as md

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = float("nan")
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 1024**2
    versions: dict[str, str | None] = {}
    for name in ("epochstore", "torch", "numpy", "zarr", "numcodecs"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(mem_gib, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        **versions,
    }


def fmt(value: float, digits: int = 1) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join("---" if i == 0 else "---:" for i in range(len(headers))) + " |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render(res: Json) -> str:
    out: list[str] = []
    m = res["machine"]
    tr = res["train"]
    mb_epoch = res["activations_mb_per_epoch"]
    out.append(
        f"Machine: {m['cpus']} cores ({m['cpu']}), {m['mem_gib']} GiB, Linux {m['kernel']}, "
        f"Python {m['python']}, torch {m['torch']}, numpy {m['numpy']}, zarr {m['zarr']}. "
        f"Load average during the run: {fmt(res['load_min'])}-{fmt(res['load_max'])} "
        "(shared machine)."
    )
    out.append(
        f"p = {res['p']}: `neuron_activations` is {fmt(mb_epoch)} MB per epoch. Training "
        f"{tr['epochs']} epochs with a checkpoint every epoch ({fmt(tr['checkpoint_mb'], 2)} MB "
        f"each): {fmt(tr['seconds'])} s ({fmt(tr['seconds'] / tr['epochs'], 2)} s/epoch incl. "
        f"the checkpoint), `{tr['command']}`."
    )

    out.append("\n**Peak RSS of `analyze` (all analyzers, workers=1), fresh process per row**\n")
    rows = []
    peaks = []
    for r in res["rss"]:
        marks = r["marks"]
        first = marks[0]["vmhwm_mb"] if marks else float("nan")
        peaks.append(r["vmhwm_mb"])
        rows.append(
            [
                str(r["n"]),
                fmt(r["vmhwm_mb"]),
                fmt(first),
                fmt(r["vmhwm_mb"] - first),
                fmt(max(mk["vmrss_mb"] for mk in marks)) if marks else "-",
                fmt(r["ru_maxrss_mb"]),
                fmt(max(mk["reported_peak_rss_mb"] for mk in marks)),
                fmt(r["wall_s"]),
                fmt(steady_seconds_per_epoch(marks), 2),
            ]
        )
    for r in res.get("rss_variants", []):
        marks = r["marks"]
        first = marks[0]["vmhwm_mb"]
        rows.append(
            [
                f"{r['n']}, {r['label']}",
                fmt(r["vmhwm_mb"]),
                fmt(first),
                fmt(r["vmhwm_mb"] - first),
                fmt(max(mk["vmrss_mb"] for mk in marks)),
                fmt(r["ru_maxrss_mb"]),
                fmt(max(mk["reported_peak_rss_mb"] for mk in marks)),
                fmt(r["wall_s"]),
                fmt(steady_seconds_per_epoch(marks), 2),
            ]
        )
    out.append(
        table(
            [
                "checkpoints",
                "peak RSS MB (VmHWM)",
                "peak after 1st epoch",
                "growth after 1st",
                "max RSS after an epoch",
                "ru_maxrss MB",
                "pipeline-reported peak MB",
                "wall s",
                "s/epoch (steady)",
            ],
            rows,
        )
    )
    if peaks:
        spread = (max(peaks) - min(peaks)) / min(peaks) * 100
        out.append(
            f"\nSpread of the peak across {len(peaks)} runs: {fmt(spread, 2)}% "
            f"({fmt(max(peaks) - min(peaks))} MB)."
        )

    if res["rss"]:
        big = max(res["rss"], key=lambda r: r["n"])
        n_big = len(big["marks"])
        picks = sorted({k for k in (1, 2, 5, 10, 20, n_big // 2, n_big) if k <= n_big})
        trajectories = [("", big)] + [
            (f" ({r['label']})", r)
            for r in res.get("rss_variants", [])
            if r["label"] == MALLOC_LABEL and len(r["marks"]) == n_big
        ]
        rows = []
        for label, r in trajectories:
            marks = r["marks"]
            rows.append(
                [f"peak RSS so far MB{label}", *(fmt(marks[k - 1]["vmhwm_mb"]) for k in picks)]
            )
            rows.append([f"current RSS MB{label}", *(fmt(marks[k - 1]["vmrss_mb"]) for k in picks)])
        out.append(f"\nInside the {big['n']}-checkpoint runs (after the k-th finished epoch):\n")
        out.append(table(["after epoch k", *map(str, picks)], rows))

    out.append(
        "\n**Before: one `.npz` per analyzer, loaded and rewritten whole every epoch "
        "(`neuron_activations` only), fresh process per row**\n"
    )
    rows = []
    for r in res["npz"]:
        steps = r["steps"]
        last = steps[-1]
        rows.append(
            [
                r["kind"],
                str(r["end_arrays"]),
                fmt(r["vmhwm_mb"]),
                fmt(r["vmhwm_mb"] - r["end_arrays"] * mb_epoch),
                fmt(last["file_mb"]),
                fmt(last["compute_s"], 2),
                fmt(last["load_s"], 2),
                fmt(last["save_s"], 2),
                fmt(r["wall_s"]),
            ]
        )
    out.append(
        table(
            [
                "run",
                "epochs in file",
                "peak RSS MB (VmHWM)",
                "peak - epochs x MB/epoch",
                "file MB",
                "last epoch: compute s",
                "load s",
                "save s",
                "wall s",
            ],
            rows,
        )
    )
    if res.get("npz_growth"):
        g = res["npz_growth"]
        out.append(
            f"\nGrowth of the peak from {g['from_epochs']} to {g['to_epochs']} epochs (last "
            f"steps): {fmt(g['mb_per_epoch'], 2)} MB per epoch (one epoch's activations: "
            f"{fmt(mb_epoch, 2)} MB), i.e. peak ~ {fmt(g['intercept_mb'])} MB + "
            f"{fmt(g['mb_per_epoch'], 1)} MB x epochs."
        )
    if res.get("npz_full_time_estimate"):
        est = res["npz_full_time_estimate"]
        out.append(
            "Time of a full before-design run (every epoch's load + rewrite), from the "
            "measured last-step seconds, ~quadratic: "
            + ", ".join(f"{n} epochs ~ {fmt(s / 60)} min" for n, s in est.items())
            + "."
        )

    out.append(
        "\n**Seconds per epoch of analysis (all analyzers), "
        f"{res['speed_n']} checkpoints, medians of {res['repeats']}**\n"
    )
    rows = []
    for workers in sorted({r["workers"] for r in res["speed"]}):
        runs = [r for r in res["speed"] if r["workers"] == workers]
        wall = [r["wall_s"] / r["n"] for r in runs]
        steady = [steady_seconds_per_epoch(r["marks"]) for r in runs]
        task = [median([mk["task_seconds"] for mk in r["marks"]]) for r in runs]
        hwm = [r["vmhwm_mb"] for r in runs]
        wmem = [w["vmhwm_mb"] for r in runs for w in r["workers_memory"]]
        wrep = [mk["reported_peak_rss_mb"] for r in runs for mk in r["marks"]]
        rows.append(
            [
                str(workers),
                str(runs[0]["torch_threads"]) if workers == 1 else "1 per worker",
                fmt(median(wall), 2),
                fmt(median(steady), 2),
                fmt(median(task), 2),
                " / ".join(fmt(x, 2) for x in wall),
                fmt(median(hwm)),
                fmt(max(wmem)) if wmem else "-",
                fmt(max(wrep)) if wrep else "-",
            ]
        )
    out.append(
        table(
            [
                "workers",
                "torch threads",
                "s/epoch (wall incl. start-up)",
                "s/epoch (steady)",
                "s per task",
                "samples (wall s/epoch)",
                "peak RSS main process MB",
                "peak RSS per worker MB (VmHWM)",
                "pipeline-reported worker peak MB",
            ],
            rows,
        )
    )
    return "\n".join(out)


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return slope, my - slope * mx


def parse_counts(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="p = 59, 5/10/20 checkpoints, fewer repeats (~2-3 minutes)",
    )
    parser.add_argument("--p", type=int, help="modulus (default 113; 59 with --quick)")
    parser.add_argument("--counts", help="checkpoint counts of the RSS runs (default 10,40,95)")
    parser.add_argument("--speed-count", type=int, help="checkpoints of the speed runs (40)")
    parser.add_argument(
        "--repeats",
        type=int,
        help="samples per worker count in the speed runs (default 2, quick 1)",
    )
    parser.add_argument("--npz-full", help="epochs of full before-design runs (default 10)")
    parser.add_argument(
        "--npz-last", help="epochs of last-step before-design runs (default 10,40,95)"
    )
    parser.add_argument(
        "--variant-count",
        type=int,
        help="checkpoints of the extra RSS run with ModAddFamily(cache_keys=None) "
        "(default 10, quick 5; 0 = skip)",
    )
    parser.add_argument(
        "--malloc-count",
        type=int,
        help="checkpoints of the extra RSS run with MALLOC_MMAP_THRESHOLD_=1048576 "
        "(default: the largest of --counts; 0 = skip)",
    )
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated parts to leave out: variants, speed, npz (e.g. to re-measure "
        "only the RSS rows into another --out file)",
    )
    parser.add_argument("--render", type=Path, help="print the tables of a results JSON; no run")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/epochstore-bench-pipeline"))
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--out", type=Path, help="results JSON (default benchmarks/results/pipeline[-quick].json)"
    )
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child)
    if args.render:
        print(render(json.loads(args.render.read_text())))
        return 0

    quick = args.quick
    p = args.p or (59 if quick else 113)
    counts = parse_counts(args.counts or ("5,10,20" if quick else "10,40,95"))
    speed_n = args.speed_count or (10 if quick else 40)
    repeats = args.repeats or (1 if quick else 2)
    npz_full = parse_counts(args.npz_full or ("5,10" if quick else "10"))
    npz_last = parse_counts(args.npz_last or ("10,20" if quick else "10,40,95"))
    if args.variant_count is None:
        args.variant_count = 5 if quick else 10
    if args.malloc_count is None:
        args.malloc_count = max(counts)
    n_train = max([*counts, speed_n, *npz_full, *npz_last])
    out_path = args.out or HERE / "results" / f"pipeline{'-quick' if quick else ''}.json"

    workdir: Path = args.workdir
    if workdir.exists():
        if any(workdir.iterdir()) and not (workdir / MARKER).exists():
            parser.error(f"{workdir} exists and was not made by this benchmark")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text("")
    driver = Driver(workdir)
    started = time.perf_counter()
    loads = [os.getloadavg()[0]]
    res: Json = {
        "quick": quick,
        "p": p,
        "d_mlp": 512,
        "activations_mb_per_epoch": 512 * p * p * 4 / MB,
        "machine": machine(),
        "command": "python benchmarks/bench_pipeline.py"
        + (" " + " ".join(sys.argv[1:]) if len(sys.argv) > 1 else ""),
        "counts": counts,
        "speed_n": speed_n,
        "repeats": repeats,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    try:
        source = workdir / "source-run"
        log(f"training p={p} for {n_train} epochs, a checkpoint every epoch")
        res["train"] = train(source, p, n_train)
        log(f"trained in {res['train']['seconds']:.0f} s")

        res["rss"] = []
        largest = None
        for n in counts:
            run = driver.fresh_copy(source, f"rss-{n}")
            r = driver.child({"mode": "analyze", "run": str(run), "n": n, "workers": 1})
            r["run_dir"] = run.name
            res["rss"].append(r)
            loads += [r["load_before"], r["load_after"]]
            log(f"analyze {n:>3} checkpoints: peak {r['vmhwm_mb']:.1f} MB, {r['wall_s']:.0f} s")
            if largest is not None:
                shutil.rmtree(workdir / largest)
            largest = run.name

        # Where the flat peak comes from. (1) The family caches only the activations the
        # built-in analyzers read; this run caches all 16 (~370 MB at p = 113), as it did
        # before. (2) glibc's dynamic mmap threshold fixed at 1 MiB, so freed 20-80 MB
        # buffers go back to the kernel at once (the worker also calls malloc_trim).
        variants: list[tuple[str, int, Json, dict[str, str] | None]] = [
            ("cache_keys=None (every activation)", args.variant_count, {"cache_keys": None}, None),
            (MALLOC_LABEL, args.malloc_count, {}, {"MALLOC_MMAP_THRESHOLD_": "1048576"}),
        ]
        res["rss_variants"] = []
        skip = {part.strip() for part in args.skip.split(",") if part.strip()}
        res["skipped"] = sorted(skip)
        for label, n, extra, env in variants:
            if not n or "variants" in skip:
                continue
            run = driver.fresh_copy(source, "rss-variant")
            spec = {"mode": "analyze", "run": str(run), "n": n, "workers": 1, **extra}
            r = driver.child(spec, env=env)
            r["label"] = label
            res["rss_variants"].append(r)
            loads += [r["load_before"], r["load_after"]]
            log(f"analyze {n:>3} checkpoints, {label}: peak {r['vmhwm_mb']:.1f} MB")
            shutil.rmtree(run)

        res["speed"] = [dict(r) for r in res["rss"] if r["n"] == speed_n]
        # Interleaved (2, 1, 2, 1, ...) so that the machine's load falls on both alike.
        need = {1: repeats - len(res["speed"]), 2: repeats}
        plan = []
        if "speed" in skip:
            need = {1: 0, 2: 0}
        while need[1] > 0 or need[2] > 0:
            for workers in (2, 1):
                if need[workers] > 0:
                    plan.append(workers)
                    need[workers] -= 1
        for workers in plan:
            run = driver.fresh_copy(source, "speed")
            r = driver.child({"mode": "analyze", "run": str(run), "n": speed_n, "workers": workers})
            res["speed"].append(r)
            loads += [r["load_before"], r["load_after"]]
            log(f"speed workers={workers}: {r['wall_s'] / r['n']:.2f} s/epoch wall")
            shutil.rmtree(run)

        # The "before" design.
        assert largest is not None
        if "npz" in skip:
            npz_full, npz_last = [], []
        if max(npz_last, default=0) - 1 > max(counts):
            raise SystemExit("--npz-last needs an RSS run with at least as many checkpoints")
        starts = {n - 1: str(workdir / f"start-{n - 1}.npz") for n in npz_last if n > 1}
        if starts:
            log(f"building .npz starting files with {sorted(starts)} epochs from the store")
            exp = driver.child({"mode": "export", "run": str(workdir / largest), "files": starts})
            res["npz_export"] = {"sizes_mb": exp["sizes_mb"], "seconds": exp["process_s"]}
        epochs_all = list(range(n_train))  # checkpoint_every=1: epoch e is the e-th checkpoint
        res["npz"] = []
        for n in npz_full:
            npz = workdir / f"full-{n}.npz"
            r = driver.child(
                {"mode": "npz", "run": str(source), "npz": str(npz), "epochs": epochs_all[:n]}
            )
            r["kind"] = "full"
            res["npz"].append(r)
            loads += [r["load_before"], r["load_after"]]
            log(f"npz full {n}: peak {r['vmhwm_mb']:.1f} MB, {r['wall_s']:.0f} s")
            npz.unlink()
        for n in npz_last:
            npz = workdir / f"last-{n}.npz"
            if n > 1:
                Path(starts[n - 1]).rename(npz)
            r = driver.child(
                {"mode": "npz", "run": str(source), "npz": str(npz), "epochs": [epochs_all[n - 1]]}
            )
            r["kind"] = "last step"
            res["npz"].append(r)
            loads += [r["load_before"], r["load_after"]]
            log(f"npz last step of {n}: peak {r['vmhwm_mb']:.1f} MB, {r['wall_s']:.0f} s")
            npz.unlink()
        # Growth per epoch once the held arrays dominate the peak: between the two largest
        # last-step runs (at small n the forward pass's cache, ~370 MB, sets the peak).
        lasts = sorted(
            (r for r in res["npz"] if r["kind"] == "last step"), key=lambda r: r["end_arrays"]
        )
        if len(lasts) >= 2:
            lo, hi = lasts[-2], lasts[-1]
            slope = (hi["vmhwm_mb"] - lo["vmhwm_mb"]) / (hi["end_arrays"] - lo["end_arrays"])
            res["npz_growth"] = {
                "from_epochs": lo["end_arrays"],
                "to_epochs": hi["end_arrays"],
                "mb_per_epoch": slope,
                "intercept_mb": hi["vmhwm_mb"] - slope * hi["end_arrays"],
            }
        # One epoch's load + rewrite costs ~ a + b * n seconds (n arrays in the file); a full
        # run of N epochs sums that over n = 1..N.
        lasts = [r for r in res["npz"] if r["kind"] == "last step"]
        if len({r["end_arrays"] for r in lasts}) >= 2:
            b, a = fit_line(
                [float(r["end_arrays"]) for r in lasts],
                [r["steps"][-1]["load_s"] + r["steps"][-1]["save_s"] for r in lasts],
            )
            compute = median([s["compute_s"] for r in res["npz"] for s in r["steps"]])
            res["npz_step_fit"] = {"io_intercept_s": a, "io_s_per_array": b, "compute_s": compute}
            res["npz_full_time_estimate"] = {
                n: sum(compute + a + b * k for k in range(1, n + 1)) for n in (40, 95)
            }
    finally:
        res["total_s"] = time.perf_counter() - started
        loads.append(os.getloadavg()[0])
        res["load_min"], res["load_max"] = min(loads), max(loads)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(res, indent=1))
    print(render(res))
    print(f"\nTotal {res['total_s'] / 60:.1f} min; results in {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
