"""The run directory: where a variant's checkpoints, artifacts and ``variant.json`` live.

A *variant* is one training run of a family with its own parameters; it owns one run directory::

    <run>/variant.json        {"family": ..., "params": {...}, "epochstore_version": ...}
    <run>/checkpoints/        CheckpointManager directory
    <run>/artifacts/          Zarr v3 root group (ArtifactStore)

The run may be a local path or an fsspec URL (``s3://bucket/runs/p113``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from epochstore._version import __version__
from epochstore.errors import InvalidVariantError
from epochstore.location import PathOrURL, join, open_filesystem
from epochstore.naming import validate_name

__all__ = [
    "ARTIFACTS_DIR",
    "CHECKPOINTS_DIR",
    "VARIANT_FILE",
    "Variant",
    "read_variant",
    "write_variant",
]

VARIANT_FILE = "variant.json"
CHECKPOINTS_DIR = "checkpoints"
ARTIFACTS_DIR = "artifacts"


@dataclass(frozen=True)
class Variant:
    """The identity of one run: its family and parameters."""

    family: str
    params: Mapping[str, Any] = field(default_factory=dict)
    epochstore_version: str = __version__

    def to_json(self) -> str:
        """Return the canonical JSON text of ``variant.json``."""
        return json.dumps(
            {
                "family": self.family,
                "params": dict(self.params),
                "epochstore_version": self.epochstore_version,
            },
            indent=2,
            sort_keys=True,
        )


def write_variant(
    run: PathOrURL,
    variant: Variant,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Write ``variant.json`` into a run (local directory or fsspec URL), atomically.

    Parameters
    ----------
    run
        The run directory or URL (``"s3://bucket/runs/p113"``); a local directory is created.
    variant
        The family and parameters of the run.
    storage_options
        fsspec options for a URL (credentials, ``client_kwargs={"endpoint_url": ...}``).
    """
    validate_name(variant.family, "family name")
    fs, root = open_filesystem(run, storage_options)
    fs.makedirs(root)
    fs.write_bytes(fs.join(root, VARIANT_FILE), variant.to_json().encode())


def read_variant(
    run: PathOrURL, *, storage_options: Mapping[str, Any] | None = None
) -> Variant:
    """Read and validate ``variant.json`` of a run (local directory or fsspec URL).

    Parameters
    ----------
    run
        The run directory or URL.
    storage_options
        fsspec options for a URL.

    Raises
    ------
    FileNotFoundError
        If the run has no ``variant.json``.
    InvalidVariantError
        If the file is not a JSON object with a valid ``family`` and a ``params`` object.
    """
    path = join(run, VARIANT_FILE)
    fs, root = open_filesystem(run, storage_options)
    raw = fs.read_bytes(fs.join(root, VARIANT_FILE))
    fix = f"fix it (see docs/format.md), or write it again with write_variant({run!r}, ...)"
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidVariantError(f"{path} is not valid JSON ({exc}); {fix}") from None
    if not isinstance(data, dict):
        raise InvalidVariantError(
            f"{path} must hold a JSON object, got {type(data).__name__}; {fix}"
        )
    family = data.get("family")
    params = data.get("params", {})
    version = data.get("epochstore_version", "unknown")
    if not isinstance(params, dict):
        raise InvalidVariantError(
            f"{path}: 'params' must be an object, got {type(params).__name__}; {fix}"
        )
    if not isinstance(version, str):
        raise InvalidVariantError(f"{path}: 'epochstore_version' must be a string; {fix}")
    return Variant(family=validate_name(family, f"family name in {path}"), params=params,
                   epochstore_version=version)
