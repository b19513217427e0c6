"""``epochstore verify RUN`` and ``epochstore repair RUN``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parser"]


def _verify(args: argparse.Namespace) -> int:
    from epochstore.reliability.verify import verify_run

    result = verify_run(args.run)
    print(result.describe())
    return 0 if result.ok else 1


def _repair(args: argparse.Namespace) -> int:
    from epochstore.reliability.verify import repair_run

    result = repair_run(
        args.run, dry_run=args.dry_run, log=lambda line: print(line, file=sys.stderr)
    )
    print(result.describe())
    if result.checkpoint_problems:
        print(
            "damaged checkpoints are never deleted: restore them from a backup or retrain "
            "those epochs; the pipeline skips them meanwhile",
            file=sys.stderr,
        )
    return 0


def add_parser(sub: Any) -> None:
    """Add the ``verify`` and ``repair`` commands to the ``epochstore`` parser."""
    p = sub.add_parser(
        "verify", help="read every chunk and checkpoint of a run and report damage"
    )
    p.add_argument("run")
    p.set_defaults(func=_verify)
    p = sub.add_parser(
        "repair", help="delete damaged artifact epochs (and leftovers) so analyze recomputes them"
    )
    p.add_argument("run")
    p.add_argument("--dry-run", action="store_true", help="only report what would be deleted")
    p.set_defaults(func=_repair)
