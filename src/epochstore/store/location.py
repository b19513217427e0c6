"""The zarr view of a run location: a local directory, an fsspec URL, or a zarr ``Store``.

:func:`open_location` turns what the user passed into a :class:`Location`: the zarr store of the
run, the key prefix of the artifact root inside it, and (for a local directory) its filesystem
path, which decides the commit strategy (rename locally, metadata-last elsewhere). Paths, URLs
and fsspec defaults are :mod:`epochstore.location`'s; on ``s3://`` whole-object reads are also
made single requests (``max_concurrency=1``, see
:func:`~epochstore.location.storage_options_for`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zarr.abc.store import Store
from zarr.storage import FsspecStore, LocalStore

from epochstore.errors import InvalidLocationError, RunNotFoundError
from epochstore.location import is_url, local_path, storage_options_for
from epochstore.run import ARTIFACTS_DIR

__all__ = ["Location", "LocationLike", "fsspec_options", "open_location"]

LocationLike = str | os.PathLike[str] | Store


def fsspec_options(url: str, storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return ``storage_options`` completed with epochstore's defaults for a store at ``url``.

    Parameters
    ----------
    url
        An fsspec URL (``"s3://bucket/run"``).
    storage_options
        The user's options; they win over the defaults (see the module docstring).
    """
    return storage_options_for(url, storage_options, single_request_gets=True)


@dataclass(frozen=True)
class Location:
    """The artifact root of a run.

    Attributes
    ----------
    store
        The zarr store of the run location.
    prefix
        Key of the artifact root group inside ``store`` (``"artifacts"`` by default; ``""`` when
        the store itself is the root).
    local_root
        Filesystem directory of the artifact root when the store is a local directory, else
        ``None``.
    display
        How to name this store in messages.
    """

    store: Store
    prefix: str
    local_root: Path | None
    display: str

    def key(self, *parts: str) -> str:
        """Return the store key of ``parts`` below the artifact root."""
        return "/".join(p for p in (self.prefix, *parts) if p)

    def local_path(self, *parts: str) -> Path:
        """Return the filesystem path of ``parts`` below the artifact root (local stores only)."""
        if self.local_root is None:  # pragma: no cover - guarded by callers
            raise RuntimeError(f"{self.display} is not a local directory")
        return self.local_root.joinpath(*parts)


def open_location(
    location: LocationLike,
    *,
    path: str = ARTIFACTS_DIR,
    storage_options: Mapping[str, Any] | None = None,
    read_only: bool = False,
) -> Location:
    """Open the artifact root of a run.

    Parameters
    ----------
    location
        A run directory (``str`` or ``os.PathLike``), an fsspec URL (``"s3://bucket/run"``,
        ``"memory://run"``, ``"file:///abs/run"``) or a zarr ``Store`` whose root is the run.
    path
        Where the artifact root lives below the run (``"artifacts"``); ``""`` uses the run
        location itself as the Zarr root.
    storage_options
        Passed to fsspec for URLs (credentials, endpoint, ...), over the defaults of
        :func:`fsspec_options`.
    read_only
        Open the underlying store read-only: writes through it are refused by zarr itself.
    """
    if not isinstance(path, str) or path.startswith("/") or any(
        part in ("..", ".") or part.startswith(".") for part in path.split("/") if part
    ):
        raise InvalidLocationError(
            f"artifact path {path!r} must be a relative path inside the run without '..', "
            "'.' or hidden components (default 'artifacts')"
        )
    path = path.strip("/")
    if isinstance(location, Store):
        if storage_options:
            raise ValueError(
                "storage_options apply to URLs only, not to an opened zarr Store; set them "
                "when you open the Store, or pass its URL instead"
            )
        store = location.with_read_only(read_only) if read_only != location.read_only else location
        return Location(store=store, prefix=path, local_root=None, display=repr(location))
    text = os.fspath(location)
    if is_url(text):
        try:
            fs_store = FsspecStore.from_url(
                text, storage_options=fsspec_options(text, storage_options), read_only=read_only
            )
        except TypeError:  # a filesystem that takes none of the default options
            fs_store = FsspecStore.from_url(
                text, storage_options=dict(storage_options or {}), read_only=read_only
            )
        return Location(store=fs_store, prefix=path, local_root=None, display=text)
    if storage_options:
        raise ValueError(
            f"storage_options apply to URLs only, not to the local path {text!r}; drop them, "
            "or pass a URL such as 's3://bucket/run'"
        )
    root = local_path(text)
    if read_only and not root.is_dir():
        raise RunNotFoundError(
            f"run directory {root} does not exist; check the path (a loader never creates it)"
        )
    local = LocalStore(root, read_only=read_only)
    return Location(
        store=local,
        prefix=path,
        local_root=root / path if path else root,
        display=str(root / path) if path else str(root),
    )
