"""Finding runs: the one definition of "a run" that ``epochstore ls``, ``serve`` and ``report``
share.

A run is a directory holding ``variant.json`` (written by a family's training) **or** an
``artifacts/`` store written by :class:`~epochstore.ArtifactStore` alone (a run of your own,
no family). Finding runs reads each ``variant.json`` and checks for ``artifacts/zarr.json``:
nothing else, and no model family is imported (``epochstore ls`` stays fast).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from epochstore.errors import EpochstoreError
from epochstore.run import ARTIFACTS_DIR, VARIANT_FILE, read_variant

__all__ = ["RunEntry", "find_runs", "is_run"]

#: Parameters a run's label shows when its variant has them.
_SHOWN_PARAMS = ("p", "d_mlp", "model_seed", "data_seed", "seed")


@dataclass(frozen=True)
class RunEntry:
    """One run found under a root.

    Attributes
    ----------
    path
        The run directory.
    name
        The run's path relative to the root (``"."`` for the root itself).
    family
        The family in ``variant.json``; ``None`` for a run without one (an artifacts store
        alone), ``"?"`` if the file is unreadable.
    params
        A short ``key=value`` summary of notable parameters (``p``, seeds), or what is wrong.
    """

    path: str
    name: str
    family: str | None
    params: str = ""

    @property
    def label(self) -> str:
        """What a picker shows: ``family / name  (params)``."""
        extra = f"  ({self.params})" if self.params else ""
        return f"{self.family or 'artifacts only'} / {self.name}{extra}"


def _has_store(path: Path) -> bool:
    return (path / ARTIFACTS_DIR / "zarr.json").is_file()


def is_run(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a run: a directory with ``variant.json`` or an ``artifacts/`` store."""
    run = Path(path)
    return (run / VARIANT_FILE).is_file() or _has_store(run)


def _entry(run: Path, root: Path) -> RunEntry:
    name = os.path.relpath(run, root)
    if not (run / VARIANT_FILE).is_file():
        return RunEntry(path=str(run), name=name, family=None)
    try:
        variant = read_variant(run)
    except (OSError, EpochstoreError):
        return RunEntry(path=str(run), name=name, family="?", params="unreadable variant.json")
    shown = ", ".join(f"{k}={variant.params[k]}" for k in _SHOWN_PARAMS if k in variant.params)
    return RunEntry(path=str(run), name=name, family=variant.family, params=shown)


def find_runs(root: str | os.PathLike[str], *, depth: int = 4) -> list[RunEntry]:
    """Return every run under ``root`` (``root`` itself if it is one), sorted by family, name.

    Hidden directories are not searched, nor a run's own subdirectories.

    Parameters
    ----------
    root
        The directory to search.
    depth
        How many directory levels below ``root`` to search.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from epochstore import ArtifactStore
    >>> root = tempfile.mkdtemp()
    >>> ArtifactStore(f"{root}/mine").write_epoch("probe", 0, {"x": np.zeros(3)})
    >>> [(e.name, e.family) for e in find_runs(root)]
    [('mine', None)]
    """
    base = Path(root)
    found: list[RunEntry] = []

    def walk(path: Path, level: int) -> None:
        if is_run(path):
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
    return sorted(found, key=lambda e: (e.family or "", e.name))
