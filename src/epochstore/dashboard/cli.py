"""``epochstore serve ROOT``: the dashboard on a local port."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from epochstore.errors import EpochstoreError

__all__ = ["add_parser"]


def _serve(args: argparse.Namespace) -> int:
    from epochstore.dashboard.app import create_app

    root = Path(args.root)
    if not root.is_dir():
        raise EpochstoreError(f"{root} is not a directory; give the directory holding your runs")
    app = create_app(root, refresh_seconds=args.refresh)
    url = f"http://{args.host}:{args.port}/"
    print(f"epochstore dashboard for {root.resolve()} at {url}  (Ctrl+C to stop)", flush=True)
    app.run(host=args.host, port=args.port, debug=False)
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` command to the ``epochstore`` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="serve the web dashboard of the runs under a directory"
    )
    parser.add_argument("root", nargs="?", default="runs",
                        help="directory holding runs (directories with variant.json or an "
                        "artifacts/ store)")
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--refresh", type=float, default=3.0, metavar="SECONDS",
                        help="how often the page re-lists runs and epochs (metadata only)")
    parser.set_defaults(func=_serve)
    return parser
