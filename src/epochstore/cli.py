"""The ``epochstore`` command: train, analyze, list and inspect runs, and run the demo."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from epochstore._cli_options import parse_storage_options
from epochstore._version import __version__
from epochstore.errors import EpochstoreError

__all__ = ["main"]

DEMO_RUN = str(Path("runs", "modadd", "demo"))


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _overrides(pairs: Sequence[str]) -> dict[str, Any]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise EpochstoreError(f"--set takes KEY=VALUE (JSON values), got {pair!r}")
        result[key] = _parse_value(value)
    return result


def _train(args: argparse.Namespace) -> int:
    from epochstore.families import get_family

    family = get_family(args.family)
    presets = family.presets()
    if args.preset not in presets:
        raise EpochstoreError(
            f"family {args.family!r} has no preset {args.preset!r}; presets: {sorted(presets)}"
        )
    config = {**presets[args.preset], **_overrides(args.set)}
    started = time.perf_counter()
    family.train(args.run, config, progress=_train_progress(args.quiet))
    print(f"trained {args.run} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


def _train_progress(quiet: bool) -> Any:
    if quiet:
        return None

    def report(epoch: int, metrics: Mapping[str, float]) -> None:
        shown = "  ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()))
        print(f"epoch {epoch:>6}  {shown}", file=sys.stderr, flush=True)

    return report


def _analyze(args: argparse.Namespace) -> int:
    from epochstore.pipeline import AnalysisPipeline

    if args.recompute_damaged:
        from epochstore.reliability import repair_run

        repair_run(args.run, log=lambda line: print(line, file=sys.stderr))
    options = parse_storage_options(args.storage_options)
    pipeline = AnalysisPipeline(
        args.run,
        analyzers=args.analyzers.split(",") if args.analyzers else None,
        device=args.device,
        storage_options=options,
        codec=args.codec,
    )
    modules = [name for name in (args.capture or "").split(",") if name]
    if modules:
        from epochstore.analysis.captures import capture_analyzers

        captured = capture_analyzers(
            pipeline.family, pipeline.config, modules, device=args.device,
            max_bytes=int(args.capture_max_mb * 2**20),
        )
        pipeline = AnalysisPipeline(
            args.run,
            family=pipeline.family,
            config=pipeline.config,
            analyzers=[*pipeline.analyzers.values(), *captured],
            device=args.device,
            storage_options=options,
            codec=args.codec,
        )
    plan = pipeline.plan()
    print(plan.summary(), file=sys.stderr)
    client = None
    cluster = None
    if args.scheduler:
        from distributed import Client

        client = Client(args.scheduler)
    elif args.dask_workers:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=args.dask_workers, threads_per_worker=1, processes=True)
        client = Client(cluster)
    try:
        report = pipeline.run(workers=args.workers, client=client, progress=not args.quiet)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    print(
        f"wrote {len(report.written)} (analyzer, epoch) pairs in {report.seconds:.1f} s",
        file=sys.stderr,
    )
    for epoch, error in report.failed.items():
        print(f"epoch {epoch} skipped: {error}", file=sys.stderr)
    return 0 if report.ok else 1


def _find_runs(root: Path, depth: int = 4) -> list[Path]:
    if (root / "variant.json").is_file():
        return [root]
    if depth == 0 or not root.is_dir():
        return []
    runs: list[Path] = []
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith("."):
            runs += _find_runs(child, depth - 1)
    return runs


def _ls(args: argparse.Namespace) -> int:
    from epochstore.run import read_variant
    from epochstore.store import ArtifactLoader

    runs = _find_runs(Path(args.root))
    if not runs:
        print(f"no runs (directories with variant.json) under {args.root}", file=sys.stderr)
        return 1
    for run in runs:
        variant = read_variant(run)
        analyzers = ArtifactLoader(run).get_available_analyzers()
        n_ckpt = len(list((run / "checkpoints").glob("checkpoint_epoch_*.safetensors")))
        print(f"{run}  family={variant.family}  checkpoints={n_ckpt}  analyzers={len(analyzers)}")
    return 0


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _info(args: argparse.Namespace) -> int:
    import math

    import numpy as np

    from epochstore.run import read_variant
    from epochstore.store import ArtifactLoader

    run = Path(args.run)
    variant = read_variant(run)
    print(f"run       {run}")
    print(f"family    {variant.family}  (written by epochstore {variant.epochstore_version})")
    print(f"params    {json.dumps(dict(variant.params), sort_keys=True)}")
    loader = ArtifactLoader(run)
    analyzers = loader.get_available_analyzers()
    if not analyzers:
        print("artifacts none yet: run `epochstore analyze`")
    for name in analyzers:
        manifest = loader.manifest(name)
        epochs = manifest.epochs
        span = f"{epochs[0]}..{epochs[-1]}" if epochs else "-"
        raw = sum(
            math.prod(f.shape) * np.dtype(f.dtype).itemsize for f in manifest.fields.values()
        )
        disk = _dir_size(run / "artifacts" / name) if (run / "artifacts" / name).is_dir() else 0
        print(
            f"{name:<24} {len(epochs):>4} epochs ({span})  {raw * len(epochs) / 1e6:9.1f} MB raw"
            f"  {disk / 1e6:9.1f} MB on disk"
        )
        for field, spec in manifest.fields.items():
            dims = ", ".join(f"{d}={s}" for d, s in zip(spec.dims, spec.shape, strict=True))
            print(f"    {field:<22} {np.dtype(spec.dtype).name:<8} ({dims})")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from epochstore.checkpoints import CheckpointManager
    from epochstore.families import get_family
    from epochstore.pipeline import AnalysisPipeline
    from epochstore.store import ArtifactLoader

    run = args.run
    family = get_family("modadd")
    config = dict(family.presets()["demo"])
    manager_dir = str(Path(run, "checkpoints"))
    started = time.perf_counter()
    print(f"[1/2] training the Modulo Addition demo preset into {run}", file=sys.stderr)
    family.train(run, config, progress=_train_progress(args.quiet))
    trained = time.perf_counter()
    print(f"[2/2] analysing every checkpoint into {run}/artifacts", file=sys.stderr)
    report = AnalysisPipeline(run).run(workers=args.workers, progress=not args.quiet)
    done = time.perf_counter()
    records = CheckpointManager(checkpoint_dir=manager_dir, read_only=True).records()

    def first(metric: str) -> int | None:
        for record in records:
            if record.metrics.get(metric, 0.0) >= 0.99:
                return record.epoch
        return None

    memorised, grokked = first("train_accuracy"), first("test_accuracy")
    final = records[-1].metrics if records else {}
    loader = ArtifactLoader(run)
    print()
    print(f"Modulo Addition demo (p = {config.get('p')}), {len(records)} checkpoints")
    print(f"  train accuracy >= 99% at epoch {memorised}")
    print(f"  test accuracy  >= 99% at epoch {grokked}  <- grokking")
    print(
        f"  final: train acc {final.get('train_accuracy', float('nan')):.3f}, "
        f"test acc {final.get('test_accuracy', float('nan')):.3f}"
    )
    if "progress_measures" in loader.get_available_analyzers():
        params = loader.manifest("progress_measures").params
        print(f"  key frequencies (final checkpoint): {params.get('key_frequencies')}")
    print(f"  training {trained - started:.0f} s, analysis {done - trained:.0f} s "
          f"({len(report.written)} artifacts written)")
    print(f"  checkpoints: {manager_dir}")
    print(f"  artifacts:   {Path(run, 'artifacts')}  "
          f"(analyzers: {', '.join(loader.get_available_analyzers())})")
    print(f"  inspect:     epochstore info {run}")
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``epochstore`` command."""
    parser = argparse.ArgumentParser(
        prog="epochstore",
        description="Store and analyse a training run's checkpoints and artifacts, "
        "one epoch at a time.",
    )
    parser.add_argument("--version", action="version", version=f"epochstore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a run of a model family, saving checkpoints")
    p.add_argument("run", help="run directory to create or resume")
    p.add_argument("--family", default="modadd")
    p.add_argument("--preset", default="demo")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (JSON), e.g. --set p=59")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_train)

    p = sub.add_parser("analyze", help="compute the missing (analyzer, epoch) artifacts")
    p.add_argument("run")
    p.add_argument("--analyzers", help="comma-separated analyzer names (default: all)")
    p.add_argument("--workers", type=int, default=1, help="local worker processes")
    p.add_argument("--dask-workers", type=int, default=0,
                   help="start a Dask LocalCluster with this many worker processes")
    p.add_argument("--scheduler", help="address of a Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--storage-options", metavar="JSON",
                   help="fsspec options for a URL run, e.g. "
                   "'{\"client_kwargs\": {\"endpoint_url\": \"http://host:9000\"}}'")
    p.add_argument("--device", default="cpu")
    p.add_argument("--codec", default="default",
                   help="compression of analyzers created by this run: 'default' (lz4-5), "
                   "'archival' (zstd-1: as small as .npz, slower reads), 'none' or "
                   "'<cname>-<level>[-<shuffle>]'; existing analyzers keep theirs")
    p.add_argument("--capture", metavar="NAME[,NAME...]",
                   help="also store the outputs of these modules on the probe, one analyzer "
                   "each (capture_<name>), e.g. 'hidden' or 'blocks.0.mlp.hook_post'")
    p.add_argument("--capture-max-mb", type=float, default=64.0, metavar="MB",
                   help="refuse a capture larger than this per epoch (default 64)")
    p.add_argument("--recompute-damaged", action="store_true",
                   help="verify the run first and delete damaged epochs so they are recomputed")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_analyze)

    for name in ("ls", "list"):
        p = sub.add_parser(name, help="list the runs under a directory (metadata only)")
        p.add_argument("root", nargs="?", default="runs")
        p.set_defaults(func=_ls)

    p = sub.add_parser("info", help="a run's variant, analyzers, epochs and sizes")
    p.add_argument("run")
    p.set_defaults(func=_info)

    from epochstore.reliability.cli import add_parser as add_reliability

    add_reliability(sub)

    from epochstore.bench.cli import add_parser as add_bench

    add_bench(sub)

    p = sub.add_parser("demo", help="train and analyse the Modulo Addition demo preset")
    p.add_argument("--run", default=DEMO_RUN)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_demo)

    from epochstore.dashboard.cli import add_parser as add_serve
    from epochstore.viz.report_cli import add_parser as add_report

    add_report(sub)
    add_serve(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``epochstore`` command; return its exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except EpochstoreError as exc:
        print(f"epochstore: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"epochstore: error: {exc}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
