"""Locations as text: a local path or an fsspec URL, joined and normalised one way.

A location is *local* when it is a plain path or a ``file://`` URL, and an fsspec URL otherwise
(``s3://bucket/run``, ``memory://run``). Local paths are normalised with
:meth:`pathlib.Path.absolute`, not :meth:`~pathlib.Path.resolve`: the path stays the one the
user named (a symlinked ``runs/p113`` is still ``runs/p113`` in every message and record, and
the parent of a symlinked ``checkpoints/`` is still the run directory), and normalising never
touches the filesystem, so it works the same for a directory that does not exist yet.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

__all__ = ["PathOrURL", "is_url", "join", "local_path", "storage_options_for"]

#: What every function that takes a location accepts.
PathOrURL = str | os.PathLike[str]

_FILE_SCHEME: Final = "file://"

#: fsspec filesystems cache directory listings (with sizes and ETags) for the life of the
#: process. A run is written by other processes (trainer, analysis workers), so a cached listing
#: goes stale: a loader would not see new epochs, and s3fs would open a checkpoint with an older
#: object's ETag and fail with ``FileExpired``. Every URL lists afresh unless the caller says so.
_DEFAULTS: Final[Mapping[str, Any]] = {"use_listings_cache": False}

#: For zarr stores on S3: s3fs sends a HEAD before every whole-object GET unless
#: ``max_concurrency`` is 1 (it checks whether to split large downloads), doubling the requests
#: of every metadata read. Objects over 50 MB are then fetched in one stream.
_SINGLE_REQUEST_GETS: Final[Mapping[str, Mapping[str, Any]]] = {
    "s3": {"max_concurrency": 1},
    "s3a": {"max_concurrency": 1},
}


def is_url(location: PathOrURL) -> bool:
    """Return whether ``location`` goes through fsspec (a URL other than ``file://``)."""
    text = os.fspath(location)
    return "://" in text and not text.startswith(_FILE_SCHEME)


def local_path(location: PathOrURL) -> Path:
    """Return the absolute path of a local location (plain path or ``file://`` URL).

    ``~`` is expanded; symlinks and ``..`` are kept (see the module docstring for why).
    """
    return Path(os.fspath(location).removeprefix(_FILE_SCHEME)).expanduser().absolute()


def join(location: PathOrURL, *parts: str) -> str:
    """Join path parts onto a location, local path or URL alike."""
    base = os.fspath(location)
    if is_url(base):
        return "/".join([base.rstrip("/"), *(part.strip("/") for part in parts)])
    return os.fspath(Path(base, *parts))


def storage_options_for(
    url: str, storage_options: Mapping[str, Any] | None, *, single_request_gets: bool = False
) -> dict[str, Any]:
    """Return ``storage_options`` completed with epochstore's fsspec defaults for ``url``.

    Parameters
    ----------
    url
        An fsspec URL (``"s3://bucket/run"``).
    storage_options
        The caller's options (credentials, endpoint, ...); they win over every default.
    single_request_gets
        Also make whole-object reads one request on S3 (for zarr stores, whose reads are small
        metadata documents and shards).
    """
    protocol = url.split("://", 1)[0].lower()
    extra = _SINGLE_REQUEST_GETS.get(protocol, {}) if single_request_gets else {}
    return {**_DEFAULTS, **extra, **dict(storage_options or {})}
