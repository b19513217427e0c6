"""Analysis throughput of the modadd family: seconds per checkpoint, by stage, and peak RSS.

For each source tree given (``--src``, e.g. this worktree's ``src`` and a ``git archive`` of an
older commit), a fresh subprocess with that tree first on ``PYTHONPATH``:

1. runs ``AnalysisPipeline(copy).run(workers=1)`` on a fresh copy of the run (checkpoints
   hard-linked, empty artifact store): the per-checkpoint task seconds (median), the
   child's peak RSS (``VmHWM``) and the process CPU seconds of the whole run per checkpoint
   (``run_cpu_per_checkpoint_s``: includes ``prepare`` and the summary, all threads);
   ``prepare`` (the key frequencies, one forward pass of the final checkpoint) is outside the
   per-checkpoint task figure;
2. times each stage on every checkpoint: load, the cached forward pass, each analyzer's
   ``compute`` in the pipeline's order (shared work is counted where it is first done), in
   wall seconds (``stages_median_s``) and process CPU seconds (``stages_cpu_median_s``: less
   sensitive to a loaded machine, where waiting threads inflate wall time).

Sources alternate within each repeat (the machine is noisy); the JSON keeps every repeat and
the load average when each child started.

Usage::

    epochstore train /tmp/tp/run --family modadd --preset paper \\
        --set num_epochs=40 --set checkpoint_every=10
    mkdir -p /tmp/before && git archive 930a37c src | tar -x -C /tmp/before
    python benchmarks/bench_analysis.py /tmp/tp/run --src before=/tmp/before/src \\
        --src after=src --repeats 3 --out benchmarks/results/analysis.json

Pass ``--threads N`` to run every child with ``torch.set_num_threads(N)``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

Json = dict[str, Any]
MB = 1024 * 1024


def _copy_run(run: Path, dest: Path) -> None:
    """A fresh run: variant files copied, checkpoints hard-linked, no artifacts."""
    dest.mkdir()
    for item in run.iterdir():
        if item.name == "checkpoints":
            (dest / item.name).mkdir()
            for ckpt in item.iterdir():
                os.link(ckpt, dest / item.name / ckpt.name)
        elif item.is_file():
            shutil.copy2(item, dest / item.name)


def child(run: str) -> Json:
    """Analyze a fresh copy of ``run`` with the pipeline, then time each stage."""
    import torch

    from epochstore._memory import peak_rss_bytes
    from epochstore.interface import EpochContext
    from epochstore.pipeline import AnalysisPipeline

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp, "run")
        _copy_run(Path(run), copy)
        pipeline = AnalysisPipeline(str(copy))
        task_seconds: list[float] = []
        loadavg = os.getloadavg()[0]
        cpu_started = time.process_time()
        started = time.perf_counter()
        pipeline.run(
            workers=1,
            progress=False,
            callback=lambda result, done, total: task_seconds.append(result.seconds),
        )
        wall = time.perf_counter() - started
        run_cpu = time.process_time() - cpu_started
        peak = peak_rss_bytes() / MB

        # Stage timings, on the same checkpoints, with the params the pipeline prepared.
        family = pipeline.family
        analyzers = family.analyzers()
        params = {a.name: a.prepare(pipeline._run_context()) for a in analyzers}
        probe = family.make_probe(pipeline.config)
        stages: dict[str, list[float]] = {}
        stages_cpu: dict[str, list[float]] = {}

        def timed(name: str, fn: Any) -> Any:
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn()
            stages.setdefault(name, []).append(time.perf_counter() - t0)
            stages_cpu.setdefault(name, []).append(time.process_time() - c0)
            return out

        for epoch in pipeline.checkpoints.epochs():
            model = timed("load", lambda e=epoch: pipeline._load_model(e))
            cache = timed("forward", lambda m=model: family.run_with_cache(m, probe))
            for analyzer in analyzers:
                context = EpochContext(epoch=epoch, params=params[analyzer.name])
                timed(
                    analyzer.name,
                    lambda a=analyzer, m=model, c=cache, x=context: a.compute(m, c, probe, x),
                )
            del model, cache
    return {
        "checkpoints": len(task_seconds),
        "torch_threads": torch.get_num_threads(),
        "loadavg_1min": loadavg,
        "wall_s": wall,
        "run_cpu_per_checkpoint_s": run_cpu / max(1, len(task_seconds)),
        "task_s": task_seconds,
        "task_median_s": statistics.median(task_seconds),
        "vmhwm_mb": peak,
        "stages_median_s": {k: statistics.median(v) for k, v in stages.items()},
        "stages_cpu_median_s": {k: statistics.median(v) for k, v in stages_cpu.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="a trained modadd run directory")
    parser.add_argument("--src", action="append", default=[], help="LABEL=PATH to a src tree")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--threads", type=int, help="torch threads in each child (default: torch's)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        print(json.dumps(child(args.child)))
        return
    if args.run is None:
        parser.error("give the run directory")
    sources = dict(s.split("=", 1) for s in args.src) or {"here": "src"}
    results: dict[str, list[Json]] = {label: [] for label in sources}
    for repeat in range(args.repeats):
        for label, src in sources.items():
            env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    args.run,
                    *(["--threads", str(args.threads)] if args.threads else []),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            results[label].append(result)
            stages = ", ".join(f"{k} {v:.3f}" for k, v in result["stages_median_s"].items())
            print(
                f"[{repeat}] {label}: {result['task_median_s']:.3f} s/checkpoint "
                f"(CPU {result['run_cpu_per_checkpoint_s']:.3f} s), "
                f"VmHWM {result['vmhwm_mb']:.0f} MB, load {result['loadavg_1min']:.1f}; {stages}",
                flush=True,
            )
    summary = {
        label: {
            "task_median_s": statistics.median(r["task_median_s"] for r in runs),
            "vmhwm_mb": statistics.median(r["vmhwm_mb"] for r in runs),
            "run_cpu_per_checkpoint_s": statistics.median(
                r["run_cpu_per_checkpoint_s"] for r in runs
            ),
            **{
                key: {
                    stage: statistics.median(r[key][stage] for r in runs) for stage in runs[0][key]
                }
                for key in ("stages_median_s", "stages_cpu_median_s")
            },
        }
        for label, runs in results.items()
    }
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(
            json.dumps({"run": args.run, "summary": summary, "repeats": results}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
