"""Finding runs under a root directory, from their ``variant.json`` only."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from epochstore.errors import EpochstoreError
from epochstore.run import VARIANT_FILE, read_variant

__all__ = ["RunEntry", "find_runs"]


@dataclass(frozen=True)
class RunEntry:
    """One run (variant) found under the dashboard's root.

    Attributes
    ----------
    path
        The run directory.
    name
        The run's path relative to the root (``"."`` for the root itself).
    family
        The family in ``variant.json``, or ``"?"`` if the file is unreadable.
    params
        A short ``key=value`` summary of notable parameters (``p``, seeds).
    """

    path: str
    name: str
    family: str
    params: str = ""

    @property
    def label(self) -> str:
        """What the picker shows: ``family / name  (params)``."""
        extra = f"  ({self.params})" if self.params else ""
        return f"{self.family} / {self.name}{extra}"


_SHOWN_PARAMS = ("p", "d_mlp", "model_seed", "data_seed", "seed")


def _entry(run: Path, root: Path) -> RunEntry:
    name = os.path.relpath(run, root)
    try:
        variant = read_variant(run)
    except (OSError, EpochstoreError):
        return RunEntry(path=str(run), name=name, family="?", params="unreadable variant.json")
    shown = ", ".join(f"{k}={variant.params[k]}" for k in _SHOWN_PARAMS if k in variant.params)
    return RunEntry(path=str(run), name=name, family=variant.family, params=shown)


def find_runs(root: str | os.PathLike[str], *, depth: int = 4) -> list[RunEntry]:
    """Return every run (a directory with ``variant.json``) under ``root``, sorted.

    Reads each ``variant.json`` and nothing else. Hidden directories and ``artifacts`` /
    ``checkpoints`` directories are not searched; a run's own subdirectories are not either.

    Parameters
    ----------
    root
        The directory to search.
    depth
        How many directory levels below ``root`` to search.
    """
    base = Path(root)
    found: list[RunEntry] = []

    def walk(path: Path, level: int) -> None:
        if (path / VARIANT_FILE).is_file():
            found.append(_entry(path, base))
            return
        if level == 0:
            return
        try:
            children = sorted(p for p in path.iterdir() if p.is_dir())
        except OSError:
            return
        for child in children:
            if not child.name.startswith("."):
                walk(child, level - 1)

    if base.is_dir():
        walk(base, depth)
    return sorted(found, key=lambda e: (e.family, e.name))
