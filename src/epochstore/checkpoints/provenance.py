"""Where a checkpoint came from: time, code version (git) and library versions.

The git commit is read from the ``.git`` directory of the current working directory's checkout
(no subprocess); whether the tree is dirty needs ``git status``, run read-only
(``--no-optional-locks``) once per process and checkout, because the code a process runs is
the code it started with. Both are ``None`` outside a git checkout or without ``git``.
"""

from __future__ import annotations

import datetime as dt
import functools
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import torch

from epochstore._version import __version__

__all__ = ["GitInfo", "collect_metadata", "git_info", "utc_now"]

_HEX_SHA: Final = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
_GIT_TIMEOUT: Final = 10.0


@dataclass(frozen=True)
class GitInfo:
    """The commit a checkout is at, and whether tracked files differ from it."""

    commit: str | None
    dirty: bool | None


def utc_now() -> str:
    """Return the current time in UTC as ISO-8601 (``2025-01-31T12:00:00.000000+00:00``)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _find_checkout(start: Path) -> tuple[Path, Path] | None:
    """Return (work tree, git dir) of the checkout holding ``start``, or ``None``."""
    for directory in (start, *start.parents):
        dot_git = directory / ".git"
        if dot_git.is_dir():
            return directory, dot_git
        if dot_git.is_file():  # worktrees and submodules: "gitdir: <path>"
            text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
            if text.startswith("gitdir:"):
                return directory, (directory / text[len("gitdir:") :].strip()).resolve()
            return None
    return None


def _resolve_head(git_dir: Path) -> str | None:
    try:
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if _HEX_SHA.fullmatch(head):
        return head
    if not head.startswith("ref:"):
        return None
    ref = head[len("ref:") :].strip()
    common = git_dir
    commondir = git_dir / "commondir"
    if commondir.is_file():
        common = (git_dir / commondir.read_text(encoding="utf-8").strip()).resolve()
    for base in (git_dir, common):
        try:
            value = (base / ref).read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if _HEX_SHA.fullmatch(value):
            return value
    try:
        packed = (common / "packed-refs").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in packed.splitlines():
        sha, _, name = line.partition(" ")
        if name.strip() == ref and _HEX_SHA.fullmatch(sha):
            return sha
    return None


def _is_dirty(work_tree: Path) -> bool | None:
    try:
        result = subprocess.run(
            ["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
            cwd=work_tree,
            capture_output=True,
            timeout=_GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return bool(result.stdout.strip())


@functools.lru_cache(maxsize=16)
def _git_info(start: Path) -> GitInfo:
    found = _find_checkout(start)
    if found is None:
        return GitInfo(commit=None, dirty=None)
    work_tree, git_dir = found
    commit = _resolve_head(git_dir)
    return GitInfo(commit=commit, dirty=_is_dirty(work_tree) if commit else None)


def git_info(start: Path | None = None) -> GitInfo:
    """Return the git commit and dirty flag of the checkout holding ``start`` (default: cwd)."""
    return _git_info((start or Path.cwd()).resolve())


def collect_metadata() -> dict[str, Any]:
    """Return the provenance recorded with every checkpoint and promotion."""
    import safetensors

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
