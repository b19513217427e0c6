"""``epochstore report RUN -o report.html``: the static HTML report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]


def _report(args: argparse.Namespace) -> int:
    from epochstore.viz.report import write_report

    if not Path(args.run).is_dir():
        raise FileNotFoundError(f"run directory {args.run} does not exist")
    path = write_report(args.run, args.output, epoch=args.epoch, neuron=args.neuron)
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
    parser.add_argument("--neuron", type=int, default=0, help="neuron of the neuron figures")
    parser.set_defaults(func=_report)
    return parser
