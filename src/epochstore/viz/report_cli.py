"""``epochstore report RUN -o report.html``: the static HTML report of every view of a run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

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
    from epochstore.runs import is_run
    from epochstore.viz.report import write_report

    if not Path(args.run).is_dir():
        raise FileNotFoundError(f"run directory {args.run} does not exist")
    if not is_run(args.run):
        raise EpochstoreError(f"{args.run} is not a run: it has neither variant.json nor an "
                              "artifacts/ store; give a run directory (`epochstore ls` lists them)")
    path = write_report(args.run, args.output, epoch=args.epoch, neuron=args.neuron,
                        selection=_selection(args.pick))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, self-contained)", file=sys.stderr)
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``report`` command to the ``epochstore`` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report", help="write one self-contained HTML page of a run's main figures"
    )
    parser.add_argument("run", help="run directory")
    parser.add_argument("-o", "--output", default="report.html", help="HTML file to write")
    parser.add_argument("--epoch", type=int, default=None,
                        help="epoch of the per-epoch figures (default: the last analysed)")
    parser.add_argument("--neuron", type=int, default=0,
                        help="the index picked along a 'neuron' dim (same as --pick neuron=N)")
    parser.add_argument("--pick", action="append", default=[], metavar="DIM=INDEX",
                        help="the slice shown of fields with 3 or more dims, along DIM "
                        "(default: the first)")
    parser.set_defaults(func=_report)
    return parser
