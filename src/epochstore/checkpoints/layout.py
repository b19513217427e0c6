"""The layout of a checkpoint file: which tensor keys and ``epochstore.*`` header metadata
hold what (the tables: "File format" in ``docs/checkpoints.md``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, NotRequired, TypedDict

import torch

from epochstore.checkpoints.fileformat import read_header, read_tensors, section_of
from epochstore.checkpoints.state import (
    canonical_json,
    decode_json,
    decode_tree,
    deduplicate,
    encode_json,
    encode_tree,
    resolve_aliases,
)
from epochstore.errors import CheckpointFormatError, CorruptCheckpointError

if TYPE_CHECKING:
    from epochstore.checkpoints.fileformat import Digest, Header
    from epochstore.location import FileSystem

__all__ = [
    "FORMAT_VERSION",
    "Checkpoint",
    "MapLocation",
    "check_header",
    "foreign_file",
    "load_verified",
    "pack",
]

FORMAT_VERSION: Final = 1
_PREFIX: Final = "epochstore."
_FORMAT: Final = "epochstore.format"
_KIND: Final = "epochstore.kind"
_STORE_ID: Final = "epochstore.store_id"
_EPOCH: Final = "epochstore.epoch"
_MODEL: Final = "epochstore.model"
_ALIASES: Final = "epochstore.aliases"
_METRICS: Final = "epochstore.metrics"
_CONFIG: Final = "epochstore.config"
_METADATA: Final = "epochstore.metadata"
_TREES: Final = ("optimizer", "scheduler", "rng")

MapLocation = str | torch.device | None


class Checkpoint(TypedDict):
    """A loaded checkpoint.

    ``optimizer``, ``scheduler`` and ``rng_state`` are ``None`` when the checkpoint has none or
    when they were not requested; ``version`` is set for promoted checkpoints.
    """

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None
    scheduler: dict[str, Any] | None
    rng_state: dict[str, Any] | None
    epoch: int
    metrics: dict[str, float]
    config: Any
    metadata: dict[str, Any]
    version: NotRequired[str]


def pack(
    *,
    model_state: Mapping[str, Any],
    optimizer_state: Mapping[str, Any] | None,
    scheduler_state: Mapping[str, Any] | None,
    rng_state: Mapping[str, Any] | None,
    epoch: int,
    metrics: Mapping[str, float],
    config: Any,
    metadata: Mapping[str, Any],
    store_id: str,
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Return the tensors and header metadata of a checkpoint file; a state holding something
    that cannot be stored without pickle raises ``TypeError`` naming its key."""
    tensors: dict[str, Any] = {}
    keys: list[str] = []
    for key, value in model_state.items():
        if not isinstance(key, str):
            raise TypeError(f"model state dict keys must be str, got {key!r}")
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"model state dict entry {key!r} is a {type(value).__name__}, not a tensor; "
                f"safetensors checkpoints hold tensors only (no pickled extra state)"
            )
        tensors[f"model.{key}"] = value
        keys.append(key)
    header = {
        _FORMAT: str(FORMAT_VERSION),
        _KIND: "checkpoint",
        _STORE_ID: store_id,
        _EPOCH: str(epoch),
        _MODEL: canonical_json({"keys": keys}),
        _METRICS: encode_json(dict(metrics), "metrics"),
        _CONFIG: encode_json(config, "config"),
        _METADATA: encode_json(dict(metadata), "metadata"),
    }
    for name, tree in zip(_TREES, (optimizer_state, scheduler_state, rng_state), strict=True):
        if tree is not None:
            header[_PREFIX + name] = canonical_json(encode_tree(dict(tree), name, tensors))
    unique, aliases = deduplicate(tensors)
    header[_ALIASES] = canonical_json(aliases)
    return unique, header


def check_header(header: Header, path: str) -> int:
    """Return the epoch of an epochstore checkpoint's header; another file, or a newer format,
    raises :class:`CheckpointFormatError`."""
    meta = header.metadata
    if meta.get(_KIND) != "checkpoint" or _FORMAT not in meta:
        raise CheckpointFormatError(
            f"{path} is a safetensors file but not an epochstore checkpoint (its metadata has "
            f"no {_KIND!r}); load it with safetensors directly"
        )
    if meta[_FORMAT] != str(FORMAT_VERSION):
        raise CheckpointFormatError(
            f"{path} has checkpoint format {meta[_FORMAT]!r}; this epochstore reads format "
            f"{FORMAT_VERSION}: upgrade epochstore"
        )
    try:
        return int(meta[_EPOCH])
    except (KeyError, ValueError):
        raise CheckpointFormatError(f"{path}: metadata has no valid {_EPOCH!r}") from None


def foreign_file(fs: FileSystem, path: str, store_id: str) -> bool:
    """Whether a file at ``path`` exists that the manifest ``store_id`` did not write (not
    safetensors, or no or another id): such a file is never overwritten or deleted."""
    if not fs.exists(path):
        return False
    try:
        with fs.open_read(path) as handle:
            header = read_header(handle, fs.size(path), path)
    except (CheckpointFormatError, CorruptCheckpointError, FileNotFoundError):
        return True
    return not store_id or header.metadata.get(_STORE_ID) != store_id


def _json(meta: Mapping[str, str], key: str, path: str) -> Any:
    try:
        return decode_json(meta[key])
    except (KeyError, ValueError) as exc:
        raise CheckpointFormatError(
            f"{path}: header metadata {key!r} is missing or invalid ({exc})"
        ) from None


def load_verified(
    fs: FileSystem,
    path: str,
    digest: Digest,
    epoch: int,
    *,
    include_optimizer: bool,
    map_location: MapLocation,
) -> Checkpoint:
    """Load the recorded checkpoint file at ``path``, verified against ``digest``; a missing,
    changed or swapped file raises :class:`CorruptCheckpointError` saying how to recover."""
    try:
        size = fs.size(path)
    except FileNotFoundError:
        raise CorruptCheckpointError(
            f"{path} is recorded but missing; restore it from a backup, or delete its record "
            f"with CheckpointManager.delete({epoch}) (other epochs still load)"
        ) from None
    if size != digest.size:
        raise _corrupt(path, f"has {size} bytes but {digest.size} were recorded (truncated?)")
    device = torch.device(map_location) if map_location is not None else None
    try:
        with fs.open_read(path) as handle:
            header = read_header(handle, size, path)
            found, meta = check_header(header, path), header.metadata
            aliases = _json(meta, _ALIASES, path)
            sections: set[str] | None = None
            if not include_optimizer:  # the model's tensors and the tensors they alias
                sections = {"model"}
                sections |= {section_of(t) for a, t in aliases.items() if section_of(a) == "model"}
            tensors = read_tensors(handle, header, path, digest, sections)
        if found != epoch:
            raise _corrupt(path, f"holds epoch {found}, but epoch {epoch} was recorded (swapped?)")
        if device is not None and device.type != "cpu":
            tensors = {k: v if k.startswith("rng.") else v.to(device) for k, v in tensors.items()}
        resolve_aliases(tensors, aliases)
        trees = {
            name: decode_tree(json.loads(meta[_PREFIX + name]), tensors)
            if include_optimizer and _PREFIX + name in meta
            else None
            for name in _TREES
        }
        return Checkpoint(
            model={key: tensors[f"model.{key}"] for key in _json(meta, _MODEL, path)["keys"]},
            optimizer=trees["optimizer"],
            scheduler=trees["scheduler"],
            rng_state=trees["rng"],
            epoch=epoch,
            metrics=_json(meta, _METRICS, path),
            config=_json(meta, _CONFIG, path),
            metadata=_json(meta, _METADATA, path),
        )
    except CheckpointFormatError as exc:
        raise _corrupt(path, f"is recorded but is no longer a valid checkpoint ({exc})") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise _corrupt(
            path, f"has header metadata that refers to a tensor it does not hold ({exc})"
        ) from None


def _corrupt(path: str, problem: str) -> CorruptCheckpointError:
    return CorruptCheckpointError(f"{path} {problem}; it is not loaded: restore it from a backup "
                                  "or load another epoch")
