"""``epochstore serve ROOT``: the dashboard on a local port, of a directory or a URL's runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from epochstore._cli_options import STORAGE_OPTIONS_HELP, options_for
from epochstore.errors import EpochstoreError

__all__ = ["add_parser"]


def _serve(args: argparse.Namespace) -> int:
    from epochstore.dashboard.app import create_app
    from epochstore.location import is_url

    storage_options = options_for(args.root, args.storage_options)
    if is_url(args.root):
        from epochstore.runs import require_runs

        # A bucket has no directories: a prefix holding no run is a typo, or nothing trained
        # there yet. Say so now rather than serve an empty page.
        require_runs(args.root, storage_options)
        shown = args.root
    else:
        root = Path(args.root)
        if not root.is_dir():
            raise EpochstoreError(
                f"{root} is not a directory; give the directory holding your runs")
        shown = str(root.resolve())
    app = create_app(args.root, refresh_seconds=args.refresh, storage_options=storage_options)
    url = f"http://{args.host}:{args.port}/"
    print(f"epochstore dashboard for {shown} at {url}  (Ctrl+C to stop)", flush=True)
    app.run(host=args.host, port=args.port, debug=False)
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` command to the ``epochstore`` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="serve the web dashboard of the runs under a directory or URL"
    )
    parser.add_argument("root", nargs="?", default="runs",
                        help="directory or URL (s3://bucket/runs) holding runs (directories "
                        "with variant.json or an artifacts/ store)")
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--refresh", type=float, default=3.0, metavar="SECONDS",
                        help="how often the page re-lists runs and epochs (metadata only)")
    parser.add_argument("--storage-options", metavar="JSON", help=STORAGE_OPTIONS_HELP)
    parser.set_defaults(func=_serve)
    return parser
