"""Run discovery: which locations under a root are runs (local directories or fsspec URLs).

A *run* is a location holding ``variant.json`` or an ``artifacts/`` store; a *root* holds runs
(at any depth up to :data:`MAX_DEPTH`, e.g. ``ROOT/<family>/<variant>``). One listing per
directory visited; nothing inside a run is read.

This is a stop-gap until the one run-discovery module of the views work lands; swap
:func:`find_runs` and :func:`is_run` for it then (they are the only entry points).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from epochstore.run import ARTIFACTS_DIR, VARIANT_FILE, join

__all__ = ["MAX_DEPTH", "find_runs", "is_run"]

#: How deep below a root runs are looked for.
MAX_DEPTH: Final = 4
_MARKERS: Final = frozenset({VARIANT_FILE, ARTIFACTS_DIR})


def _entries(location: str, storage_options: Mapping[str, Any] | None) -> dict[str, bool]:
    """Map each entry name of ``location`` to whether it is a directory (one listing)."""
    if "://" not in location or location.startswith("file://"):
        path = Path(location.removeprefix("file://")).expanduser()
        try:
            return {entry.name: entry.is_dir() for entry in os.scandir(path)}
        except (FileNotFoundError, NotADirectoryError):
            return {}
    import fsspec

    from epochstore._fsspec import url_storage_options

    fs, path = fsspec.core.url_to_fs(location, **url_storage_options(location, storage_options))
    try:
        listing = fs.ls(path, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return {
        str(item["name"]).rstrip("/").rsplit("/", 1)[-1]: item.get("type") == "directory"
        for item in listing
    }


def is_run(
    location: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None
) -> bool:
    """Return whether ``location`` is a run (holds ``variant.json`` or ``artifacts/``)."""
    return bool(_MARKERS & set(_entries(os.fspath(location), storage_options)))


def find_runs(
    root: str | os.PathLike[str],
    storage_options: Mapping[str, Any] | None = None,
    *,
    depth: int = MAX_DEPTH,
) -> list[str]:
    """Return the runs at or under ``root``, sorted; ``[root]`` if ``root`` is itself a run.

    Parameters
    ----------
    root
        A local directory or an fsspec URL (``"s3://bucket/runs"``).
    storage_options
        fsspec options for a URL.
    depth
        How many directory levels below ``root`` to look.
    """
    location = os.fspath(root)
    entries = _entries(location, storage_options)
    if _MARKERS & set(entries):
        return [location]
    if depth == 0:
        return []
    runs: list[str] = []
    for name, is_dir in sorted(entries.items()):
        if is_dir and not name.startswith("."):
            runs += find_runs(join(location, name), storage_options, depth=depth - 1)
    return runs
