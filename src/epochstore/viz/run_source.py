"""One run's artifacts as views read them: :class:`RunSource`, a cached :class:`ViewSource`.

Views read through a source, never a loader, so that the dashboard can share and bound the
reads: a block of a field read for one view is reused by another view of that slice, and the
per-epoch series of a cross-epoch view are read once and then extended by new epochs alone.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import xarray as xr

from epochstore._lru import LRUCache
from epochstore.interface import JSONValue, StoredField
from epochstore.store import ArtifactLoader
from epochstore.viz.sources import checkpoint_metrics

__all__ = ["NORM_BATCH_BYTES", "RunSource", "stored_fields"]

#: Bytes of a field's (selected) values a norm-over-epochs view holds at once: the epochs of
#: one batch are read together.
NORM_BATCH_BYTES = 32 * 2**20


def stored_fields(loader: ArtifactLoader, analyzer: str) -> dict[str, StoredField]:
    """The fields of ``analyzer`` from its manifest (metadata only)."""
    manifest = loader.manifest(analyzer)
    return {
        name: StoredField(analyzer=analyzer, name=name, dims=tuple(spec.dims),
                          shape=tuple(spec.shape), dtype=spec.dtype,
                          chunks=tuple(spec.layout.chunks))
        for name, spec in manifest.fields.items()
    }


def _l2_norms(block: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """The L2 norm (in float64) of each entry along the first axis of ``block``."""
    flat = block.reshape(block.shape[0], -1).astype(np.float64, copy=False)
    squares: npt.NDArray[np.float64] = np.einsum("ij,ij->i", flat, flat)
    return np.sqrt(squares)


class RunSource:
    """A :class:`~epochstore.interface.ViewSource` over one run's :class:`ArtifactLoader`.

    Parameters
    ----------
    location
        Where the run lives: its directory or URL (``run``, its former name, still reads it
        with a ``DeprecationWarning``).
    loader
        Its loader (default ``ArtifactLoader(location, storage_options=storage_options)``).
    analyzers, fields, params
        What the caller already knows from metadata (each analyzer's epochs, fields and
        parameters); whatever is not given is read from the manifests once, when first needed.
    checkpoints
        The number of committed checkpoints, if known: part of the cache key of
        :meth:`checkpoint_metrics` (new checkpoints are read again).
    blocks, series
        Caches to share between sources (e.g. a dashboard's, bounded); default private ones.
    storage_options
        fsspec options for a URL (its loader and checkpoint manifest).
    """

    def __init__(
        self,
        location: str | os.PathLike[str],
        *,
        loader: ArtifactLoader | None = None,
        analyzers: Mapping[str, Sequence[int]] | None = None,
        fields: Mapping[str, Mapping[str, StoredField]] | None = None,
        params: Mapping[str, Mapping[str, JSONValue]] | None = None,
        checkpoints: int | None = None,
        blocks: LRUCache[tuple[Any, ...], xr.DataArray] | None = None,
        series: LRUCache[tuple[Any, ...], xr.Dataset] | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.location = os.fspath(location)
        self.storage_options = None if storage_options is None else dict(storage_options)
        self._loader = loader
        self._analyzers = None if analyzers is None else {k: tuple(v) for k, v in
                                                          analyzers.items()}
        self._fields: dict[str, Mapping[str, StoredField]] = dict(fields or {})
        self._params: dict[str, Mapping[str, JSONValue]] = dict(params or {})
        self._checkpoints = checkpoints
        # (An empty cache is falsy: test for None.)
        self.blocks: LRUCache[tuple[Any, ...], xr.DataArray] = (
            LRUCache(8) if blocks is None else blocks)
        self.series: LRUCache[tuple[Any, ...], xr.Dataset] = (
            LRUCache(32) if series is None else series)

    def __repr__(self) -> str:
        return f"RunSource({self.location!r})"

    @property
    def run(self) -> str:
        """Deprecated name of ``location``."""
        warnings.warn("RunSource.run is deprecated; use RunSource.location",
                      DeprecationWarning, stacklevel=2)
        return self.location

    @property
    def loader(self) -> ArtifactLoader:
        """The run's loader (made on first use)."""
        if self._loader is None:
            self._loader = ArtifactLoader(self.location, storage_options=self.storage_options)
        return self._loader

    # --- metadata -------------------------------------------------------------------------------

    def analyzers(self) -> Mapping[str, Sequence[int]]:
        """Each analyzer the run holds and its committed epochs."""
        if self._analyzers is None:
            loader = self.loader
            self._analyzers = {name: tuple(loader.get_epochs(name))
                               for name in loader.get_available_analyzers()}
        return self._analyzers

    def fields(self, analyzer: str) -> Mapping[str, StoredField]:
        """The fields of ``analyzer``, from its manifest (read once)."""
        if analyzer not in self._fields:
            self._fields[analyzer] = stored_fields(self.loader, analyzer)
        return self._fields[analyzer]

    def params(self, analyzer: str) -> Mapping[str, JSONValue]:
        """The run-level parameters ``analyzer`` recorded (read once)."""
        if analyzer not in self._params:
            self._params[analyzer] = dict(self.loader.manifest(analyzer).params)
        return self._params[analyzer]

    def checkpoint_metrics(self) -> xr.Dataset | None:
        """The checkpoints' metrics stacked along ``epoch`` (the checkpoint manifest only)."""
        key = (self.location, "checkpoints", self._checkpoints)
        cached = self.series.get(key)
        if cached is None:
            cached = checkpoint_metrics(self.location, storage_options=self.storage_options)
            if cached is None:
                return None
            self.series.put(key, cached)
        return cached

    # --- data -----------------------------------------------------------------------------------

    def load_epoch(self, analyzer: str, epoch: int) -> xr.Dataset:
        """One epoch of ``analyzer``, lazily: nothing is read until a value is needed."""
        return self.loader.load_epoch(analyzer, epoch)

    def block_range(self, analyzer: str, field: str, dim: str, index: int,
                    size: int | None = None) -> tuple[int, int]:
        """The ``(start, stop)`` along ``dim`` of :meth:`load_block` (from metadata only).

        Raises
        ------
        IndexError
            If ``index`` is out of range, naming the range.
        """
        spec = self.fields(analyzer)[field]
        axis = spec.dims.index(dim)
        count = spec.shape[axis]
        if not 0 <= index < count:
            raise IndexError(f"{dim} {index} is out of range: {analyzer} / {field} has "
                             f"{dim}s 0..{count - 1}")
        chunk = max(1, spec.chunks[axis] if spec.chunks else count)
        chunk_start = index - index % chunk
        step = max(1, size or chunk)
        start = chunk_start + (index - chunk_start) // step * step
        return start, min(start + step, chunk_start + chunk, count)

    def load_block(self, analyzer: str, epoch: int, field: str, dim: str, index: int,
                   size: int | None = None) -> xr.DataArray:
        """The block of ``field`` along ``dim`` holding ``index``, in memory, labelled.

        The block lies inside one chunk (so it costs one chunk's read) and holds at most
        ``size`` entries along ``dim`` (default the whole chunk). Kept in the block cache:
        views of the same slice share the read.
        """
        start, stop = self.block_range(analyzer, field, dim, index, size)

        def load() -> xr.DataArray:
            array = self.load_epoch(analyzer, epoch)[field].isel({dim: slice(start, stop)})
            return array.assign_coords({dim: np.arange(start, stop)}).load()

        return self.blocks.get_or_compute(
            (self.location, analyzer, epoch, field, dim, start, stop), load)

    def load_series(
        self,
        analyzer: str,
        fields: Sequence[str],
        *,
        select: Mapping[str, int] | None = None,
        norm: bool = False,
    ) -> xr.Dataset:
        """``fields`` of every epoch of ``analyzer``, stacked along ``epoch``, in memory.

        Parameters
        ----------
        analyzer, fields
            What to read.
        select
            One index per dim to keep (as a length-1 dim labelled with it): one chunk per
            epoch and field instead of the whole field.
        norm
            Reduce each epoch's (selected) array to its L2 norm, reading batches of epochs of
            at most :data:`NORM_BATCH_BYTES` (at least one epoch).

        Cached with the epochs it holds: a later call after new epochs were written reads
        the new epochs only.
        """
        chosen = dict(select or {})
        key = (self.location, analyzer, tuple(fields), tuple(sorted(chosen.items())), norm)
        want = list(self.analyzers().get(analyzer, ()))
        have = self.series.get(key)
        have_epochs = set() if have is None else {int(e) for e in have["epoch"].values}
        if have is not None and have_epochs == set(want):
            return have
        missing = [e for e in want if e not in have_epochs]
        parts = []
        if have is not None and have_epochs & set(want):
            parts.append(have.sel(epoch=[e for e in want if e in have_epochs]))
        if missing:
            parts.append(self._norms(analyzer, fields, chosen, missing) if norm
                         else self._values(analyzer, fields, chosen, missing))
        if not parts:
            result = xr.Dataset({f: ("epoch", np.empty(0)) for f in fields},
                                coords={"epoch": np.empty(0, np.int64)})
        else:
            result = parts[0] if len(parts) == 1 else xr.concat(parts, "epoch").sortby("epoch")
        self.series.put(key, result)
        return result

    def _values(self, analyzer: str, fields: Sequence[str], select: Mapping[str, int],
                epochs: Sequence[int]) -> xr.Dataset:
        lazy = self.loader.load_epochs(analyzer, epochs, chunks=None)[list(fields)]
        for dim, index in select.items():
            lazy = lazy.isel({dim: [index]}).assign_coords({dim: [index]})
        return lazy.load()

    def _norms(self, analyzer: str, fields: Sequence[str], select: Mapping[str, int],
               epochs: Sequence[int]) -> xr.Dataset:
        """The L2 norm of each epoch's (selected) fields, :data:`NORM_BATCH_BYTES` at a time.

        One stacked lazy read per batch of epochs (no per-epoch metadata read, the epochs of
        a batch read together), the selection applied before reading (only its chunks).
        """
        lazy = self.loader.load_epochs(analyzer, epochs, chunks=None)[list(fields)]
        for dim, index in select.items():
            lazy = lazy.isel({dim: index})
        norms = {f: np.empty(len(epochs)) for f in fields}
        for name in fields:
            array = lazy[name]
            per_epoch = max(1, array.dtype.itemsize * math.prod(array.shape[1:]))
            step = max(1, NORM_BATCH_BYTES // per_epoch)
            for start in range(0, len(epochs), step):
                block = np.asarray(array.isel(epoch=slice(start, start + step)).values)
                norms[name][start:start + len(block)] = _l2_norms(block)
        return xr.Dataset({f: ("epoch", v) for f, v in norms.items()},
                          coords={"epoch": np.asarray(epochs, dtype=np.int64)})
