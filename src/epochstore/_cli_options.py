"""Command-line option parsing shared by the ``epochstore`` subcommands (imports nothing heavy)."""

from __future__ import annotations

import json
from typing import Any

from epochstore.errors import EpochstoreError

__all__ = ["STORAGE_OPTIONS_HELP", "options_for", "parse_storage_options"]

#: The help of ``--storage-options``.
STORAGE_OPTIONS_HELP = ("fsspec options for a URL (a JSON object), e.g. "
                        "'{\"client_kwargs\": {\"endpoint_url\": \"http://host:9000\"}}'")


def parse_storage_options(text: str | None) -> dict[str, Any] | None:
    """Parse ``--storage-options`` (a JSON object of fsspec options); ``None`` if not given.

    Raises
    ------
    EpochstoreError
        If the text is not a JSON object; the message shows the expected form.
    """
    if not text:
        return None
    try:
        options = json.loads(text)
    except ValueError as exc:
        raise EpochstoreError(
            f"--storage-options must be a JSON object, e.g. '{{\"anon\": true}}': {exc}"
        ) from None
    if not isinstance(options, dict):
        raise EpochstoreError("--storage-options must be a JSON object, e.g. '{\"anon\": true}'")
    return options


def options_for(location: str, text: str | None) -> dict[str, Any] | None:
    """Parse ``--storage-options`` given with ``location``; refused for a local path.

    Raises
    ------
    EpochstoreError
        If the text is not a JSON object, or options are given for a local path.
    """
    from epochstore.location import is_url

    options = parse_storage_options(text)
    if options and not is_url(location):
        raise EpochstoreError(
            f"--storage-options are for URLs (e.g. s3://bucket/runs), not for the local path "
            f"{location}; drop them, or give the URL"
        )
    return options
