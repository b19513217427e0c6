"""Provenance comes from git itself: the commit of HEAD and whether tracked files changed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from epochstore.provenance import git_info


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo, check=True, capture_output=True, text=True,
    ).stdout.strip()


def test_git_info_reads_head_and_dirty_state(tmp_path: Path) -> None:
    clean, dirty = tmp_path / "clean", tmp_path / "dirty"
    for repo in (clean, dirty):
        repo.mkdir()
        _git(repo, "init", "-q")
        (repo / "train.py").write_text("print('hi')\n")
        _git(repo, "add", "train.py")
        _git(repo, "commit", "-q", "-m", "first")
    (dirty / "train.py").write_text("print('changed')\n")
    (clean / "sub").mkdir()

    info = git_info(clean / "sub")  # any directory inside the checkout
    assert info.commit == _git(clean, "rev-parse", "HEAD")
    assert info.dirty is False
    assert git_info(dirty).dirty is True


def test_git_info_outside_a_checkout_is_none(tmp_path: Path) -> None:
    info = git_info(tmp_path)
    assert (info.commit, info.dirty) == (None, None)
