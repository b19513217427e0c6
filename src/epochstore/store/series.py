"""Derived series of small fields: one object per (analyzer, field) holding every epoch's value.

A scalar or a small per-epoch vector read across many epochs would cost one read per epoch
(one GET each on S3). The *series* of such a field is one object,
``<analyzer>/.series/<field>.safetensors``, that stacks the field over the epochs it covers and
records, per epoch, the version of the epoch node its value was read from
(:mod:`epochstore.store.versions`). It is derived and never the source of truth:

- an epoch is taken from the series only if its current version (from the listing that
  :meth:`~epochstore.ArtifactLoader.load_epochs` makes anyway) equals the recorded one; every
  other epoch (added, overwritten, repaired, recomputed) is read from its node;
- after reading epochs from their nodes, the reader writes the series again: the entries still
  current plus the ones it read (one atomic object write, best effort: a read-only location
  simply keeps reading nodes);
- versions are taken (listing) before values are read, so an epoch overwritten in between is
  recorded with its old version and is read from its node next time: never stale values under
  a current version;
- two writers write whole, self-checked objects (CRC32C over the content); the last one wins,
  and an epoch it lacks is read from its node. A damaged or foreign object is ignored.

Only fields stored as one chunk of at most :data:`SERIES_MAX_FIELD_BYTES` per epoch, in a
layout the direct reader reads, have a series (scalars, per-epoch vectors up to 1,024 float32),
so a series of 1,000 epochs is at most ~4 MB.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import google_crc32c
import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save
from zarr.core.buffer import cpu
from zarr.core.sync import sync

from epochstore.location import atomic_write_bytes
from epochstore.store.direct import DirectLayout, get_object
from epochstore.store.versions import FieldVersions

if TYPE_CHECKING:
    from zarr.abc.store import Store

__all__ = [
    "SERIES_DIR",
    "SERIES_MAX_FIELD_BYTES",
    "SERIES_SUFFIX",
    "SeriesCache",
    "decode_series",
    "encode_series",
    "has_series",
]

#: Largest field (bytes per epoch) kept in a series: scalars and small per-epoch vectors.
SERIES_MAX_FIELD_BYTES = 4096
#: The directory of an analyzer's series objects (hidden: never an epoch, not a zarr node).
SERIES_DIR = ".series"
#: The suffix of a series object's name (``<field>.safetensors``).
SERIES_SUFFIX = ".safetensors"
_FORMAT = "epochstore-series-1"
_log = logging.getLogger(__name__)

#: Reads the whole field of the epochs at the given positions, stacked.
NodeReader = Callable[[np.ndarray], np.ndarray]


def has_series(layout: DirectLayout | None) -> bool:
    """Whether a field stored in ``layout`` has a series: one small chunk the direct reader reads.

    A field the writer split into chunks (a shard) is never in a series: a part of it is read
    from its own chunk, and a series would read it whole.
    """
    if layout is None or layout.sharded:
        return False
    return layout.dtype.itemsize * math.prod(layout.shape) <= SERIES_MAX_FIELD_BYTES


def _checksum(meta: bytes, epochs: np.ndarray, values: np.ndarray) -> int:
    crc = google_crc32c.value(meta)
    crc = google_crc32c.extend(crc, epochs.tobytes())
    return int(google_crc32c.extend(crc, values.tobytes()))


def encode_series(epochs: Sequence[int], versions: Sequence[str], values: np.ndarray) -> bytes:
    """The bytes of a series object (safetensors: ``epochs``, ``values``, ``meta``, ``crc32c``)."""
    meta = json.dumps({"format": _FORMAT, "versions": list(versions)}).encode()
    stacked_epochs = np.asarray(epochs, dtype="<i8")
    stacked = np.ascontiguousarray(values.astype(values.dtype.newbyteorder("<"), copy=False))
    crc = _checksum(meta, stacked_epochs, stacked)
    return st_save({
        "epochs": stacked_epochs,
        "values": stacked,
        "meta": np.frombuffer(meta, dtype=np.uint8),
        "crc32c": np.array([crc], dtype="<u4"),
    })


def decode_series(
    raw: bytes, shape: Sequence[int], dtype: np.dtype[Any]
) -> tuple[list[int], list[str], np.ndarray] | None:
    """``(epochs, versions, values)`` of a series object, or None if it is not a valid one."""
    try:
        tensors = st_load(raw)
        epochs, values = tensors["epochs"], tensors["values"]
        meta = tensors["meta"].tobytes()
        if int(tensors["crc32c"][0]) != _checksum(meta, epochs, values):
            return None
        doc = json.loads(meta)
        versions = doc["versions"]
        if doc.get("format") != _FORMAT or not isinstance(versions, list):
            return None
        if values.shape != (len(epochs), *shape) or len(versions) != len(epochs):
            return None
        if values.dtype.newbyteorder("=") != dtype.newbyteorder("="):
            return None
        return [int(e) for e in epochs], [str(v) for v in versions], values
    except (SafetensorError, KeyError, IndexError, TypeError, ValueError):
        return None  # damage (truncation, a foreign object) makes it unusable, never fatal


class SeriesCache:
    """The series of one field, as a reader of one listing sees it.

    Parameters
    ----------
    store
        The run's zarr store.
    key
        The series object's key in ``store``.
    local_path
        Its filesystem path when the store is a local directory (written atomically there).
    versions
        Where each epoch's version of the field comes from (taken before any value is read).
    shape, dtype
        The field's shape and dtype.
    """

    def __init__(
        self,
        store: Store,
        key: str,
        local_path: Path | None,
        versions: FieldVersions,
        *,
        shape: tuple[int, ...],
        dtype: np.dtype[Any],
    ) -> None:
        self.store, self.key, self.local_path = store, key, local_path
        self.versions = versions
        self.shape, self.dtype = shape, np.dtype(dtype).newbyteorder("=")

    def __repr__(self) -> str:
        return f"SeriesCache({self.key!r})"

    def _load(self) -> tuple[list[int], list[str], np.ndarray] | None:
        """The stored series (one read): ``(epochs, versions, values)``, or None."""
        try:
            raw = sync(get_object(self.store, self.key))
        except Exception:  # noqa: BLE001 - any store's error: an unreadable series is none
            return None
        return None if raw is None else decode_series(raw.tobytes(), self.shape, self.dtype)

    @staticmethod
    def _current(
        stored: tuple[list[int], list[str], np.ndarray] | None, versions: Mapping[int, str]
    ) -> dict[int, np.ndarray]:
        """The stored entries whose version is the one in ``versions``, by epoch."""
        if stored is None:
            return {}
        epochs, recorded, values = stored
        return {
            epoch: values[i]
            for i, (epoch, version) in enumerate(zip(epochs, recorded, strict=True))
            if versions.get(epoch) == version
        }

    def _store_entries(
        self, entries: Mapping[int, np.ndarray], versions: Mapping[int, str]
    ) -> None:
        """Write the series (best effort: a read-only location just keeps reading nodes)."""
        epochs = sorted(entries)
        values = (
            np.stack([entries[e] for e in epochs]).astype(self.dtype, copy=False)
            if epochs
            else np.empty((0, *self.shape), dtype=self.dtype)
        )
        data = encode_series(epochs, [versions[e] for e in epochs], values)
        try:
            if self.local_path is not None:
                self.local_path.parent.mkdir(exist_ok=True)
                atomic_write_bytes(self.local_path, data)
                return
            store = self.store
            if store.read_only:
                store = store.with_read_only(False)
            sync(store.set(self.key, cpu.Buffer.from_bytes(data)))
        except Exception as exc:  # noqa: BLE001 - any store's error: derived data, best effort
            _log.debug("series %s not written: %s", self.key, exc)

    def read(self, epochs: Sequence[int], read_nodes: NodeReader) -> np.ndarray:
        """The whole field of ``epochs``, stacked: from the series where it is current.

        ``read_nodes`` reads the epochs at the given positions of ``epochs`` from their nodes
        (raising what the careful path raises for a missing or damaged epoch). If it read any
        epoch, the series is written again with every current entry.
        """
        versions = self.versions.of(epochs)  # before any value is read
        stored = self._load()
        current = self._current(stored, versions)
        out = np.empty((len(epochs), *self.shape), dtype=self.dtype)
        stale = []
        for position, epoch in enumerate(epochs):
            value = current.get(epoch)
            if value is None:
                stale.append(position)
            else:
                out[position] = value
        if stale:
            positions = np.asarray(stale, dtype=np.intp)
            out[positions] = read_nodes(positions)
            fresh = {epochs[p]: out[p] for p in stale if epochs[p] in versions}
            if fresh:
                # Keep the entries of the epochs not read here that are still current.
                others = [] if stored is None else [e for e in stored[0] if e not in versions]
                if others:
                    versions = {**self.versions.of(others), **versions}
                    current = self._current(stored, versions)
                self._store_entries({**current, **fresh}, versions)
        return out
