"""``epochstore report RUN -o report.html``: the static HTML report of every view of a run;
``epochstore report ROOT -o page.html``: the variant table and peer comparisons of a root."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from epochstore._cli_options import STORAGE_OPTIONS_HELP, options_for
from epochstore.errors import EpochstoreError

__all__ = ["add_parser"]


def _selection(pairs: list[str]) -> dict[str, int]:
    chosen = {}
    for pair in pairs:
        dim, sep, index = pair.partition("=")
        if not sep or not dim or not index.lstrip("-").isdigit():
            raise EpochstoreError(f"--pick takes DIM=INDEX (e.g. --pick head=2), got {pair!r}")
        chosen[dim] = int(index)
    return chosen


def _report(args: argparse.Namespace) -> int:
    from epochstore.location import is_url
    from epochstore.runs import is_run, require_runs
    from epochstore.viz.report import write_report

    storage_options = options_for(args.run, args.storage_options)
    if not is_url(args.run) and not Path(args.run).is_dir():
        raise FileNotFoundError(f"run directory {args.run} does not exist")
    if not is_run(args.run, storage_options):
        require_runs(args.run, storage_options)
        from epochstore.viz.root_report import write_root_report

        path = write_root_report(args.run, args.output, storage_options=storage_options)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, self-contained)",
              file=sys.stderr)
        return 0
    path = write_report(args.run, args.output, epoch=args.epoch, neuron=args.neuron,
                        selection=_selection(args.pick), storage_options=storage_options)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, self-contained)", file=sys.stderr)
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``report`` command to the ``epochstore`` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report", help="write one self-contained HTML page of a run's main figures, or of the "
        "variant table and peer comparisons of a root"
    )
    parser.add_argument("run", help="run directory, or a root holding runs; or a URL of either "
                        "(s3://bucket/runs)")
    parser.add_argument("-o", "--output", default="report.html", help="HTML file to write")
    parser.add_argument("--epoch", type=int, default=None,
                        help="epoch of the per-epoch figures (default: the last analysed)")
    parser.add_argument("--neuron", type=int, default=0,
                        help="the index picked along a 'neuron' dim (same as --pick neuron=N)")
    parser.add_argument("--pick", action="append", default=[], metavar="DIM=INDEX",
                        help="the slice shown of fields with 3 or more dims, along DIM "
                        "(default: the first)")
    parser.add_argument("--storage-options", metavar="JSON", help=STORAGE_OPTIONS_HELP)
    parser.set_defaults(func=_report)
    return parser
