"""The ``epochstore`` command: train, analyze, list and inspect runs, and run the demo."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from epochstore._cli_options import parse_storage_options
from epochstore._version import __version__
from epochstore.errors import EpochstoreError

if TYPE_CHECKING:
    from epochstore.sweeps import TrainJob

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
    from epochstore.plugins import get_family
    from epochstore.sweeps import TrainJob, parse_sweep

    family = get_family(args.family)
    presets = family.presets()
    if args.preset not in presets:
        raise EpochstoreError(
            f"family {args.family!r} has no preset {args.preset!r}; presets: {sorted(presets)}"
        )
    storage_options = parse_storage_options(args.storage_options)
    started = time.perf_counter()
    if args.sweep:
        return _sweep(args, family, parse_sweep(args.sweep), storage_options)
    config = {**presets[args.preset], **_overrides(args.set)}
    # One run: one torch thread unless asked (measured faster for these small models on
    # shared cores, docs/families/modadd.md).
    job = TrainJob(run=args.run, family=family, config=config,
                   threads=1 if args.threads is None else args.threads,
                   storage_options=storage_options)
    _train_with_progress(job, f"train {args.run}", quiet=args.quiet)
    print(f"trained {args.run} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


def _sweep(
    args: argparse.Namespace,
    family: Any,
    swept: Mapping[str, Sequence[Any]],
    storage_options: Mapping[str, Any] | None,
) -> int:
    import os

    from epochstore.sweeps import sweep

    started = time.perf_counter()
    threads = args.threads
    if threads is None and args.dask_workers:  # a LocalCluster here: share this machine's cores
        threads = max(1, (os.cpu_count() or 1) // args.dask_workers)
    with _dask_client(args) as client:
        report = sweep(args.run, family, swept, preset=args.preset,
                       overrides=_overrides(args.set), workers=args.workers, client=client,
                       threads=threads, storage_options=storage_options,
                       progress=not args.quiet)
    for run in report.skipped:
        print(f"{run}: already trained", file=sys.stderr)
    for run, error in report.failed.items():
        print(f"{run}: failed: {error}", file=sys.stderr)
    print(f"sweep of {len(report.runs)} variants under {args.run}: trained "
          f"{len(report.results) - len(report.failed)}, {len(report.skipped)} already done, "
          f"{len(report.failed)} failed, in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    return 0 if report.ok else 1


@contextlib.contextmanager
def _dask_client(args: argparse.Namespace) -> Iterator[Any]:
    """The Dask client of --scheduler / --dask-workers, closed afterwards; else ``None``."""
    if args.scheduler:
        from distributed import Client

        with Client(args.scheduler) as client:
            yield client
    elif args.dask_workers:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=args.dask_workers, threads_per_worker=1,
                          processes=True) as cluster, Client(cluster) as client:
            yield client
    else:
        yield None


def _train_with_progress(job: TrainJob, desc: str, *, quiet: bool) -> None:
    from epochstore.progress import Progress
    from epochstore.sweeps import train_variant

    # A family's config names its length ``num_epochs`` by convention; without it the bar
    # shows the rate but no time left.
    total = job.config.get("num_epochs")
    with Progress(
        total if isinstance(total, int) else None, desc, enabled=not quiet, initial=None
    ) as bar:
        train_variant(job, progress=bar.training_callback())


def _analyze(args: argparse.Namespace) -> int:
    from epochstore.pipeline.many import analyze_runs, follow
    from epochstore.runs import run_locations

    storage_options = parse_storage_options(args.storage_options)
    runs = run_locations(args.run, storage_options)
    if not runs and not args.follow:
        raise EpochstoreError(
            f"no runs (directories with variant.json or artifacts/) at or under {args.run}; "
            "train one with `epochstore train`, or check the path"
        )
    if args.recompute_damaged:
        from epochstore.reliability import repair_run

        for run in runs:
            repair_run(run, log=lambda line: print(line, file=sys.stderr))
    options: dict[str, Any] = {
        "analyzers": args.analyzers.split(",") if args.analyzers else None,
        "device": args.device,
        "storage_options": storage_options,
        "codec": args.codec,
        "capture": [name for name in (args.capture or "").split(",") if name],
        "capture_max_bytes": int(args.capture_max_mb * 2**20),
    }

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    with _dask_client(args) as client:
        if args.follow:
            try:
                report = follow(args.run, workers=args.workers, client=client,
                                poll=args.poll, idle_timeout=args.idle_timeout,
                                progress=not args.quiet, log=log, **options)
            except KeyboardInterrupt:  # what is written is committed; run again to go on
                print("interrupted; analysed epochs are kept", file=sys.stderr)
                return 130
        else:
            # One run named on the command line: its bad input is an error (exit 2); under a
            # root, a bad run is skipped and reported so the others are analysed.
            report = analyze_runs(runs, workers=args.workers, client=client,
                                  progress=not args.quiet, recompute_stale=args.recompute_stale,
                                  log=log, skip_bad_runs=runs != [args.run], **options)
    print(
        f"wrote {len(report.written)} (analyzer, epoch) pairs of {len(report.results)} runs "
        f"in {report.seconds:.1f} s",
        file=sys.stderr,
    )
    for (run, epoch), error in report.failed.items():
        print(f"{run} epoch {epoch} skipped: {error}", file=sys.stderr)
    return 0 if report.ok and not report.skipped else 1


def _ls(args: argparse.Namespace) -> int:
    from epochstore.summary import format_table, variant_table

    rows = variant_table(args.root, storage_options=parse_storage_options(args.storage_options))
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True, default=str))
        return 0
    if not rows:
        print(f"no runs (directories with variant.json or artifacts/) under {args.root}",
              file=sys.stderr)
        return 1
    print(format_table(rows, root=args.root))
    return 0


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _info(args: argparse.Namespace) -> int:
    import math

    import numpy as np

    from epochstore.run import VARIANT_FILE, read_variant
    from epochstore.runs import is_run
    from epochstore.store import ArtifactLoader

    run = Path(args.run)
    if not is_run(run):
        raise FileNotFoundError(f"{run} is not a run: no {VARIANT_FILE} and no artifacts/ store "
                                "(`epochstore ls DIR` lists the runs under DIR)")
    print(f"run       {run}")
    if (run / VARIANT_FILE).is_file():
        variant = read_variant(run)
        print(f"family    {variant.family}  (written by epochstore {variant.epochstore_version})")
        print(f"params    {json.dumps(dict(variant.params), sort_keys=True)}")
    else:
        print("family    none: an artifacts store written with ArtifactStore alone")
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
    from epochstore.sweeps import TrainJob

    job = TrainJob(run=run, family=family, config=config, threads=args.threads)
    _train_with_progress(job, "[1/2] train", quiet=args.quiet)
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


def _add_executor_options(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--workers", type=int, default=1,
                   help=f"local worker processes ({what} in parallel)")
    p.add_argument("--dask-workers", type=int, default=0,
                   help="start a Dask LocalCluster with this many worker processes")
    p.add_argument("--scheduler", help="address of a Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--storage-options", metavar="JSON",
                   help="fsspec options for a URL, e.g. "
                   "'{\"client_kwargs\": {\"endpoint_url\": \"http://host:9000\"}}'")


def _add_threads(parser: argparse.ArgumentParser, default: int | None, default_text: str) -> None:
    parser.add_argument(
        "--threads", type=int, default=default, metavar="N",
        help=f"torch threads (default {default_text}; 1 is faster than 2 for small models on "
        "shared cores; 0 keeps torch's default)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``epochstore`` command."""
    parser = argparse.ArgumentParser(
        prog="epochstore",
        description="Store and analyse a training run's checkpoints and artifacts, "
        "one epoch at a time.",
    )
    parser.add_argument("--version", action="version", version=f"epochstore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a run, or a sweep of variants under a root")
    p.add_argument("run", help="run directory or URL to create or resume; with --sweep, the "
                   "root the variants go under (ROOT/<family>/<variant>)")
    p.add_argument("--family", default="modadd")
    p.add_argument("--preset", default="demo")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (JSON), e.g. --set p=59")
    p.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="train every combination of these values (JSON), e.g. --sweep p=53,59 "
                   "--sweep model_seed=1,2; a killed sweep run again finishes what is missing")
    _add_executor_options(p, "variants")
    _add_threads(p, None, "1 for one run; for a sweep, the cores divided among workers")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=_train)

    p = sub.add_parser("analyze", help="compute the missing (run, analyzer, epoch) artifacts "
                       "of a run or of every run under a root")
    p.add_argument("run", help="a run, or a root holding runs (local directory or URL)")
    p.add_argument("--analyzers", help="comma-separated analyzer names (default: all)")
    _add_executor_options(p, "epochs")
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
    p.add_argument("--recompute-stale", action="store_true",
                   help="also recompute (overwrite atomically) epochs computed by another "
                   "analyzer version or run-level params")
    p.add_argument("--follow", action="store_true",
                   help="keep analysing checkpoints as training commits them, until every run "
                   "has finished training and is analysed")
    p.add_argument("--poll", type=float, default=2.0, help="--follow: seconds between checks")
    p.add_argument("--idle-timeout", type=float, default=300.0,
                   help="--follow: stop following a run that has not recorded that its "
                   "training finished after this many seconds without a new checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=_analyze)

    for name in ("ls", "list"):
        p = sub.add_parser(name, help="the variant table of the runs under a root (metadata "
                           "only: each run's summary.json)")
        p.add_argument("root", nargs="?", default="runs")
        p.add_argument("--json", action="store_true", help="print the rows as JSON")
        p.add_argument("--storage-options", metavar="JSON", help="fsspec options for a URL")
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
    p.add_argument("--workers", type=int, default=1, help="analysis worker processes")
    _add_threads(p, 1, "1")
    p.add_argument("--quiet", action="store_true", help="no progress display")
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
