"""Where a result came from: time, code version (git) and library versions.

Recorded with every checkpoint and every promotion.

The commit and whether tracked files differ from it come from ``git`` itself (``rev-parse
HEAD``, then ``status``, both read-only with ``--no-optional-locks``), run once per process and
directory, because the code a process runs is the code it started with. Both are ``None``
outside a git checkout or without ``git``.
"""

from __future__ import annotations

import datetime as dt
import functools
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from epochstore._version import __version__

__all__ = ["GitInfo", "collect_metadata", "git_info", "utc_now"]

_GIT_TIMEOUT: Final = 10.0


@dataclass(frozen=True)
class GitInfo:
    """The commit a checkout is at, and whether tracked files differ from it."""

    commit: str | None
    dirty: bool | None


def utc_now() -> str:
    """Return the current time in UTC as ISO-8601 (``2025-01-31T12:00:00.000000+00:00``)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _git(directory: Path, *args: str) -> str | None:
    """Return the stdout of a read-only git command in ``directory``, or ``None`` if it fails."""
    try:
        result = subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


@functools.lru_cache(maxsize=16)
def _git_info(start: Path) -> GitInfo:
    head = _git(start, "rev-parse", "--verify", "--quiet", "HEAD")
    if not head:
        return GitInfo(commit=None, dirty=None)
    status = _git(start, "status", "--porcelain", "--untracked-files=no")
    return GitInfo(commit=head.strip(), dirty=None if status is None else bool(status.strip()))


def git_info(start: Path | None = None) -> GitInfo:
    """Return the git commit and dirty flag of the checkout holding ``start`` (default: cwd)."""
    return _git_info((start or Path.cwd()).absolute())


def collect_metadata() -> dict[str, Any]:
    """Return the provenance recorded with every checkpoint and promotion."""
    import safetensors
    import torch

    git = git_info()
    return {
        "timestamp": utc_now(),
        "git_hash": git.commit,
        "git_dirty": git.dirty,
        "python_version": platform.python_version(),
        "torch_version": str(torch.__version__),
        "safetensors_version": str(getattr(safetensors, "__version__", "unknown")),
        "epochstore_version": __version__,
    }
