"""Ways of storing one field over many epochs, each with the same write and read operations.

Every format stores the array of one field, one per epoch (shape ``(rows, ...)``; for
``neuron_activations`` a row is a neuron), and implements the reads the benchmarks time:

- :meth:`Format.read_epoch`: one whole epoch;
- :meth:`Format.read_row`: one row of one epoch (the dashboard's one-neuron read);
- :meth:`Format.read_row_across`: one row of many epochs (the notebook's read);
- :meth:`Format.mean_over_epochs`: the mean over epochs of the whole field (a reduction).

The formats:

=====================  ========================================================================
``npy``                one raw ``.npy`` per epoch: the physical reference
``npz``                one ``np.savez_compressed`` file per epoch (the per-epoch "after" design)
``npz_all``            one ``.npz`` holding every epoch (the original "before" design); adding an
                       epoch rewrites the file (:meth:`NpzAllEpochs.append`)
``safetensors``        one ``safetensors`` file per epoch (no compression; memory-mapped reads)
``epochstore``         :class:`~epochstore.ArtifactStore` with a :class:`~epochstore.Codec` and
                       a chunking (rows per chunk; one shard per epoch when there are several)
``zarr``               plain zarr v3 arrays, one per epoch, same codecs, sharded or not (the
                       store always shards several chunks, so unsharded chunks are measured here)
=====================  ========================================================================

Formats are described by a JSON-serialisable :meth:`Format.spec` and rebuilt by
:func:`format_from_spec`, so a fresh process can measure one read's peak memory.
"""

from __future__ import annotations

import math
import shutil
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from epochstore.location import fsync_file
from epochstore.naming import epoch_name
from epochstore.store.codecs import Codec, default_layout

__all__ = [
    "ANALYZER",
    "FIELD",
    "EpochstoreFormat",
    "Format",
    "NpyPerEpoch",
    "NpzAllEpochs",
    "NpzPerEpoch",
    "SafetensorsPerEpoch",
    "ZarrPerEpoch",
    "codec_label",
    "format_from_spec",
    "rows_per_chunk",
]

#: Analyzer and field names the formats store their data under.
ANALYZER = "bench"
FIELD = "values"


def _mean(arrays: Iterable[np.ndarray]) -> np.ndarray:
    """Return the mean of ``arrays`` (at least float32), holding one of them at a time."""
    total: np.ndarray | None = None
    count = 0
    for x in arrays:
        if total is None:
            total = np.array(x, dtype=np.result_type(x.dtype, np.float32))
        else:
            total += x
        count += 1
    if total is None:
        raise ValueError("no epochs to average")
    total /= count
    return total


def codec_label(codec: Codec) -> str:
    """Short name of a codec, e.g. ``"zstd-1 bitshuffle"`` or ``"none"``."""
    if codec.cname is None:
        return "none"
    return f"{codec.cname}-{codec.clevel} {codec.shuffle}"


def rows_per_chunk(shape: Sequence[int], dtype: np.dtype[Any], rows: int | None) -> int:
    """Rows per chunk of the epochstore layout: ``rows``, or the default layout's for ``None``."""
    if not shape:
        return 1
    if rows is None:
        return default_layout(tuple(shape), dtype).chunks[0]
    return max(1, min(int(rows), int(shape[0])))


class Format(ABC):
    """One way of storing a field's epochs.

    Parameters
    ----------
    root
        Directory of this format's files (created).
    name
        Short identifier (table rows, JSON keys).
    label
        Human-readable description.
    fsync
        Make the file formats' writes durable (fsync each file), as the store's are.
    """

    kind: str = ""

    def __init__(self, root: Path, name: str, label: str, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.label = label
        self.fsync = fsync

    # --- writes --------------------------------------------------------------------------

    @abstractmethod
    def write(self, epoch: int, array: np.ndarray) -> None:
        """Store one epoch."""

    # --- reads ---------------------------------------------------------------------------

    @abstractmethod
    def read_epoch(self, epoch: int) -> np.ndarray:
        """Return one whole epoch."""

    @abstractmethod
    def read_row(self, epoch: int, row: int) -> np.ndarray:
        """Return row ``row`` of one epoch."""

    def read_row_across(self, epochs: Sequence[int], row: int) -> np.ndarray:
        """Return row ``row`` of each of ``epochs``, stacked."""
        return np.stack([np.array(self.read_row(e, row)) for e in epochs])

    def mean_over_epochs(self, epochs: Sequence[int]) -> np.ndarray:
        """Return the mean over ``epochs`` of the whole field, one epoch in memory at a time."""
        return _mean(self.read_epoch(e) for e in epochs)

    # --- files ---------------------------------------------------------------------------

    def files(self) -> list[Path]:
        """Every file of this format."""
        return sorted(p for p in self.root.rglob("*") if p.is_file())

    def epoch_files(self, epoch: int) -> list[Path]:
        """The files a read of ``epoch`` touches (for cold-cache reads)."""
        return self.files()

    def disk_usage(self) -> dict[str, int]:
        """Return apparent bytes, allocated bytes and the file count."""
        files = self.files()
        stats = [p.stat() for p in files]
        return {
            "bytes": sum(s.st_size for s in stats),
            "allocated_bytes": sum(getattr(s, "st_blocks", 0) * 512 for s in stats),
            "files": len(files),
        }

    def spec(self) -> dict[str, Any]:
        """JSON-serialisable description, for :func:`format_from_spec`."""
        return {
            "kind": self.kind,
            "root": str(self.root),
            "name": self.name,
            "label": self.label,
            "fsync": self.fsync,
        }

    def delete(self) -> None:
        """Delete every file of this format."""
        shutil.rmtree(self.root, ignore_errors=True)


class _PerEpochFile(Format):
    suffix = ""

    def path(self, epoch: int) -> Path:
        """The file of one epoch."""
        return self.root / f"{epoch_name(epoch)}{self.suffix}"

    def epoch_files(self, epoch: int) -> list[Path]:
        """The one file of ``epoch``."""
        return [self.path(epoch)]

    def _done(self, path: Path) -> None:
        if self.fsync:
            fsync_file(path)


class NpyPerEpoch(_PerEpochFile):
    """One raw ``.npy`` per epoch (``np.save``; one row is a memory-mapped read)."""

    kind = "npy"
    suffix = ".npy"

    def write(self, epoch: int, array: np.ndarray) -> None:
        """Store one epoch with ``np.save``."""
        np.save(self.path(epoch), array)
        self._done(self.path(epoch))

    def read_epoch(self, epoch: int) -> np.ndarray:
        """Read one epoch with ``np.load``."""
        return np.asarray(np.load(self.path(epoch)))

    def read_row(self, epoch: int, row: int) -> np.ndarray:
        """Read one row through ``np.load(mmap_mode="r")``."""
        return np.array(np.load(self.path(epoch), mmap_mode="r")[row])


class NpzPerEpoch(_PerEpochFile):
    """One ``np.savez_compressed`` file per epoch (reading any part inflates the whole epoch)."""

    kind = "npz"
    suffix = ".npz"

    def write(self, epoch: int, array: np.ndarray) -> None:
        """Store one epoch with ``np.savez_compressed``."""
        save: Any = np.savez_compressed
        save(self.path(epoch), **{FIELD: array})
        self._done(self.path(epoch))

    def read_epoch(self, epoch: int) -> np.ndarray:
        """Inflate one epoch."""
        with np.load(self.path(epoch)) as z:
            return np.asarray(z[FIELD])

    def read_row(self, epoch: int, row: int) -> np.ndarray:
        """Inflate the epoch, keep one row (a copy, so the epoch is freed)."""
        return np.array(self.read_epoch(epoch)[row])


class SafetensorsPerEpoch(_PerEpochFile):
    """One ``safetensors`` file per epoch (``safetensors.numpy``; rows via ``get_slice``)."""

    kind = "safetensors"
    suffix = ".safetensors"

    def write(self, epoch: int, array: np.ndarray) -> None:
        """Store one epoch with ``safetensors.numpy.save_file``."""
        from safetensors.numpy import save_file

        save_file({FIELD: np.ascontiguousarray(array)}, str(self.path(epoch)))
        self._done(self.path(epoch))

    def read_epoch(self, epoch: int) -> np.ndarray:
        """Read one epoch with ``safetensors.numpy.load_file``."""
        from safetensors.numpy import load_file

        return np.asarray(load_file(str(self.path(epoch)))[FIELD])

    def read_row(self, epoch: int, row: int) -> np.ndarray:
        """Read one row with ``safe_open(...).get_slice(...)[row]``."""
        from safetensors import safe_open

        with safe_open(str(self.path(epoch)), framework="numpy") as f:
            return np.asarray(f.get_slice(FIELD)[row])


class NpzAllEpochs(Format):
    """One ``.npz`` holding every epoch, one member ``epoch_NNNNN`` each (the "before" design).

    :meth:`write_all` writes the file once from all epochs, like ``np.savez_compressed`` of a
    dict of every epoch (streamed member by member, so only one epoch is in memory).
    :meth:`append` adds one epoch the only way a zip of deflated ``.npy`` members allows with
    numpy: read every existing epoch and write a new file with all of them, then replace the
    old. :meth:`write` is :meth:`append`.
    """

    kind = "npz_all"

    @property
    def path(self) -> Path:
        """The single file."""
        return self.root / "all_epochs.npz"

    def epoch_files(self, epoch: int) -> list[Path]:
        """The single file."""
        return [self.path]

    def _write_members(self, target: Path, members: Iterable[tuple[str, np.ndarray]]) -> None:
        with zipfile.ZipFile(target, mode="w", compression=zipfile.ZIP_DEFLATED) as zf:
            for key, array in members:
                # what np.savez_compressed does for each array
                with zf.open(f"{key}.npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)
        if self.fsync:
            fsync_file(target)

    def write_all(self, epochs: Iterable[tuple[int, np.ndarray]]) -> None:
        """Write the file from ``(epoch, array)`` pairs (replacing any file there was)."""
        tmp = self.path.with_suffix(".tmp.npz")
        self._write_members(tmp, ((epoch_name(e), a) for e, a in epochs))
        tmp.replace(self.path)

    def _existing(self) -> Iterator[tuple[str, np.ndarray]]:
        if not self.path.exists():
            return
        with np.load(self.path) as z:
            for key in z.files:
                yield key, np.asarray(z[key])

    def append(self, epoch: int, array: np.ndarray) -> None:
        """Add (or replace) one epoch: rewrite the whole file with it."""
        key = epoch_name(epoch)
        tmp = self.path.with_suffix(".tmp.npz")

        def members() -> Iterator[tuple[str, np.ndarray]]:
            for name, old in self._existing():
                if name != key:
                    yield name, old
            yield key, array

        self._write_members(tmp, members())
        tmp.replace(self.path)

    def write(self, epoch: int, array: np.ndarray) -> None:
        """Add one epoch (:meth:`append`)."""
        self.append(epoch, array)

    def read_epoch(self, epoch: int) -> np.ndarray:
        """``np.load(file)[key]``: reads the zip directory, inflates that member."""
        with np.load(self.path) as z:
            return np.asarray(z[epoch_name(epoch)])

    def read_row(self, epoch: int, row: int) -> np.ndarray:
        """Inflate the epoch's member, keep one row."""
        return np.array(self.read_epoch(epoch)[row])

    def read_row_across(self, epochs: Sequence[int], row: int) -> np.ndarray:
        """Open the file once and inflate each epoch's member in turn."""
        with np.load(self.path) as z:
            return np.stack([np.asarray(z[epoch_name(e)])[row].copy() for e in epochs])

    def mean_over_epochs(self, epochs: Sequence[int]) -> np.ndarray:
        """Open the file once and sum the members one at a time."""
        with np.load(self.path) as z:
            return _mean(np.asarray(z[epoch_name(e)]) for e in epochs)


class EpochstoreFormat(Format):
    """An :class:`~epochstore.ArtifactStore` with one codec and one chunking.

    Parameters
    ----------
    root, name, label, fsync
        As for :class:`Format` (the store's writes are always durable).
    codec
        The codec of the analyzer.
    rows
        Rows per chunk along the leading axis; ``None`` for the default layout.
    dims
        Dimension names of the field.
    """

    kind = "epochstore"

    def __init__(
        self,
        root: Path,
        name: str,
        label: str,
        *,
        codec: Codec,
        rows: int | None = None,
        dims: Sequence[str] | None = None,
        fsync: bool = True,
    ) -> None:
        super().__init__(root, name, label, fsync=fsync)
        self.codec = codec
        self.rows = rows
        self.dims = tuple(dims) if dims is not None else None
        self._store: Any = None
        self._loader: Any = None

    def spec(self) -> dict[str, Any]:
        """JSON-serialisable description."""
        return {
            **super().spec(),
            "codec": self.codec.to_dict(),
            "rows": self.rows,
            "dims": None if self.dims is None else list(self.dims),
        }

    def write(self, epoch: int, array: np.ndarray) -> None:
        """``ArtifactStore.write_epoch`` (durable: fsync and atomic rename)."""
        from epochstore.store import ArtifactStore

        if self._store is None:
            self._store = ArtifactStore(self.root, codec=self.codec)
        dims = self.dims or tuple(f"dim_{i}" for i in range(array.ndim))
        chunks = None
        if self.rows is not None and array.ndim:
            chunks = {FIELD: (self.rows, *array.shape[1:])}
        self._store.write_epoch(ANALYZER, epoch, {FIELD: array}, dims={FIELD: dims}, chunks=chunks)
        self._loader = None

    @property
    def loader(self) -> Any:
        """An :class:`~epochstore.ArtifactLoader` on the store (opened on first use)."""
        if self._loader is None:
            from epochstore.store import ArtifactLoader

            self._loader = ArtifactLoader(self.root)
        return self._loader

    def _first_dim(self) -> str:
        return str(self.loader.manifest(ANALYZER).fields[FIELD].dims[0])

    def epoch_files(self, epoch: int) -> list[Path]:
        """The metadata of the store and analyzer, and the epoch's node."""
        base = self.root / "artifacts"
        node = base / ANALYZER / epoch_name(epoch)
        meta = [base / "zarr.json", base / ANALYZER / "zarr.json"]
        return [p for p in meta if p.exists()] + sorted(
            p for p in node.rglob("*") if p.is_file()
        )

    def read_epoch(self, epoch: int) -> np.ndarray:
        """``loader.load_epoch(...)[field].values``."""
        return np.asarray(self.loader.load_epoch(ANALYZER, epoch)[FIELD].values)

    def read_row(self, epoch: int, row: int) -> np.ndarray:
        """``loader.load_epoch(...)[field].isel({dim0: row}).values``."""
        ds = self.loader.load_epoch(ANALYZER, epoch)
        return np.asarray(ds[FIELD].isel({self._first_dim(): row}).values)

    def read_row_across(
        self, epochs: Sequence[int], row: int, *, chunks: str | None = None
    ) -> np.ndarray:
        """``loader.load_epochs(..., chunks=chunks)[field].isel({dim0: row}).values``."""
        ds = self.loader.load_epochs(ANALYZER, epochs=list(epochs), chunks=chunks)
        return np.asarray(ds[FIELD].isel({self._first_dim(): row}).values)

    def mean_over_epochs(
        self, epochs: Sequence[int], *, dask: bool = True, chunks: Any = "auto"
    ) -> np.ndarray:
        """``load_epochs(chunks=chunks)[field].mean("epoch")`` (dask), or a loop of epochs.

        ``chunks="auto"`` (the loader's default) gives blocks of about 16 MiB along whole Zarr
        chunks (slabs of epochs on a local store); ``"zarr"`` one dask task per Zarr chunk of
        each epoch; ``{"epoch": 1}`` one task per epoch (the whole field).
        """
        if not dask:
            return super().mean_over_epochs(epochs)
        ds = self.loader.load_epochs(ANALYZER, epochs=list(epochs), chunks=chunks)
        return np.asarray(ds[FIELD].mean("epoch").values)


class ZarrPerEpoch(Format):
    """Plain zarr v3 arrays, one per epoch, with the store's codecs: sharded or unsharded.

    ``ArtifactStore`` always puts several chunks of an epoch's field into one shard; this
    format measures the alternative (``rows`` rows per chunk, one file per chunk) and the same
    sharded layout read by zarr directly, without the store's read path.
    """

    kind = "zarr"

    def __init__(
        self,
        root: Path,
        name: str,
        label: str,
        *,
        codec: Codec,
        rows: int,
        sharded: bool,
        fsync: bool = True,
    ) -> None:
        super().__init__(root, name, label, fsync=fsync)
        self.codec = codec
        self.rows = rows
        self.sharded = sharded

    def spec(self) -> dict[str, Any]:
        """JSON-serialisable description."""
        return {
            **super().spec(),
            "codec": self.codec.to_dict(),
            "rows": self.rows,
            "sharded": self.sharded,
        }

    def path(self, epoch: int) -> Path:
        """The array directory of one epoch."""
        return self.root / f"{epoch_name(epoch)}.zarr"

    def epoch_files(self, epoch: int) -> list[Path]:
        """Every file of the epoch's array."""
        return sorted(p for p in self.path(epoch).rglob("*") if p.is_file())

    def write(self, epoch: int, array: np.ndarray) -> None:
        """``zarr.create_array`` then ``arr[...] = array`` (files fsynced if ``fsync``)."""
        import zarr

        chunks = (self.rows, *array.shape[1:])
        shards = None
        if self.sharded and math.ceil(array.shape[0] / self.rows) > 1:
            shards = (math.ceil(array.shape[0] / self.rows) * self.rows, *array.shape[1:])
        arr = zarr.create_array(
            str(self.path(epoch)),
            shape=array.shape,
            dtype=array.dtype,
            chunks=chunks,
            shards=shards,
            compressors=self.codec.zarr_compressors(),
            fill_value=0,
            config={"write_empty_chunks": True},
            zarr_format=3,
            overwrite=True,
        )
        arr[...] = array
        if self.fsync:
            for p in self.epoch_files(epoch):
                fsync_file(p)

    def _open(self, epoch: int) -> Any:
        import zarr

        return zarr.open_array(str(self.path(epoch)), mode="r", zarr_format=3)

    def read_epoch(self, epoch: int) -> np.ndarray:
        """``zarr.open_array(...)[...]``."""
        return np.asarray(self._open(epoch)[...])

    def read_row(self, epoch: int, row: int) -> np.ndarray:
        """``zarr.open_array(...)[row]``."""
        return np.asarray(self._open(epoch)[row])


_KINDS: dict[str, type[Format]] = {
    cls.kind: cls
    for cls in (
        NpyPerEpoch,
        NpzPerEpoch,
        NpzAllEpochs,
        SafetensorsPerEpoch,
        EpochstoreFormat,
        ZarrPerEpoch,
    )
}


def format_from_spec(spec: dict[str, Any]) -> Format:
    """Rebuild a format from :meth:`Format.spec`."""
    kwargs = {k: v for k, v in spec.items() if k not in ("kind", "root", "name", "label")}
    if "codec" in kwargs:
        kwargs["codec"] = Codec.from_dict(kwargs["codec"])
    cls = _KINDS[spec["kind"]]
    fmt: Format = cls(Path(spec["root"]), spec["name"], spec["label"], **kwargs)
    return fmt
