"""fsspec options for run locations that several processes write to (one place for both layers).

fsspec filesystems cache directory listings (and the sizes and ETags in them) for the life of the
process. A run location is written by other processes (trainer, analysis workers), so a cached
listing goes stale: a loader would not see new epochs, and s3fs would open a checkpoint with the
ETag of an older object and fail with ``FileExpired``. Every URL is therefore opened with
``use_listings_cache=False`` unless the caller says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["url_storage_options"]

_DEFAULTS: Mapping[str, Any] = {"use_listings_cache": False}

#: For zarr stores on S3: s3fs sends a HEAD before every whole-object GET unless
#: ``max_concurrency`` is 1 (it checks whether to split large downloads), doubling the requests
#: of every metadata read. Objects over 50 MB are then fetched in one stream.
_SINGLE_REQUEST_GETS: Mapping[str, Mapping[str, Any]] = {
    "s3": {"max_concurrency": 1},
    "s3a": {"max_concurrency": 1},
}


def url_storage_options(
    url: str, storage_options: Mapping[str, Any] | None, *, single_request_gets: bool = False
) -> dict[str, Any]:
    """Return ``storage_options`` completed with epochstore's defaults for ``url``.

    Parameters
    ----------
    url
        An fsspec URL (``"s3://bucket/run"``).
    storage_options
        The caller's options; they win over every default.
    single_request_gets
        Also make whole-object reads one request on S3 (for zarr stores, whose reads are small
        metadata documents and shards).
    """
    protocol = url.split("://", 1)[0].lower()
    extra = _SINGLE_REQUEST_GETS.get(protocol, {}) if single_request_gets else {}
    return {**_DEFAULTS, **extra, **dict(storage_options or {})}
