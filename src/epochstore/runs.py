"""Finding runs: the one definition of "a run" that ``ls``, ``analyze``, ``serve`` and ``report``
share.

A run is a location (local directory or fsspec URL) holding ``variant.json`` (written by a
family's training) **or** an ``artifacts/`` store written by :class:`~epochstore.ArtifactStore`
alone (a run of your own, no family); a *root* holds runs at any depth up to
:data:`MAX_DEPTH` (e.g. ``ROOT/<family>/<variant>``). Finding runs costs one listing per
directory visited; :func:`find_runs` also reads each ``variant.json``. No model family is
imported (``epochstore ls`` stays fast).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from epochstore.errors import EpochstoreError, RunNotFoundError
from epochstore.location import is_url, join, open_filesystem, reaching
from epochstore.run import ARTIFACTS_DIR, VARIANT_FILE, read_variant

__all__ = ["MAX_DEPTH", "RunEntry", "find_runs", "is_run", "require_runs", "run_locations"]

#: How deep below a root runs are looked for.
MAX_DEPTH: Final = 4
_MARKERS: Final = frozenset({VARIANT_FILE, ARTIFACTS_DIR})


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


def _entries(location: str, storage_options: Mapping[str, Any] | None) -> dict[str, bool]:
    """Map each entry name of ``location`` to whether it is a directory (one listing)."""
    fs, path = open_filesystem(location, storage_options if is_url(location) else None)
    return fs.list_entries(path)


def is_run(
    location: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None
) -> bool:
    """Return whether ``location`` is a run (holds ``variant.json`` or ``artifacts/``).

    Raises
    ------
    StorageUnreachableError
        If ``location`` is a URL that cannot be reached (see :func:`epochstore.location.reaching`).
    """
    with reaching(location):
        return bool(_MARKERS & set(_entries(os.fspath(location), storage_options)))


def run_locations(
    root: str | os.PathLike[str],
    storage_options: Mapping[str, Any] | None = None,
    *,
    depth: int = MAX_DEPTH,
) -> list[str]:
    """Return the run locations at or under ``root``, sorted; ``[root]`` if it is itself a run.

    Parameters
    ----------
    root
        A local directory or an fsspec URL (``"s3://bucket/runs"``).
    storage_options
        fsspec options for a URL.
    depth
        How many directory levels below ``root`` to look.

    Raises
    ------
    StorageUnreachableError
        If ``root`` is a URL that cannot be reached (see :func:`epochstore.location.reaching`).
    """
    with reaching(root):
        return _walk(os.fspath(root), storage_options, depth)


def _walk(location: str, storage_options: Mapping[str, Any] | None, depth: int) -> list[str]:
    entries = _entries(location, storage_options)
    if _MARKERS & set(entries):
        return [location]
    if depth == 0:
        return []
    runs: list[str] = []
    for name, is_dir in sorted(entries.items()):
        if is_dir and not name.startswith("."):
            runs += _walk(join(location, name), storage_options, depth - 1)
    return runs


def _relative(location: str, root: str) -> str:
    if "://" in root:
        return location[len(root):].strip("/") or "."
    return os.path.relpath(location, root)


def _entry(
    location: str, root: str, storage_options: Mapping[str, Any] | None
) -> RunEntry:
    name = _relative(location, root)
    if VARIANT_FILE not in _entries(location, storage_options):
        return RunEntry(path=location, name=name, family=None)
    try:
        variant = read_variant(location, storage_options=storage_options)
    except (OSError, EpochstoreError):
        return RunEntry(path=location, name=name, family="?", params="unreadable variant.json")
    shown = ", ".join(f"{k}={variant.params[k]}" for k in _SHOWN_PARAMS if k in variant.params)
    return RunEntry(path=location, name=name, family=variant.family, params=shown)


def find_runs(
    root: str | os.PathLike[str],
    storage_options: Mapping[str, Any] | None = None,
    *,
    depth: int = MAX_DEPTH,
) -> list[RunEntry]:
    """Return every run under ``root`` (``root`` itself if it is one), sorted by family, name.

    Hidden directories are not searched, nor a run's own subdirectories.

    Parameters
    ----------
    root
        The directory or URL to search.
    storage_options
        fsspec options for a URL.
    depth
        How many directory levels below ``root`` to search.

    Raises
    ------
    StorageUnreachableError
        If ``root`` is a URL that cannot be reached (see :func:`epochstore.location.reaching`).

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from epochstore import ArtifactStore
    >>> root = tempfile.mkdtemp()
    >>> ArtifactStore(f"{root}/mine").write_epoch("probe", 0, {"x": np.zeros(3)})
    >>> [(e.name, e.family) for e in find_runs(root)]
    [('mine', None)]
    """
    base = os.fspath(root)
    with reaching(base):
        found = [_entry(loc, base, storage_options)
                 for loc in _walk(base, storage_options, depth)]
    return sorted(found, key=lambda e: (e.family or "", e.name))


def require_runs(
    root: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None
) -> list[str]:
    """Return :func:`run_locations` of ``root``, or say that it holds no run and what to do.

    For the commands that need runs to show (``serve`` of a URL, ``report``).

    Raises
    ------
    RunNotFoundError
        If ``root`` is no run and holds none (for a URL: also if nothing is under it).
    StorageUnreachableError
        If ``root`` is a URL that cannot be reached.
    """
    location = os.fspath(root)
    found = run_locations(location, storage_options)
    if found:
        return found
    markers = f"{VARIANT_FILE} or an {ARTIFACTS_DIR}/ store"
    if is_url(location):
        raise RunNotFoundError(
            f"{location} is not a run and holds none: nothing under it has {markers}; check "
            f"the bucket and the prefix (`epochstore ls URL --storage-options JSON` lists the "
            "runs under a URL), or train into it first"
        )
    raise RunNotFoundError(
        f"{location} is not a run and holds none: no directory under it has {markers}; give "
        "a run or a root of runs (`epochstore ls` lists them)"
    )
