"""Command-line option parsing shared by the ``epochstore`` subcommands (imports nothing heavy)."""

from __future__ import annotations

import json
from typing import Any

from epochstore.errors import EpochstoreError

__all__ = ["parse_storage_options"]


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
