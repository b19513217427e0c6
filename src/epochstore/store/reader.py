"""Reading an artifact store: listing, manifests and lazy datasets (shared by loader and writer).

Listing epochs is one listing of the analyzer (see :meth:`CommitStrategy.list_epochs`); no
epoch's metadata or chunks are read to list epochs, and once the analyzer's manifest is known a
listing is all :meth:`~_ArtifactView.get_epochs` costs. Datasets are lazy: values are read when
asked for, chunk by chunk.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import xarray as xr
from dask.base import tokenize
from xarray.core import indexing
from zarr.core.sync import sync

from epochstore.errors import (
    AnalyzerNotFoundError,
    EpochNotFoundError,
    ReadOnlyError,
    StoreFormatError,
)
from epochstore.naming import NAME_PATTERN, validate_epoch, validate_name
from epochstore.run import ARTIFACTS_DIR
from epochstore.store.commit import (
    METADATA_KEY,
    EpochListing,
    commit_strategy_for,
    data_node_of,
    key_exists,
)
from epochstore.store.direct import DirectLayout, get_object, local_root
from epochstore.store.lazy import EpochFieldArray, StackedFieldArray, node_path
from epochstore.store.location import LocationLike, open_location
from epochstore.store.manifest import (
    ATTRS_KEY,
    DATA_NODE_KEY,
    FORMAT_VERSION,
    WRITE_TOKEN_KEY,
    AnalyzerManifest,
)
from epochstore.store.series import SERIES_DIR, SERIES_SUFFIX, SeriesCache, has_series
from epochstore.store.versions import FieldVersions, local_directory

if TYPE_CHECKING:
    from zarr.abc.store import Store

__all__ = ["DASK_BLOCK_BYTES", "ArtifactLoader", "ChunksOption"]

#: ``"auto"``: dask blocks of about :data:`DASK_BLOCK_BYTES` along whole Zarr chunks (slabs
#: of many epochs on local stores, whole epochs elsewhere); ``"zarr"``: dask chunks equal to
#: the Zarr chunks (one epoch each); ``None``: no dask, xarray's own lazy indexing; a mapping
#: of dim name to chunk size: passed to ``Dataset.chunk``.
ChunksOption = Literal["auto", "zarr"] | Mapping[str, int] | None

#: Target size of one dask block of ``load_epochs(chunks="auto")``. A task costs ~0.1-0.5 ms of
#: scheduling and an event-loop round trip, so blocks of tens of MB keep that under 1% of the
#: read (one whole p = 113 activation epoch is 26 MB: one epoch per block; a scalar field puts
#: every epoch in one block), while a reduction over epochs holds only a few blocks at a time:
#: 16 MiB (slabs of 16 epochs x 16 neurons of that field, 13 MB) gives the same throughput as
#: 32 MiB with 40% less peak memory (``benchmarks/bench_reads.py``).
DASK_BLOCK_BYTES = 16 * 2**20


def _dask_chunks(
    field_shape: tuple[int, ...], dtype: np.dtype[Any], zarr_chunks: tuple[int, ...],
    n_epochs: int, chunks: Literal["auto", "zarr"], *, slabs: bool = False,
) -> tuple[int, ...]:
    """Dask chunk sizes of one stacked field, always aligned to whole Zarr chunks.

    ``slabs`` (local stores): when the field has several chunks along its leading axis and
    its epochs do not all fit in one block, blocks span as many epochs as fit along whole
    chunks of the leading axis instead of whole epochs (see :data:`DASK_BLOCK_BYTES`).
    """
    if chunks == "zarr":
        return (1, *zarr_chunks)
    epoch_bytes = max(1, dtype.itemsize * math.prod(field_shape))
    split = bool(field_shape) and zarr_chunks[0] < field_shape[0]
    if slabs and split and epoch_bytes * n_epochs > DASK_BLOCK_BYTES:
        # Slabs: a reduction over epochs is done inside each block (its partial results
        # are 1/epochs-per-block of the data, not twice an epoch's size in float64).
        row = max(1, epoch_bytes // field_shape[0] * zarr_chunks[0])  # one chunk row, 1 epoch
        per_block = max(1, min(n_epochs, DASK_BLOCK_BYTES // row))
        rows = max(1, DASK_BLOCK_BYTES // (per_block * row))
        lead = min(field_shape[0], rows * zarr_chunks[0])
        return (per_block, lead, *(max(1, s) for s in field_shape[1:]))
    per_block = max(1, min(n_epochs, DASK_BLOCK_BYTES // epoch_bytes))
    # Whole epochs: each block is a set of whole fields, i.e. whole shards. A selection
    # inside the field (one neuron) is fused into the block's read by dask, so it still reads
    # only the chunks it touches.
    return (per_block, *(max(1, s) for s in field_shape))


async def _list_dir(store: Store, prefix: str) -> list[str]:
    return [name async for name in store.list_dir(prefix)]


async def _get_json(store: Store, key: str) -> dict[str, Any] | None:
    raw = await get_object(store, key)
    if raw is None:
        return None
    data = json.loads(raw.tobytes())
    return data if isinstance(data, dict) else None


def _read_json_now(store: Store, key: str) -> dict[str, Any] | None:
    """A JSON object of the store, or None; a local file is read in this thread (no event
    loop round trip, ~0.2 ms of a full-epoch read)."""
    root = local_root(store)
    if root is None:
        return sync(_get_json(store, key))
    try:
        with (root / key).open("rb") as f:
            raw = f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    data = json.loads(raw)
    return data if isinstance(data, dict) else None


class _ArtifactView:
    """Read access to an artifact store; :class:`ArtifactLoader` and ``ArtifactStore`` share it."""

    _read_only: ClassVar[bool] = True

    def __init__(
        self,
        location: LocationLike,
        *,
        storage_options: Mapping[str, Any] | None = None,
        path: str = ARTIFACTS_DIR,
        series: bool = True,
    ) -> None:
        self._series_enabled = series
        self._location = open_location(
            location, path=path, storage_options=storage_options, read_only=self._read_only
        )
        self._commit = commit_strategy_for(self._location)
        self._manifests: dict[str, AnalyzerManifest] = {}
        self._format_checked = False

    # --- descriptions -----------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The underlying zarr store of the run location."""
        return self._location.store

    @property
    def root_path(self) -> str:
        """Key of the artifact root group inside :attr:`store`."""
        return self._location.prefix

    @property
    def supports_rename(self) -> bool:
        """Whether epochs commit by rename (a local directory) rather than metadata-last."""
        return self._location.local_root is not None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._location.display!r})"

    # --- low-level helpers ------------------------------------------------------------------

    def _list(self, *parts: str) -> list[str]:
        return sync(_list_dir(self._location.store, self._location.key(*parts)))

    def _read_json(self, *parts: str) -> dict[str, Any] | None:
        return _read_json_now(self._location.store, self._location.key(*parts, METADATA_KEY))

    def _check_format(self) -> bool:
        """Return whether the root group exists; refuse an unknown format."""
        root = self._read_json()
        if root is None:
            return False
        if not self._format_checked:
            fmt = root.get("attributes", {}).get("epochstore_format")
            if not isinstance(fmt, int) or fmt > FORMAT_VERSION or fmt < 1:
                raise StoreFormatError(
                    f"{self._location.display} is not an epochstore artifact store this "
                    f"version can read (epochstore_format={fmt!r}, supported: 1..{FORMAT_VERSION})"
                    "; upgrade epochstore, or point at the run's artifacts directory"
                )
            self._format_checked = True
        return True

    def _analyzer_attrs(self, analyzer: str) -> dict[str, Any]:
        validate_name(analyzer, "analyzer name")
        meta = self._read_json(analyzer) if self._check_format() else None
        if meta is None or ATTRS_KEY not in meta.get("attributes", {}):
            raise AnalyzerNotFoundError(
                f"analyzer {analyzer!r} not found in {self._location.display}; available: "
                f"{self.get_available_analyzers()}. Run the pipeline for it, or check the name."
            )
        attrs: dict[str, Any] = meta["attributes"]
        return attrs

    def _manifest(self, analyzer: str) -> AnalyzerManifest:
        cached = self._manifests.get(analyzer)
        if cached is not None:
            return cached
        manifest = AnalyzerManifest.from_attrs(analyzer, self._analyzer_attrs(analyzer))
        if manifest.fields:  # complete manifests never change: cache them
            self._manifests[analyzer] = manifest
        return manifest

    # --- listing ------------------------------------------------------------------------------

    def get_available_analyzers(self) -> list[str]:
        """Return the analyzers in the store, sorted (metadata only).

        An analyzer is listed once its group exists, even before its first epoch.
        """
        if not self._check_format():
            return []
        names = [n for n in self._list() if NAME_PATTERN.fullmatch(n)]
        found = []
        for name in names:
            meta = self._read_json(name)
            if meta is not None and ATTRS_KEY in meta.get("attributes", {}):
                found.append(name)
        return sorted(found)

    def get_epochs(self, analyzer: str) -> list[int]:
        """Return the committed epochs of ``analyzer``, sorted, from one listing of its group.

        No epoch's metadata or chunk is read. Epochs being written (hidden temporary nodes
        locally, epoch prefixes without their group metadata on object stores) are not listed.
        The first call also reads the analyzer's manifest (and the root's format); later calls
        cost the listing alone.

        Raises
        ------
        AnalyzerNotFoundError
            If the store has no such analyzer.
        """
        return self._listing(analyzer).epochs

    def _listing(self, analyzer: str, *, versions: bool = False) -> EpochListing:
        validate_name(analyzer, "analyzer name")
        known = self._format_checked and analyzer in self._manifests
        if not known:
            self._manifest(analyzer)  # raises AnalyzerNotFoundError / StoreFormatError
        listing = self._commit.list_epochs(analyzer, versions=versions)
        if known and not listing.analyzer_exists:  # deleted since its manifest was cached
            self._manifests.pop(analyzer, None)
            self._manifest(analyzer)
            listing = self._commit.list_epochs(analyzer, versions=versions)
        return listing

    def has_epoch(self, analyzer: str, epoch: int) -> bool:
        """Return whether ``epoch`` of ``analyzer`` is committed (one read of its metadata key)."""
        validate_name(analyzer, "analyzer name")
        key = node_path(self._location.prefix, analyzer, validate_epoch(epoch))
        return key_exists(self._location.store, f"{key}/{METADATA_KEY}")

    def manifest(self, analyzer: str) -> AnalyzerManifest:
        """Return the analyzer's manifest (dims, dtypes, shapes, codec, params) and its epochs.

        Metadata only: the analyzer group's attributes and one listing.
        """
        manifest = self._manifest(analyzer)
        return AnalyzerManifest(
            analyzer=manifest.analyzer,
            fields=manifest.fields,
            codec=manifest.codec,
            version=manifest.version,
            params=manifest.params,
            epochs=tuple(self.get_epochs(analyzer)),
            superseded=manifest.superseded,
        )

    # --- loading --------------------------------------------------------------------------------

    def _epoch_not_found(self, analyzer: str, epochs: Iterable[int]) -> EpochNotFoundError:
        available = self.get_epochs(analyzer)
        shown = available if len(available) <= 20 else [*available[:10], "...", *available[-5:]]
        return EpochNotFoundError(
            f"epoch(s) {sorted(epochs)} of analyzer {analyzer!r} not found in "
            f"{self._location.display}; available epochs: {shown}. "
            "Run the pipeline to compute them."
        )

    def load_epoch(self, analyzer: str, epoch: int) -> xr.Dataset:
        """Return one epoch of ``analyzer`` as a lazy ``xarray.Dataset``.

        Each output field is a variable; ``epoch`` is a scalar coordinate and an attribute.
        Values are read when asked for, and only the chunks a selection needs.

        Raises
        ------
        AnalyzerNotFoundError, EpochNotFoundError
            If the analyzer or the epoch does not exist.
        CorruptArtifactError
            When values are read from a damaged chunk.
        """
        manifest = self._manifest(analyzer)
        epoch = validate_epoch(epoch)
        node = node_path(self._location.prefix, analyzer, epoch)
        group = _read_json_now(self._location.store, f"{node}/{METADATA_KEY}")
        if group is None:
            raise self._epoch_not_found(analyzer, [epoch])
        data = self._location.key(analyzer, data_node_of(group, epoch))
        variables = {
            name: xr.Variable(
                field.dims,
                indexing.LazilyIndexedArray(
                    EpochFieldArray(
                        self._location.store,
                        f"{data}/{name}",
                        shape=field.shape,
                        dtype=np.dtype(field.dtype),
                        analyzer=analyzer,
                        field=name,
                        epoch=epoch,
                        display=self._location.display,
                        token=group.get("attributes", {}).get(WRITE_TOKEN_KEY),
                    )
                ),
            )
            for name, field in manifest.fields.items()
        }
        attrs = {
            k: v
            for k, v in group.get("attributes", {}).items()
            if k not in (ATTRS_KEY, WRITE_TOKEN_KEY, DATA_NODE_KEY)
        }
        attrs.update(analyzer=analyzer, epoch=epoch)
        return xr.Dataset(variables, coords={"epoch": epoch}, attrs=attrs)

    def _series(
        self, analyzer: str, field: str, versions: FieldVersions,
        shape: tuple[int, ...], dtype: str,
    ) -> SeriesCache:
        """The derived series of a small field (see :mod:`epochstore.store.series`)."""
        name = f"{field}{SERIES_SUFFIX}"
        root = self._location.local_root
        return SeriesCache(
            self._location.store,
            self._location.key(analyzer, SERIES_DIR, name),
            None if root is None else root / analyzer / SERIES_DIR / name,
            versions,
            shape=shape,
            dtype=np.dtype(dtype),
        )

    def load_epochs(
        self,
        analyzer: str,
        epochs: Sequence[int] | None = None,
        *,
        chunks: ChunksOption = "auto",
    ) -> xr.Dataset:
        """Return many epochs of ``analyzer`` lazily stacked along a leading ``epoch`` dimension.

        Opening reads metadata only (the analyzer's manifest, once per loader, and one listing);
        no epoch is opened until its values are needed. The dataset pickles (its lazy arrays
        carry the store, not data), so it computes on a ``dask.distributed`` cluster too.

        Parameters
        ----------
        analyzer
            The analyzer's name.
        epochs
            The epochs to stack, in the order given; ``None`` stacks every committed epoch.
        chunks
            ``"auto"`` (default): dask-backed blocks of about
            :data:`~epochstore.store.reader.DASK_BLOCK_BYTES` (16 MiB) along whole Zarr chunks:
            every epoch of a scalar in one block; for a large field on a local store, as many
            epochs per block as fit along whole chunks of its leading axis (16 epochs x 16
            neurons of a 26 MB activation field), so a reduction over ``epoch`` is done inside
            each block; on object stores whole epochs (one request per shard). Reductions
            stream block by block, and a selection inside a field (one neuron) is fused into
            each block's read, so it still reads only the chunks it touches. Small fields
            (scalars, per-epoch vectors) are read from their derived series when it is
            current (:mod:`epochstore.store.series`): one read for all epochs. ``"zarr"``:
            one dask chunk per Zarr chunk of one epoch (many small tasks: pick it when one
            epoch of a field is larger than a task should hold, or to spread one epoch over a
            cluster). ``None``: no dask, xarray's lazy indexing (no graph at all: fastest for
            one small selection). A mapping:
            passed to :meth:`xarray.Dataset.chunk`.

        Returns
        -------
        xarray.Dataset
            Variables shaped ``(epoch, *field_dims)`` with ``epoch`` as coordinate.

        Examples
        --------
        >>> ds = loader.load_epochs("neuron_activations")  # doctest: +SKIP
        >>> ds["activations"].sel(neuron=7).values  # reads neuron 7's chunk in each epoch
        ... # doctest: +SKIP
        """
        manifest = self._manifest(analyzer)
        layouts = {
            name: DirectLayout.from_field(
                field.shape, np.dtype(field.dtype), field.layout, manifest.codec
            )
            for name, field in manifest.fields.items()
        }
        small = {
            name for name, layout in layouts.items() if self._series_enabled and has_series(layout)
        }
        local_dir = local_directory(self._location.store)
        if local_dir is not None and self._location.prefix:
            local_dir = f"{local_dir}/{self._location.prefix}"
        listing = self._listing(analyzer, versions=bool(small) and local_dir is None)
        available = listing.epochs
        if epochs is None:
            selected = available
        else:
            selected = [validate_epoch(e) for e in epochs]
            missing = set(selected) - set(available)
            if missing:
                raise self._epoch_not_found(analyzer, missing)
        nodes = [self._location.key(analyzer, listing.data_node(e)) for e in selected]
        variables = {}
        for name, field in manifest.fields.items():
            layout = layouts[name]
            series = None
            if name in small and layout is not None:
                suffix = f"{name}/{layout.key}"
                versions = None
                if listing.versions is not None and listing.key_versions is not None:
                    versions = FieldVersions(
                        suffix, listing.versions, listing.key_versions,
                        data_nodes=listing.data_nodes,
                    )
                elif local_dir is not None:
                    versions = FieldVersions(
                        suffix, local_dir=f"{local_dir}/{analyzer}", data_nodes=listing.data_nodes
                    )
                if versions is not None:
                    series = self._series(analyzer, name, versions, field.shape, field.dtype)
            stacked = StackedFieldArray(
                self._location.store,
                nodes,
                selected,
                shape=field.shape,
                dtype=np.dtype(field.dtype),
                analyzer=analyzer,
                field=name,
                display=self._location.display,
                layout=layout,
                series=series,
            )
            var = xr.Variable(("epoch", *field.dims), indexing.LazilyIndexedArray(stacked))
            if chunks in ("auto", "zarr"):
                sizes = _dask_chunks(
                    field.shape, np.dtype(field.dtype), field.layout.chunks, len(selected),
                    chunks, slabs=local_dir is not None,
                )
                var = var.chunk(
                    dict(zip(("epoch", *field.dims), sizes, strict=True)),
                    name=f"epochstore-{analyzer}-{name}-"
                    + tokenize(self._location.display, analyzer, name, selected),
                )
            variables[name] = var
        ds = xr.Dataset(
            variables,
            coords={"epoch": np.asarray(selected, dtype=np.int64)},
            attrs={"analyzer": analyzer},
        )
        if isinstance(chunks, Mapping):
            ds = ds.chunk(dict(chunks))
        return ds


class ArtifactLoader(_ArtifactView):
    """Read-only access to a run's artifacts: list, inspect and lazily load epochs.

    Parameters
    ----------
    location
        A run directory, an fsspec URL (``"s3://bucket/run"``) or a zarr ``Store``; the Zarr
        root is ``<location>/artifacts`` unless ``path`` says otherwise.
    storage_options
        fsspec options for URLs.
    path
        The artifact root below the run (``"artifacts"``; ``""`` for the location itself).
    series
        Read small fields (scalars, small per-epoch vectors) across epochs from their derived
        series and keep it current (the default): one read for all epochs, and the loader's
        one kind of write, ``<analyzer>/.series/<field>.safetensors``, derived and never the
        source of truth (:mod:`epochstore.store.series`). ``False``: read every epoch from
        its node and write nothing at all (read-only media, audits).

    Examples
    --------
    >>> loader = ArtifactLoader("runs/modadd/p113")  # doctest: +SKIP
    >>> loader.get_epochs("neuron_activations")  # doctest: +SKIP
    [0, 100, 200]
    >>> loader.load_epoch("neuron_activations", 100)["activations"].sel(neuron=7).values
    ... # doctest: +SKIP
    """

    _read_only = True

    def _refuse(self, what: str) -> ReadOnlyError:
        return ReadOnlyError(
            f"{what} through an ArtifactLoader of {self._location.display}: loaders are "
            "read-only; open an ArtifactStore on the same location to write"
        )

    def write_epoch(self, *args: Any, **kwargs: Any) -> None:
        """Refused: loaders are read-only (use :class:`epochstore.ArtifactStore`)."""
        raise self._refuse("cannot write an epoch")

    def delete_epoch(self, *args: Any, **kwargs: Any) -> None:
        """Refused: loaders are read-only (use :class:`epochstore.ArtifactStore`)."""
        raise self._refuse("cannot delete an epoch")
