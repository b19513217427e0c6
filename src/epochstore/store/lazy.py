"""Lazy arrays over epoch nodes: nothing is read until values are asked for.

:class:`EpochFieldArray` is one field of one epoch; :class:`StackedFieldArray` stacks one field
over many epochs along a new leading ``epoch`` axis. Both are xarray ``BackendArray`` s (outer
indexing), so ``ds["activations"].sel(neuron=7).values`` reads only the chunks that hold neuron
7, and both translate store failures into epochstore errors that name the analyzer and epoch.
Zarr arrays are opened on first use, so opening a stacked dataset reads no per-epoch metadata.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
import zarr.api.asynchronous
from xarray.backends.common import BackendArray
from xarray.core import indexing
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.core.sync import sync
from zarr.storage import WrapperStore

from epochstore.errors import (
    CorruptArtifactError,
    EpochChangedError,
    EpochNotFoundError,
    EpochstoreError,
)
from epochstore.naming import epoch_name
from epochstore.store.direct import (
    DirectLayout,
    MissingChunkError,
    get_object,
    local_root,
    normalise_key,
    outer_index,
    read_direct,
    read_field_local,
    read_rows_local,
    read_slab_local,
    read_whole_local,
)
from epochstore.store.manifest import WRITE_TOKEN_KEY
from epochstore.store.series import SeriesCache

if TYPE_CHECKING:
    from zarr.abc.store import ByteRequest, Store

__all__ = [
    "EpochFieldArray",
    "MissingChunkError",
    "StackedFieldArray",
    "StrictReadStore",
    "node_path",
    "read_field",
]

_Key = tuple[Any, ...]


class StrictReadStore(WrapperStore[Any]):
    """A read wrapper that raises on a missing chunk instead of letting zarr fill it in.

    epochstore writes every chunk (``write_empty_chunks``), so inside a committed epoch a
    missing chunk key is damage, never "all fill value".
    """

    def _with_store(self, store: Store) -> StrictReadStore:  # pragma: no cover - zarr API
        return type(self)(store)

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        value: Buffer | None = await self._store.get(key, prototype, byte_range)
        if value is None and not key.endswith("zarr.json"):
            raise MissingChunkError(f"chunk {key!r} is missing")
        return value


#: Epochs read at once by a stacked read (one neuron across epochs): on an object store each
#: epoch costs round trips, so they overlap; locally it still saves the per-call overhead.
READ_CONCURRENCY = 16


async def _array_metadata(store: Store, path: str) -> dict[str, Any] | None:
    """Read an array's ``zarr.json`` (uncached); None if it does not exist."""
    raw = await get_object(store, f"{path}/zarr.json")
    if raw is None:
        return None
    meta = json.loads(raw.tobytes())
    if not isinstance(meta, dict):
        raise TypeError(f"{path}/zarr.json is not a JSON object")
    return meta


def _local_metadata(root: Path, path: str) -> dict[str, Any] | None:
    """An array's ``zarr.json`` in a local store, read in this thread; None if unreadable."""
    try:
        with (root / path / "zarr.json").open("rb") as f:
            meta = json.loads(f.read())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _selects_all(key: _Key, shape: tuple[int, ...]) -> bool:
    """Whether an outer-indexing key selects the whole array, in order."""
    if len(key) > len(shape):
        return False
    return all(
        isinstance(k, slice) and k.indices(n) == (0, n, 1)
        for k, n in zip(key, shape, strict=False)
    )


def _token(meta: dict[str, Any] | None) -> str | None:
    token = (meta or {}).get("attributes", {}).get(WRITE_TOKEN_KEY)
    return token if isinstance(token, str) else None


async def _current_token(store: Store, path: str) -> str | None:
    """Re-read an array's metadata (uncached) and return its write token."""
    return _token(await _array_metadata(store, path))


def read_field(
    store: Store,
    path: str,
    key: _Key,
    *,
    display: str,
    analyzer: str,
    epoch: int,
    field: str,
    token: str | None = None,
) -> np.ndarray:
    """Read ``key`` (outer indexing) of one field of one epoch; see :func:`read_field_async`."""
    return sync(
        read_field_async(
            store, path, key, display=display, analyzer=analyzer, epoch=epoch, field=field,
            token=token,
        )
    )


async def read_field_async(
    store: Store,
    path: str,
    key: _Key,
    *,
    display: str,
    analyzer: str,
    epoch: int,
    field: str,
    token: str | None = None,
) -> np.ndarray:
    """Read ``key`` (outer indexing) of one field of one epoch, translating failures.

    With ``token`` (the epoch group's write token), a field written by another write, i.e. an
    overwrite that happened while the epoch was being read, raises :class:`EpochChangedError`.

    The store's own layouts are read by :func:`~epochstore.store.direct.read_direct` (one
    request for a whole field, decoded in place); anything else by zarr.
    """
    where = f"field {field!r} of analyzer {analyzer!r}, epoch {epoch}, in {display}"
    try:
        meta = await _array_metadata(store, path)
        if meta is None:
            raise FileNotFoundError(f"{path}/zarr.json")
        if token is not None and _token(meta) != token:
            raise EpochChangedError(
                f"{where} was overwritten or deleted while it was being read; load it again"
            )
        layout = DirectLayout.from_metadata(meta)
        if layout is not None:
            values = await read_direct(store, path, layout, key)
        else:
            # zarr fills a missing chunk with the fill value; in a committed epoch that is
            # damage, so zarr reads through the strict wrapper (the direct path checks itself).
            array = await zarr.api.asynchronous.open_array(
                store=StrictReadStore(store), path=path, mode="r", zarr_format=3
            )
            if key:
                values = np.asarray(await array.get_orthogonal_selection(key))
            else:
                values = np.asarray(await array.getitem(...))
        if token is not None and await _current_token(store, path) != token:
            raise EpochChangedError(f"{where} changed during the read; load it again")
        return values
    except EpochstoreError:
        raise
    except (FileNotFoundError, KeyError) as exc:
        if token is not None:  # the node load_epoch opened is gone: overwritten or deleted
            raise EpochChangedError(
                f"{where} was overwritten or deleted after it was opened; load it again"
            ) from exc
        raise EpochNotFoundError(
            f"{where} does not exist (deleted or never committed: {exc}); "
            "list epochs again with get_epochs()"
        ) from exc
    except (ValueError, RuntimeError, OSError, TypeError) as exc:
        # Data that vanished or changed under the read (an overwrite deleting the generation
        # being read) is not damage: the field's metadata no longer names this write.
        if token is not None and await _current_token(store, path) != token:
            raise EpochChangedError(
                f"{where} was overwritten or deleted while it was being read; load it again"
            ) from exc
        raise CorruptArtifactError(
            f"{where} is damaged and was not returned ({type(exc).__name__}: {exc}). "
            "Run `epochstore verify` to list damage; delete the epoch and recompute it."
        ) from exc


class _LazyBase(BackendArray):
    """Shared state: where the arrays are, and what to call them in errors."""

    __slots__ = ("analyzer", "display", "dtype", "field", "shape", "store")

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    store: Store
    analyzer: str
    field: str
    display: str

    def __getitem__(self, key: indexing.ExplicitIndexer) -> Any:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self._getitem
        )

    def _getitem(self, key: _Key) -> np.ndarray:
        raise NotImplementedError


class EpochFieldArray(_LazyBase):
    """One field of one epoch, read on demand."""

    __slots__ = ("epoch", "path", "token")

    def __init__(
        self,
        store: Store,
        path: str,
        *,
        shape: tuple[int, ...],
        dtype: np.dtype[Any],
        analyzer: str,
        field: str,
        epoch: int,
        display: str,
        token: str | None = None,
    ) -> None:
        self.store, self.path, self.token = store, path, token
        self.shape, self.dtype = shape, dtype
        self.analyzer, self.field, self.epoch, self.display = analyzer, field, epoch, display

    def _read_full_local(self) -> np.ndarray | None:
        """The whole field of a local store, read in this thread; None if it cannot be.

        Its metadata (layout and write token) is read before and the token again after, as
        the careful path does; anything unexpected is left to that path, which names it.
        """
        root = local_root(self.store)
        if root is None:
            return None
        meta = _local_metadata(root, self.path)
        if meta is None or (self.token is not None and _token(meta) != self.token):
            return None
        layout = DirectLayout.from_metadata(meta)
        if layout is None or layout.shape != self.shape:
            return None
        out = np.empty(layout.shape, dtype=layout.dtype)
        if not read_field_local(root, self.path, layout, out):
            return None
        if self.token is not None and _token(_local_metadata(root, self.path)) != self.token:
            return None
        return out.astype(layout.dtype.newbyteorder("="), copy=False)

    def _getitem(self, key: _Key) -> np.ndarray:
        if _selects_all(key, self.shape):
            values = self._read_full_local()
            if values is not None:
                return values
        return read_field(
            self.store,
            self.path,
            key,
            display=self.display,
            analyzer=self.analyzer,
            epoch=self.epoch,
            field=self.field,
            token=self.token,
        )


def _normalise_epoch_key(k: Any, n: int) -> tuple[np.ndarray, bool]:
    """Return the epoch indices selected by ``k`` and whether the axis is kept."""
    if isinstance(k, slice):
        return np.arange(n)[k], True
    if isinstance(k, np.ndarray):
        return k.astype(np.intp).ravel(), True
    return np.array([int(k)]), False


class StackedFieldArray(_LazyBase):
    """One field over many epochs: shape ``(len(epochs), *field_shape)``."""

    __slots__ = ("epochs", "layout", "node_paths", "series")

    def __init__(
        self,
        store: Store,
        node_paths: Sequence[str],
        epochs: Sequence[int],
        *,
        shape: tuple[int, ...],
        dtype: np.dtype[Any],
        analyzer: str,
        field: str,
        display: str,
        layout: DirectLayout | None = None,
        series: SeriesCache | None = None,
    ) -> None:
        self.store = store
        self.series = series
        self.node_paths = tuple(node_paths)
        self.epochs = tuple(epochs)
        self.shape = (len(self.epochs), *shape)
        self.dtype = dtype
        self.analyzer, self.field, self.display = analyzer, field, display
        self.layout = layout

    def __dask_tokenize__(self) -> object:
        return (type(self).__name__, self.display, self.analyzer, self.field, self.epochs)

    async def _read_many(self, indices: np.ndarray, inner: _Key) -> list[np.ndarray]:
        """Read ``inner`` of the epochs at ``indices``, up to READ_CONCURRENCY at once.

        Every epoch of an analyzer is written with the manifest's codec and layout (``layout``),
        so each epoch costs only its chunk reads, no metadata. An epoch that does not fit it
        (or is damaged, or gone) is read the careful way, which reads its own metadata and
        names what is wrong.
        """
        limit = asyncio.Semaphore(READ_CONCURRENCY)
        template = self.layout

        async def one(i: int) -> np.ndarray:
            path = f"{self.node_paths[i]}/{self.field}"
            async with limit:
                if template is not None:
                    try:
                        return await read_direct(self.store, path, template, inner)
                    except (ValueError, RuntimeError, OSError, TypeError):
                        pass  # the careful path below raises the precise error
                return await read_field_async(
                    self.store,
                    path,
                    inner,
                    display=self.display,
                    analyzer=self.analyzer,
                    epoch=self.epochs[i],
                    field=self.field,
                )

        return list(await asyncio.gather(*(one(int(i)) for i in indices)))

    def _read_failed(
        self, out: np.ndarray, indices: np.ndarray, failed: list[int], inner: _Key
    ) -> np.ndarray:
        """Fill the positions ``failed`` of a local fast read of ``indices`` into ``out`` the
        careful way, which names what is wrong (or reads another layout); native byte order."""
        if failed:
            redo = sync(self._read_many(indices[failed], inner))
            for position, values in zip(failed, redo, strict=True):
                out[position] = values
        return out.astype(out.dtype.newbyteorder("="), copy=False)

    def _read_small_local(self, indices: np.ndarray, inner: _Key) -> np.ndarray | None:
        """Whole single-chunk fields of a local store, read in this thread; else None."""
        layout, root = self.layout, local_root(self.store)
        if layout is None or layout.sharded or root is None:
            return None
        out = np.empty((len(indices), *layout.shape), dtype=layout.dtype)
        paths = [f"{self.node_paths[int(i)]}/{self.field}" for i in indices]
        failed = read_whole_local(root, paths, layout, out)
        out = self._read_failed(out, indices, failed, ())
        if not inner:
            return out
        sel = normalise_key(inner, layout.shape)
        return outer_index(out, [slice(0, len(indices), 1), *sel])

    def _read_whole(self, indices: np.ndarray) -> np.ndarray:
        """The whole field of the epochs at ``indices``, stacked, read from their nodes."""
        stacked = self._read_small_local(indices, ())
        if stacked is not None:
            return stacked
        parts = sync(self._read_many(indices, ()))
        if parts:
            return np.stack(parts)
        return np.empty((0, *self.shape[1:]), dtype=self.dtype)

    def _read_from_series(self, series: SeriesCache, indices: np.ndarray, inner: _Key
                          ) -> np.ndarray:
        """Whole small fields from the derived series (epochs it lacks from their nodes)."""
        epochs = [self.epochs[int(i)] for i in indices]
        stacked = series.read(epochs, lambda positions: self._read_whole(indices[positions]))
        if not inner:
            return stacked
        sel = normalise_key(inner, self.shape[1:])
        return outer_index(stacked, [slice(0, len(indices), 1), *sel])

    def _rows_layout(self) -> bool:
        """Whether the local fast paths apply: a local store, one shard per epoch, chunks along
        the leading axis only (the writer's layout), no edge chunk."""
        layout = self.layout
        if layout is None or not layout.sharded or local_root(self.store) is None:
            return False
        shape = layout.shape
        return layout.grid[1:] == (1,) * (len(shape) - 1) and (
            layout.chunks[0] * layout.grid[0] == shape[0]
        )

    def _read_rows(self, indices: np.ndarray, inner: _Key) -> np.ndarray | None:
        """Part of each epoch (e.g. one neuron) of a local store, read by the read threads:
        only the chunks the leading-axis selection touches, decoded once per epoch."""
        if not self._rows_layout():
            return None
        layout, root = self.layout, local_root(self.store)
        assert layout is not None
        assert root is not None
        try:
            sel = normalise_key(inner, layout.shape)
        except IndexError:
            return None
        lead = sel[0]
        if isinstance(lead, np.ndarray) and lead.size:
            touched = np.unique(lead // layout.chunks[0])
            if touched.size != int(touched[-1]) - int(touched[0]) + 1:
                return None  # chunks in between would be decoded for nothing
        shape = tuple(
            len(range(k.start, k.stop, k.step)) if isinstance(k, slice)
            else k.size if isinstance(k, np.ndarray) else None
            for k in sel
        )
        out = np.empty((len(indices), *(n for n in shape if n is not None)), dtype=layout.dtype)
        paths = [f"{self.node_paths[int(i)]}/{self.field}" for i in indices]
        failed = read_rows_local(root, paths, layout, sel, out)
        return self._read_failed(out, indices, failed, inner)

    def _slab(self, inner: _Key) -> slice | None:
        """The leading-axis slice of a whole-chunk slab that ``inner`` selects, else None."""
        layout = self.layout
        if not self._rows_layout():
            return None
        assert layout is not None
        shape = layout.shape
        try:
            sel = normalise_key(inner, shape)
        except IndexError:
            return None
        lead, rest = sel[0], sel[1:]
        full = all(
            isinstance(k, slice) and (k.start, k.stop, k.step) == (0, n, 1)
            for k, n in zip(rest, shape[1:], strict=True)
        )
        if not (full and isinstance(lead, slice) and lead.step == 1):
            return None
        c0 = layout.chunks[0]
        if lead.start % c0 or lead.stop % c0 or lead.stop <= lead.start:
            return None
        return lead if lead.stop - lead.start < shape[0] else None  # whole fields: 2 threads

    def _read_slab(self, indices: np.ndarray, lead: slice) -> np.ndarray:
        """A slab of whole chunks of each epoch, read in this thread (local stores)."""
        layout, root = self.layout, local_root(self.store)
        assert layout is not None
        assert root is not None
        out = np.empty((len(indices), lead.stop - lead.start, *layout.shape[1:]),
                       dtype=layout.dtype)
        paths = [f"{self.node_paths[int(i)]}/{self.field}" for i in indices]
        failed = read_slab_local(root, paths, layout, lead, out)
        return self._read_failed(out, indices, failed, (lead,))

    def _getitem(self, key: _Key) -> np.ndarray:
        indices, keep_axis = _normalise_epoch_key(key[0], len(self.epochs))
        inner = tuple(key[1:])
        lead = self._slab(inner) if indices.size and keep_axis else None
        if lead is not None:
            return self._read_slab(indices, lead)
        if self.series is not None and indices.size:
            whole = self._read_from_series(self.series, indices, inner)
            return whole if keep_axis else whole[0]
        stacked = self._read_small_local(indices, inner) if indices.size else None
        if stacked is None and indices.size:
            stacked = self._read_rows(indices, inner)
        if stacked is not None:
            return stacked if keep_axis else stacked[0]
        parts = sync(self._read_many(indices, inner))
        if not keep_axis:
            return parts[0]
        if len(parts) == 1:  # a dask block of one big epoch: no 26 MB copy by np.stack
            return parts[0][np.newaxis]
        if parts:
            return np.stack(parts)
        # An empty selection: the shape that indexing the inner dims would give.
        probe = np.empty(self.shape[1:], dtype=self.dtype)[inner] if inner else None
        inner_shape = probe.shape if probe is not None else self.shape[1:]
        return np.empty((0, *inner_shape), dtype=self.dtype)


def node_path(prefix: str, analyzer: str, epoch: int) -> str:
    """Return the store key of an epoch node."""
    return "/".join(p for p in (prefix, analyzer, epoch_name(epoch)) if p)
