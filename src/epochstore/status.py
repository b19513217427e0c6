"""Whether a run's training finished: ``<run>/training.json``, written when training returns.

Followers (``epochstore analyze --follow``) stop following a run once it is finished and fully
analysed. A run trained outside ``epochstore train`` / :func:`epochstore.sweep` has no such
file; followers then stop after an idle timeout.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["TRAINING_FILE", "is_finished", "mark_finished"]

TRAINING_FILE: Final = "training.json"


def mark_finished(
    run: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None
) -> None:
    """Record, atomically, that training of ``run`` finished (every scheduled epoch saved)."""
    from epochstore.location import open_filesystem

    fs, root = open_filesystem(run, storage_options)
    document = {"status": "finished", "finished_at": time.time()}
    fs.write_bytes(fs.join(root, TRAINING_FILE), json.dumps(document).encode())


def is_finished(
    run: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None
) -> bool:
    """Return whether ``run``'s training recorded that it finished."""
    from epochstore.location import open_filesystem

    fs, root = open_filesystem(run, storage_options)
    try:
        data = json.loads(fs.read_bytes(fs.join(root, TRAINING_FILE)))
    except FileNotFoundError:
        return False
    except ValueError:  # a damaged file: follow until the idle timeout, as if absent
        return False
    return isinstance(data, dict) and data.get("status") == "finished"
