"""Reaching a URL's storage: a failure to reach it is said once, naming the URL and what to check.

fsspec backends fail to connect in their own ways (botocore's ``EndpointConnectionError``, an
HTTP error, a ``TypeError`` for an option the filesystem does not take, ``PermissionError``
for refused credentials). :func:`reaching` turns all of them into one
:class:`~epochstore.errors.StorageUnreachableError` whose message names the location, the
cause, and the option to fix. A missing location (``FileNotFoundError``) is not a failure to
reach: the caller says what it expected there.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from epochstore.errors import EpochstoreError, StorageUnreachableError
from epochstore.location._paths import PathOrURL, is_url

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["reaching"]

#: What ``--storage-options`` looks like for an S3-compatible server (MinIO, moto, ...).
_EXAMPLE = ('\'{"client_kwargs": {"endpoint_url": "http://host:9000"}, '
            '"key": "...", "secret": "..."}\'')


@contextlib.contextmanager
def reaching(location: PathOrURL) -> Iterator[None]:
    """Run the block; a URL that cannot be reached raises a :class:`StorageUnreachableError`.

    Local paths, ``FileNotFoundError`` and epochstore's own errors pass through unchanged.

    Raises
    ------
    StorageUnreachableError
        If the block fails in any other way for a URL; chained to the original error.
    """
    text = os.fspath(location)
    try:
        yield
    except (FileNotFoundError, EpochstoreError):
        raise
    except Exception as exc:  # each fsspec backend has its own connection errors
        if not is_url(text):
            raise
        raise StorageUnreachableError(
            f"cannot reach {text} ({type(exc).__name__}: {exc}); check the URL and the storage "
            f"options (--storage-options): the endpoint, credentials and option names, e.g. "
            f"{_EXAMPLE} for an S3-compatible server"
        ) from exc
