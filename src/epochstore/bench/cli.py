"""``epochstore bench RUN``: compare codecs and chunkings on a sample of the run's own epochs."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]


def _bench(args: argparse.Namespace) -> int:
    from epochstore._cli_options import parse_storage_options
    from epochstore.bench.compare import compare, parse_chunking, parse_codec, sample_run
    from epochstore.bench.formats import codec_label
    from epochstore.bench.recommend import format_table, recommend

    codecs = [parse_codec(c) for c in args.codecs.split(",")]
    chunkings = [parse_chunking(c) for c in args.chunks.split(",")]
    samples = sample_run(
        args.run,
        epochs=args.epochs,
        analyzers=args.analyzers.split(",") if args.analyzers else None,
        storage_options=parse_storage_options(args.storage_options),
    )
    workdir = Path(args.workdir) if args.workdir else None
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    report: list[dict[str, Any]] = []
    started = time.perf_counter()
    for sample in samples:
        raw = sum(a.nbytes for a in sample.arrays.values())
        per_epoch = raw // max(len(sample.arrays), 1)
        if per_epoch < args.min_bytes:
            print(
                f"\n{sample.analyzer}: skipped, its largest field ({sample.field}) is "
                f"{per_epoch:,} bytes per epoch (< --min-bytes {args.min_bytes:,}): "
                "per-read overhead, not the codec, decides its speed; keep the default"
            )
            continue
        print(
            f"\n{sample.analyzer}.{sample.field}  {sample.dtype} "
            f"({', '.join(f'{d}={s}' for d, s in zip(sample.dims, sample.shape, strict=True))})"
            f"  epochs {sample.epochs}  ({raw / 1e6:.1f} MB raw)",
            flush=True,
        )
        rows = compare(
            sample.arrays,
            workdir if workdir is not None else Path(_tempdir()),
            codecs=codecs,
            chunkings=chunkings,
            dims=sample.dims,
            rounds=args.rounds,
            progress=(lambda line: print(f"  {line}", file=sys.stderr)) if args.verbose else None,
        )
        rec = recommend(
            rows,
            npz_speedup=args.npz_speedup,
            row_tolerance=args.row_tolerance,
            full_tolerance=args.full_tolerance,
        )
        current = next(
            (
                r.name
                for r in rows
                if r.codec == sample.current_codec
                and sample.current_chunks
                and r.rows_per_chunk == sample.current_chunks[0]
            ),
            None,
        )
        print(format_table(rows, rec, current=current))
        from epochstore.store.codecs import Codec

        now = codec_label(Codec.from_dict(sample.current_codec))
        rows_now = sample.current_chunks[0] if sample.current_chunks else 1
        print(f"  current: {now}, {rows_now} row(s) per chunk (marked =, if measured)")
        print(f"  recommended (*): {rec.row.label}")
        print(f"    rule: {rec.reason}")
        print(f"    use:  {rec.code(sample.field, sample.shape)}")
        report.append(
            {
                "analyzer": sample.analyzer,
                "field": sample.field,
                "shape": list(sample.shape),
                "dtype": sample.dtype,
                "epochs": sample.epochs,
                "rows": [r.to_dict() for r in rows],
                "recommendation": rec.row.name,
                "reason": rec.reason,
            }
        )
    print(
        "\nTimes are medians, warm page cache; 'full' reads a whole epoch, 'row' one row of "
        "the leading axis of one epoch, 'across' that row in every sampled epoch. "
        f"({time.perf_counter() - started:.0f} s)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str) + "\n")
    return 0


def _tempdir() -> str:
    import tempfile

    return tempfile.gettempdir()


def add_parser(sub: Any) -> None:
    """Add the ``bench`` command to the ``epochstore`` parser.

    Parameters
    ----------
    sub
        The subparsers object of the ``epochstore`` parser.
    """
    from epochstore.bench.defaults import DEFAULT_CHUNKINGS, DEFAULT_CODECS

    p = sub.add_parser(
        "bench",
        help="compare codecs and chunkings on a sample of a run's epochs and recommend one",
        description=(
            "Copy up to --epochs epochs of the largest field of each analyzer into temporary "
            "stores, one per codec and chunking (plus raw .npy and per-epoch .npz), and time "
            "writes and reads (warm page cache, medians). Recommends the smallest variant "
            "whose whole-epoch read is at least --npz-speedup times faster than per-epoch "
            ".npz and whose one-row read is within --row-tolerance of the fastest."
        ),
    )
    p.add_argument("run", help="run directory or URL")
    p.add_argument("--epochs", type=int, default=5, help="epochs sampled per analyzer (default 5)")
    p.add_argument("--analyzers", help="comma-separated analyzer names (default: all)")
    p.add_argument(
        "--codecs",
        default=",".join(DEFAULT_CODECS),
        help="comma-separated codecs: none, default, <cname>-<level>[-<shuffle>] "
        "(default %(default)s)",
    )
    p.add_argument(
        "--chunks",
        default=",".join(DEFAULT_CHUNKINGS),
        help="comma-separated chunkings: default, whole, or rows per chunk (default %(default)s)",
    )
    p.add_argument("--rounds", type=int, default=3, help="interleaved read rounds (default 3)")
    p.add_argument(
        "--npz-speedup",
        type=float,
        default=2.0,
        help="whole-epoch read at least this many times faster than .npz (default 2)",
    )
    p.add_argument(
        "--row-tolerance",
        type=float,
        default=2.0,
        help="one-row read at most this times the fastest (default 2)",
    )
    p.add_argument(
        "--full-tolerance",
        type=float,
        default=1.5,
        help="without a .npz row: whole-epoch read at most this times the fastest",
    )
    p.add_argument(
        "--min-bytes",
        type=int,
        default=64 * 1024,
        help="skip analyzers whose largest field is smaller per epoch (default %(default)s)",
    )
    p.add_argument("--workdir", help="directory for the temporary copies (default: system temp)")
    p.add_argument("--storage-options", metavar="JSON", help="fsspec options for a URL run")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--verbose", action="store_true", help="print progress to stderr")
    p.set_defaults(func=_bench)
