"""Direct reads of the store's own layout: one field of one epoch, without zarr's chunk loop.

epochstore writes every field in one of two shapes (see :mod:`epochstore.store.codecs`): a
single chunk, or a single *shard* that holds all chunks of the field behind an index. For
those two shapes, with the codecs the store writes (``bytes`` little-endian, optionally Blosc,
optionally CRC32C), this module reads a selection itself:

- the whole field: one GET of the shard, every chunk checked and decoded straight into the
  result (zarr decodes each chunk into its own buffer, then copies it; its per-chunk asyncio
  machinery cost ~0.5 ms per chunk, 3-4x the decode itself);
- a part of it: one ranged GET of the shard index, one ranged GET per chunk the selection
  touches (concurrently), and only those chunks decoded.

The on-disk format is zarr v3's, unchanged (the ``sharding_indexed`` codec's index: ``(offset,
nbytes)`` little-endian uint64 pairs in C order, then the index's CRC32C); any array this
module does not recognise (other codecs, big-endian data, several shards) is read by zarr as
before, so the fast path is an optimisation, never a format. The tests compare both paths on
every layout and selection kind and on damaged data.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import pairwise, product
from pathlib import Path
from typing import TYPE_CHECKING, Any

import google_crc32c
import numpy as np
from numcodecs import blosc
from zarr.abc.store import RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.storage import LocalStore

if TYPE_CHECKING:
    from zarr.abc.store import ByteRequest, Store

    from epochstore.store.codecs import Codec, Layout

__all__ = [
    "DirectLayout",
    "MissingChunkError",
    "checksum",
    "get_object",
    "local_root",
    "normalise_key",
    "outer_index",
    "read_direct",
    "read_field_local",
    "read_rows_local",
    "read_slab_local",
    "read_whole_local",
]

_U64_MAX = 2**64 - 1
#: Fetch the whole shard (one request) instead of its index plus ranges when the selection
#: needs at least this fraction of the chunks.
_WHOLE_SHARD_FRACTION = 0.5
_Key = tuple[Any, ...]
_BLOSC_HEADER = 16
#: Decoded bytes per decoding thread, at least (below it, a thread costs more than it saves).
_SPLIT_BYTES = 4 * 2**20


def _decode_threads() -> int:
    return min(4, os.cpu_count() or 1)


try:  # ~26 GB/s (three interleaved streams of the CPU's crc32 instruction), GIL released
    from crc32c import crc32c as _crc32c
except ImportError:  # pragma: no cover - a dependency; google-crc32c (~6 GB/s) if it is absent
    _crc32c = google_crc32c.value

#: Buffers per ``preadv`` call (the system's ``IOV_MAX``).
_IOV_MAX = min(1024, os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024)
_POOL: tuple[int, ThreadPoolExecutor] | None = None  # (the pid that made it, the pool)
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """The threads that read and decode the halves of a large local field.

    One per process: a forked child (a worker of the pipeline, of dask) inherits the parent's
    pool object but none of its threads, so it makes its own.
    """
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid():
            _POOL = (
                os.getpid(),
                ThreadPoolExecutor(_decode_threads(), thread_name_prefix="epochstore-read"),
            )
        return _POOL[1]


def checksum(data: Any) -> int:
    """CRC32C of a bytes-like object (a C-contiguous array or memoryview, never copied)."""
    return int(_crc32c(data))


class MissingChunkError(OSError):
    """A chunk that every committed epoch has is missing (zarr would return fill values)."""


@dataclass(frozen=True)
class DirectLayout:
    """What :func:`read_direct` needs to know about one stored array.

    Attributes
    ----------
    shape, dtype
        The array.
    chunks
        The chunk shape (the unit of compression and checksum).
    grid
        The shape of the stored object in chunks (``(1, ..., 1)`` when unsharded).
    sharded
        Whether the object is a shard (an index at its end) or a single bare chunk.
    blosc, crc32c
        The chunk codecs after ``bytes``.
    index_crc32c
        Whether the shard index ends with a CRC32C.
    key
        The object's key relative to the array.
    """

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    chunks: tuple[int, ...]
    grid: tuple[int, ...]
    sharded: bool
    blosc: bool
    crc32c: bool
    index_crc32c: bool
    key: str

    @property
    def n_chunks(self) -> int:
        """Number of chunks in the object."""
        return math.prod(self.grid)

    @property
    def index_nbytes(self) -> int:
        """Size of the shard index (with its checksum) in bytes."""
        return 16 * self.n_chunks + (4 if self.index_crc32c else 0)

    @classmethod
    def from_field(
        cls, shape: tuple[int, ...], dtype: np.dtype[Any], layout: Layout, codec: Codec
    ) -> DirectLayout | None:
        """The layout the store's writer gives a field (from the analyzer's manifest).

        Every epoch of an analyzer is written with the manifest's codec and layout, so this is
        each epoch's layout without reading any epoch's metadata.
        """
        dtype = np.dtype(dtype)
        if dtype.kind not in "biuf" or dtype.byteorder == ">":
            return None
        if layout.shards is not None:
            grid = tuple(s // c for s, c in zip(layout.shards, layout.chunks, strict=True))
        else:
            if any(c < s for c, s in zip(layout.chunks, shape, strict=True)):
                return None
            grid = tuple(1 for _ in shape)
        return cls(
            shape=tuple(shape),
            dtype=dtype.newbyteorder("<"),
            chunks=tuple(layout.chunks),
            grid=grid,
            sharded=layout.shards is not None,
            blosc=codec.cname is not None,
            crc32c=codec.checksum,
            index_crc32c=layout.shards is not None,  # the writer's index codecs
            key="/".join(["c", *("0" for _ in shape)]),
        )

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> DirectLayout | None:
        """Return the layout of an array's ``zarr.json``, or None if this module cannot read it."""
        try:
            return cls._parse(meta)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    @classmethod
    def _parse(cls, meta: dict[str, Any]) -> DirectLayout | None:
        if meta.get("zarr_format") != 3 or meta.get("node_type") != "array":
            return None
        if meta.get("storage_transformers"):
            return None
        shape = tuple(int(s) for s in meta["shape"])
        dtype = np.dtype(meta["data_type"])
        if dtype.kind not in "biuf" or meta["chunk_grid"]["name"] != "regular":
            return None
        outer = tuple(int(c) for c in meta["chunk_grid"]["configuration"]["chunk_shape"])
        if len(outer) != len(shape) or any(c < s for c, s in zip(outer, shape, strict=True)):
            return None  # more than one chunk or shard: zarr's general path
        encoding = meta["chunk_key_encoding"]
        if encoding["name"] != "default":
            return None
        separator = encoding.get("configuration", {}).get("separator", "/")
        key = separator.join(["c", *("0" for _ in shape)])
        codecs = meta["codecs"]
        if len(codecs) == 1 and codecs[0]["name"] == "sharding_indexed":
            config = codecs[0]["configuration"]
            chunks = tuple(int(c) for c in config["chunk_shape"])
            if len(chunks) != len(shape) or any(
                o % c for o, c in zip(outer, chunks, strict=True)
            ):
                return None
            if config.get("index_location", "end") != "end":
                return None
            index = [c["name"] for c in config["index_codecs"]]
            if index not in (["bytes"], ["bytes", "crc32c"]):
                return None
            if config["index_codecs"][0].get("configuration", {}).get("endian", "little") != (
                "little"
            ):
                return None
            inner = config["codecs"]
            grid = tuple(o // c for o, c in zip(outer, chunks, strict=True))
            sharded, index_crc = True, index == ["bytes", "crc32c"]
        else:
            inner, chunks, grid = codecs, outer, tuple(1 for _ in shape)
            sharded, index_crc = False, False
        names = [c["name"] for c in inner]
        if not names or names[0] != "bytes":
            return None
        endian = inner[0].get("configuration", {}).get("endian", "little")
        if dtype.itemsize > 1 and endian != "little":
            return None
        rest = names[1:]
        use_blosc = bool(rest) and rest[0] == "blosc"
        if use_blosc:
            rest = rest[1:]
        use_crc = rest == ["crc32c"]
        if rest and not use_crc:
            return None
        return cls(
            shape=shape,
            dtype=dtype.newbyteorder("<"),
            chunks=chunks,
            grid=grid,
            sharded=sharded,
            blosc=use_blosc,
            crc32c=use_crc,
            index_crc32c=index_crc,
            key=key,
        )


def _checked(data: np.ndarray, what: str) -> np.ndarray:
    """Strip and verify a trailing CRC32C."""
    if data.size < 4:
        raise ValueError(f"{what} is truncated ({data.size} bytes)")
    body = data[:-4]
    stored = int(data[-4:].view("<u4")[0])
    if checksum(body) != stored:
        raise ValueError(f"{what} does not match its CRC32C checksum")
    return body


def _normalise(key: _Key, shape: tuple[int, ...]) -> list[int | np.ndarray | slice]:
    """Pad an outer-indexing key to full rank; negative and out-of-range ints are resolved."""
    if len(key) > len(shape):
        raise IndexError(f"too many indices ({len(key)}) for an array of rank {len(shape)}")
    out: list[int | np.ndarray | slice] = []
    for k, n in zip((*key, *(slice(None),) * (len(shape) - len(key))), shape, strict=True):
        if isinstance(k, slice):
            out.append(slice(*k.indices(n)))
        elif isinstance(k, (np.ndarray, Sequence)):
            idx = np.asarray(k, dtype=np.intp).ravel()
            idx = np.where(idx < 0, idx + n, idx)
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise IndexError(f"index out of range for a dimension of size {n}")
            out.append(idx)
        else:
            i = int(k)
            i = i + n if i < 0 else i
            if not 0 <= i < n:
                raise IndexError(f"index {k} out of range for a dimension of size {n}")
            out.append(i)
    return out


def _chunks_touched(k: int | np.ndarray | slice, size: int) -> np.ndarray:
    """Sorted indices of the chunks (of ``size`` along one axis) that ``k`` selects from."""
    if isinstance(k, slice):
        r = range(k.start, k.stop, k.step)
        if not r:
            return np.empty(0, dtype=np.intp)
        lo, hi = min(r[0], r[-1]), max(r[0], r[-1])
        if abs(k.step) <= size:  # no chunk in between is skipped
            return np.arange(lo // size, hi // size + 1, dtype=np.intp)
        return np.unique(np.arange(lo, hi + 1, abs(k.step), dtype=np.intp) // size)
    if isinstance(k, np.ndarray):
        return np.unique(k // size)
    return np.array([k // size], dtype=np.intp)


def _apply(block: np.ndarray, key: list[int | np.ndarray | slice], origin: list[int]) -> np.ndarray:
    """Outer-index ``block`` (whose element 0 sits at ``origin``) with ``key``."""
    result = block
    axis = 0
    for k, o in zip(key, origin, strict=True):
        if isinstance(k, slice):
            start, stop = k.start - o, k.stop - o
            end = None if k.step < 0 and stop < 0 else stop  # ran down past element 0
            result = result[(slice(None),) * axis + (slice(start, end, k.step),)]
            axis += 1
        elif isinstance(k, np.ndarray):
            result = np.take(result, k - o, axis=axis)
            axis += 1
        else:
            result = result[(slice(None),) * axis + (k - o,)]
    return result


def _read_file(path: Path, byte_range: ByteRequest | None) -> np.ndarray:
    """Read (part of) a local file into a fresh array, in the calling thread."""
    with path.open("rb", buffering=0) as f:
        if byte_range is None:
            start, stop = 0, os.fstat(f.fileno()).st_size
        else:
            size = os.fstat(f.fileno()).st_size
            if isinstance(byte_range, RangeByteRequest):
                start, stop = byte_range.start, min(byte_range.end, size)
            elif isinstance(byte_range, SuffixByteRequest):
                start, stop = max(0, size - byte_range.suffix), size
            else:  # pragma: no cover - this module asks for no other kind
                raise TypeError(f"unexpected byte range {byte_range!r}")
        data = np.empty(max(0, stop - start), dtype=np.uint8)
        f.seek(start)
        got = f.readinto(data.data) if data.size else 0
    return data[: got or 0]


async def get_object(store: Store, key: str) -> np.ndarray | None:
    """Return a whole object's bytes (as uint8), or None if it does not exist."""
    try:
        return await _get(store, key)
    except MissingChunkError:
        return None


async def _get(store: Store, key: str, byte_range: ByteRequest | None = None) -> np.ndarray:
    if type(store) is LocalStore:
        # A local file is read here, in one system call into a fresh array: zarr's LocalStore
        # hops to a thread per read (~0.1-0.2 ms), which for a small field read across 1,000
        # epochs cost more than the reads themselves.
        try:
            return _read_file(store.root / key, byte_range)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise MissingChunkError(f"chunk {key!r} is missing") from None
    buf = await store.get(key, prototype=default_buffer_prototype(), byte_range=byte_range)
    if buf is None:
        raise MissingChunkError(f"chunk {key!r} is missing")
    return np.asarray(buf.as_numpy_array()).view(np.uint8)


def _decode_into(layout: DirectLayout, data: np.ndarray, target: np.ndarray, what: str) -> None:
    """Decode one stored chunk into ``target`` (a C-contiguous chunk-shaped array)."""
    if layout.crc32c:
        data = _checked(data, what)
    if layout.blosc:
        if data.size < _BLOSC_HEADER:
            raise ValueError(f"{what} is truncated ({data.size} bytes)")
        nbytes = int(data[4:8].view("<u4")[0])  # the Blosc header: uncompressed size
        if nbytes != target.nbytes:
            raise ValueError(f"{what} decompresses to {nbytes} bytes, expected {target.nbytes}")
        blosc.decompress(data, target)
        return
    if data.size != target.nbytes:
        raise ValueError(f"{what} has {data.size} bytes, expected {target.nbytes}")
    target.reshape(-1).view(np.uint8)[:] = data


def _decode_all(
    layout: DirectLayout,
    pieces: dict[tuple[int, ...], np.ndarray],
    block: np.ndarray,
    lo: tuple[int, ...],
    where: str,
) -> None:
    """Decode each chunk at grid coordinates ``coords`` into its place in ``block``."""
    c = layout.chunks
    scratch: np.ndarray | None = None
    for coords, data in pieces.items():
        region: tuple[Any, ...] = tuple(
            slice((g - low) * size, (g - low + 1) * size)
            for g, low, size in zip(coords, lo, c, strict=True)
        )
        target = block[(*region, Ellipsis)]  # a view, even of a 0-d block
        what = f"chunk {coords} of {where}"
        if target.flags.c_contiguous:
            _decode_into(layout, data, target, what)
        else:
            if scratch is None:
                scratch = np.empty(c, dtype=layout.dtype)
            _decode_into(layout, data, scratch, what)
            target[...] = scratch


async def read_direct(store: Store, path: str, layout: DirectLayout, key: _Key) -> np.ndarray:
    """Read ``key`` (outer indexing, as ``get_orthogonal_selection``) of the array at ``path``.

    Returns the same values as zarr. Raises :class:`ValueError` for a damaged object
    (checksum, truncation, a bad index), :class:`MissingChunkError` when the object or one of
    its chunks is missing, and :class:`IndexError` for an invalid key.
    """
    shape, c = layout.shape, layout.chunks
    sel = _normalise(key, shape)
    needed_per_axis = [_chunks_touched(k, size) for k, size in zip(sel, c, strict=True)]
    if any(n.size == 0 for n in needed_per_axis):  # an empty selection reads nothing
        nothing = np.broadcast_to(np.zeros((), dtype=layout.dtype.newbyteorder("=")), shape)
        return np.array(_apply(nothing, sel, [0] * len(shape)))
    lo = tuple(int(n[0]) for n in needed_per_axis)
    hi = tuple(int(n[-1]) + 1 for n in needed_per_axis)
    needed = [tuple(int(g) for g in coords) for coords in product(*needed_per_axis)]
    object_key = f"{path}/{layout.key}"
    where = f"{object_key!r}"
    pieces: dict[tuple[int, ...], np.ndarray] = {}
    if not layout.sharded:
        pieces[(0,) * len(shape)] = await _get(store, object_key)
    else:
        n = layout.n_chunks
        whole = len(needed) >= _WHOLE_SHARD_FRACTION * n
        if whole:
            raw = await _get(store, object_key)
            if raw.size < layout.index_nbytes:
                raise ValueError(f"shard {where} is truncated ({raw.size} bytes)")
            index_bytes = raw[raw.size - layout.index_nbytes :]
        else:
            index_bytes = await _get(store, object_key, SuffixByteRequest(layout.index_nbytes))
            if index_bytes.size != layout.index_nbytes:
                raise ValueError(f"shard {where} is truncated ({index_bytes.size} bytes)")
        if layout.index_crc32c:
            index_bytes = _checked(index_bytes, f"the index of shard {where}")
        index = np.ascontiguousarray(index_bytes).view("<u8").reshape(*layout.grid, 2)
        limit = raw.size - layout.index_nbytes if whole else None  # the chunks' end, if known
        spans: dict[tuple[int, ...], tuple[int, int]] = {}
        for coords in needed:
            offset, nbytes = (int(v) for v in index[coords])
            if offset == _U64_MAX and nbytes == _U64_MAX:
                raise MissingChunkError(f"chunk {coords} of shard {where} is missing")
            end = offset + nbytes
            if limit is not None and end > limit:
                raise ValueError(f"chunk {coords} of shard {where} lies outside the shard")
            spans[coords] = (offset, end)
        if whole:
            pieces = {coords: raw[a:b] for coords, (a, b) in spans.items()}
        else:
            got = await asyncio.gather(
                *(_get(store, object_key, RangeByteRequest(a, b)) for a, b in spans.values())
            )
            for (coords, (a, b)), data in zip(spans.items(), got, strict=True):
                if data.size != b - a:
                    raise ValueError(f"chunk {coords} of shard {where} is truncated")
                pieces[coords] = data
    block_shape = tuple((h - low) * size for h, low, size in zip(hi, lo, c, strict=True))
    block = np.empty(block_shape, dtype=layout.dtype)
    # Decoding releases the GIL: a large read is split over the cores (a whole p = 113 epoch
    # decodes in ~4.7 ms on two threads instead of ~9 ms on one).
    # A small read decodes on the event loop: a thread hop costs more (~0.2 ms) than it saves.
    decoded = len(pieces) * math.prod(c) * layout.dtype.itemsize
    if decoded < _SPLIT_BYTES:
        _decode_all(layout, pieces, block, lo, where)
    else:
        parts = max(1, min(_decode_threads(), len(pieces), decoded // _SPLIT_BYTES))
        items = list(pieces.items())
        await asyncio.gather(
            *(
                asyncio.to_thread(_decode_all, layout, dict(items[i::parts]), block, lo, where)
                for i in range(parts)
            )
        )
    origin = [low * size for low, size in zip(lo, c, strict=True)]
    full = all(
        isinstance(k, slice) and k.step == 1 and k.start == 0 and k.stop == s
        for k, s in zip(sel, shape, strict=True)
    )
    exact = all(  # the selection is the decoded block itself (whole chunks)
        isinstance(k, slice) and k.step == 1 and k.start == low * size
        and k.stop == low * size + extent
        for k, low, size, extent in zip(sel, lo, c, block_shape, strict=True)
    )
    if (full and block_shape == shape) or exact:
        result = block
    else:
        # A copy, never a view: a view would keep the whole decoded block alive (one neuron
        # across 95 epochs would hold 95 blocks of 16 neurons, ~80 MB, instead of 5 MB).
        result = np.array(_apply(block, sel, origin), order="C", copy=True)
    return result.astype(layout.dtype.newbyteorder("="), copy=False)


def local_root(store: Store) -> Path | None:
    """The directory of a plain local store (read here without zarr), else None."""
    return store.root if type(store) is LocalStore else None


def read_whole_local(
    root: Path, paths: Sequence[str], layout: DirectLayout, out: np.ndarray
) -> list[int]:
    """Read the whole single-chunk field at each of ``paths`` into ``out[i]``, in this thread.

    The fast path for a small field (a scalar, a per-epoch vector) across many epochs of a
    local store: one ``open``/``read`` per epoch and no event-loop round trip, ~20 us per
    epoch where the general path costs ~0.3 ms. ``out`` is C-contiguous, shaped
    ``(len(paths), *layout.shape)``.

    Returns the positions that could not be read (missing, damaged, another layout); the
    caller reads those the careful way, which names the damage.
    """
    if layout.sharded:
        raise ValueError("read_whole_local reads single-chunk fields only")
    flat = out.reshape(len(paths), -1).view(np.uint8)
    expected = flat.shape[1]
    if expected == 0:  # an empty field has no chunk
        return []
    limit = expected + _BLOSC_HEADER + 64 + (4 if layout.crc32c else 0)
    failed = []
    for i, path in enumerate(paths):
        try:
            fd = os.open(f"{root}/{path}/{layout.key}", os.O_RDONLY)
            try:
                raw = os.read(fd, limit + 1)
            finally:
                os.close(fd)
            if len(raw) > limit:
                raise ValueError("larger than its field")
            _decode_into(layout, np.frombuffer(raw, dtype=np.uint8), flat[i], path)
        except (OSError, ValueError, RuntimeError, TypeError):
            failed.append(i)
    return failed


def _read_index(fd: int, size: int, layout: DirectLayout) -> np.ndarray:
    """The shard index of an open local shard, checked: ``(n_chunks, 2)`` offsets and sizes."""
    if size < layout.index_nbytes:
        raise ValueError("truncated")
    raw = np.empty(layout.index_nbytes, dtype=np.uint8)
    if os.preadv(fd, [raw.data], size - layout.index_nbytes) != raw.size:
        raise ValueError("short read of the shard index")
    if layout.index_crc32c:
        raw = _checked(raw, "the shard index")
    return raw.view("<u8").reshape(layout.n_chunks, 2)


def _preadv_all(fd: int, buffers: list[np.ndarray], offset: int) -> None:
    """Fill ``buffers`` (in order) from ``offset`` of ``fd``, ``IOV_MAX`` at a time."""
    for i in range(0, len(buffers), _IOV_MAX):
        batch = buffers[i : i + _IOV_MAX]
        want = sum(b.nbytes for b in batch)
        if os.preadv(fd, [b.data for b in batch], offset) != want:
            raise ValueError("short read")
        offset += want


def _read_chunks(
    fd: int, limit: int, layout: DirectLayout, spans: np.ndarray, targets: Sequence[np.ndarray]
) -> None:
    """Read, check and decode the chunks at ``spans`` (offset, nbytes) into ``targets``.

    ``targets`` are C-contiguous uint8 views of each chunk's place in the result; ``limit`` is
    where the chunks end (the shard index's start). Uncompressed chunks are read straight into
    their targets (one ``preadv`` per run of adjacent chunks, the checksums into a side
    buffer) and checked there; Blosc chunks are read one by one into one reused buffer,
    checked and decompressed into their targets. Raises ValueError/OSError on any damage.
    """
    if not targets:
        return
    if (spans == _U64_MAX).any():
        raise ValueError("a chunk is missing")
    offsets = spans[:, 0].astype(np.int64)
    ends = offsets + spans[:, 1].astype(np.int64)
    if int(offsets.min()) < 0 or int(ends.max()) > limit:
        raise ValueError("a chunk lies outside the shard")
    tail = 4 if layout.crc32c else 0
    if not layout.blosc:
        if any(int(n) != t.nbytes + tail for n, t in zip(spans[:, 1], targets, strict=True)):
            raise ValueError("a chunk has the wrong size")
        crcs = np.empty((len(targets), max(tail, 1)), dtype=np.uint8)
        order = np.argsort(offsets, kind="stable")
        run: list[np.ndarray] = []
        run_start = run_end = -1
        for k in order.tolist():
            if run and int(offsets[k]) != run_end:
                _preadv_all(fd, run, run_start)
                run = []
            if not run:
                run_start = int(offsets[k])
            run.append(targets[k])
            if tail:
                run.append(crcs[k, :tail])
            run_end = int(ends[k])
        _preadv_all(fd, run, run_start)
        if tail:
            stored = crcs.view("<u4")[:, 0]
            for k, target in enumerate(targets):
                if checksum(target) != int(stored[k]):
                    raise ValueError(f"chunk {k} does not match its CRC32C checksum")
        return
    # One read per chunk into one reused buffer: the compressed bytes stay in the core's cache
    # for their checksum and decompression (~6% faster for a 26 MB epoch than one read of all
    # the chunks into a fresh buffer, measured interleaved; the extra system calls cost less).
    buffer = np.empty(int(spans[:, 1].max()), dtype=np.uint8)
    for k, target in enumerate(targets):
        piece = buffer[: int(spans[k, 1])]
        _preadv_all(fd, [piece], int(offsets[k]))
        _decode_into(layout, piece, target, f"chunk {k}")


def _chunk_targets(layout: DirectLayout, out: np.ndarray) -> list[np.ndarray] | None:
    """uint8 views of each chunk's place in ``out`` (grid in C order), or None when a chunk
    is not a whole C-contiguous region of ``out`` (an edge chunk, chunks across an axis)."""
    targets = []
    for coords in product(*(range(g) for g in layout.grid)):
        region: tuple[Any, ...] = tuple(
            slice(g * size, (g + 1) * size) for g, size in zip(coords, layout.chunks, strict=True)
        )
        target = out[(*region, Ellipsis)]
        if target.shape != layout.chunks or not target.flags.c_contiguous:
            return None
        targets.append(target.reshape(-1).view(np.uint8))
    return targets


def read_field_local(root: Path, path: str, layout: DirectLayout, out: np.ndarray) -> bool:
    """Read the whole field at ``path`` of a local store into ``out``, in this thread.

    The full-epoch read: one ``open``, one read of the shard index, and the chunks read
    straight into their places in ``out`` (uncompressed: ``preadv`` into ``out``'s memory,
    then each chunk's CRC32C computed there; Blosc: each chunk read into one reused buffer,
    checked and decompressed into its place), no event loop and no copy. A field above 8 MiB
    is read in two halves on two threads (reading, checksums and decompression release the
    GIL). ``out`` is C-contiguous, shaped ``layout.shape``, of ``layout.dtype``.

    Returns False when the field could not be read this way (missing, damaged, another
    layout): the caller reads it the careful way, which names the damage.
    """
    targets = _chunk_targets(layout, out)
    if targets is None or not out.flags.c_contiguous:
        return False
    try:
        fd = os.open(f"{root}/{path}/{layout.key}", os.O_RDONLY)
    except OSError:
        return False
    try:
        size = os.fstat(fd).st_size
        if layout.sharded:
            spans = _read_index(fd, size, layout)
            limit = size - layout.index_nbytes
        else:
            spans = np.array([[0, size]], dtype=np.uint64)
            limit = size
        n = len(targets)
        parts = min(_decode_threads(), n, out.nbytes // (2 * _SPLIT_BYTES))
        if parts <= 1:
            _read_chunks(fd, limit, layout, spans, targets)
        else:
            bounds = [n * i // parts for i in range(parts + 1)]
            futures = [
                _pool().submit(_read_chunks, fd, limit, layout, spans[a:b], targets[a:b])
                for a, b in pairwise(bounds)
            ]
            wait(futures)  # every thread is done with ``fd`` before it is closed
            for future in futures:
                future.result()
    except (OSError, ValueError, RuntimeError, TypeError):
        return False
    finally:
        os.close(fd)
    return True


def _read_rows_into(
    root: Path, path: str, layout: DirectLayout, first: int, targets: Sequence[np.ndarray]
) -> None:
    """Read chunks ``first .. first + len(targets)`` of the leading axis of the shard at
    ``path`` into ``targets`` (one open, one read of the index; raises on any damage)."""
    fd = os.open(f"{root}/{path}/{layout.key}", os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        spans = _read_index(fd, size, layout)[first : first + len(targets)]
        _read_chunks(fd, size - layout.index_nbytes, layout, spans, targets)
    finally:
        os.close(fd)


def read_rows_local(
    root: Path,
    paths: Sequence[str],
    layout: DirectLayout,
    key: list[int | np.ndarray | slice],
    out: np.ndarray,
) -> list[int]:
    """Read ``key`` (outer indexing, from :func:`normalise_key`) of the shard at each of
    ``paths`` into ``out[i]``: a part of each epoch, e.g. one neuron across epochs.

    Per epoch: one ``open``, one read of the shard index, one read of each chunk the leading
    axis selection touches, checked and decoded into a scratch block that each thread reuses,
    then the selection copied out. Chunks must span every axis but the leading one (the
    writer's layout). Epochs are split over the read threads when there is enough to decode
    (a 16-neuron chunk of a p = 113 run decodes in ~0.3 ms: one neuron across 16 epochs is
    ~5 ms of decoding), so one neuron across epochs uses both cores.

    Returns the positions that could not be read (missing, damaged, laid out otherwise); the
    caller reads those the careful way, which names the damage.
    """
    c0 = layout.chunks[0]
    touched = _chunks_touched(key[0], c0)
    if touched.size == 0:
        return []
    first, last = int(touched.min()), int(touched.max()) + 1
    origin = [first * c0] + [0] * (len(layout.shape) - 1)
    block_shape = ((last - first) * c0, *layout.shape[1:])

    def work(positions: range) -> list[int]:
        block = np.empty(block_shape, dtype=layout.dtype)
        targets = [block[k * c0 : (k + 1) * c0].reshape(-1).view(np.uint8)
                   for k in range(last - first)]
        failed = []
        for i in positions:
            try:
                _read_rows_into(root, paths[i], layout, first, targets)
                out[i] = _apply(block, key, origin)
            except (OSError, ValueError, RuntimeError, TypeError):
                failed.append(i)
        return failed

    n = len(paths)
    decoded = n * math.prod(block_shape) * layout.dtype.itemsize
    parts = max(1, min(_decode_threads(), n, decoded // _SPLIT_BYTES))
    if parts == 1:
        return work(range(n))
    futures = [_pool().submit(work, range(i, n, parts)) for i in range(parts)]
    return sorted(i for future in futures for i in future.result())


def read_slab_local(
    root: Path, paths: Sequence[str], layout: DirectLayout, lead: slice, out: np.ndarray
) -> list[int]:
    """Read whole chunks ``lead`` of the leading axis of the shard at each of ``paths``.

    The block reader of a local store's dask slabs (see ``load_epochs``): per epoch one
    ``open``, one read of the shard index and one read of the contiguous bytes of the chunks
    ``lead`` covers (uncompressed chunks straight into ``out[i]``), each chunk checked and
    decoded into its place in ``out[i]``, all in the calling thread (a dask worker's), so the
    workers' blocks proceed in parallel. ``lead`` is aligned to whole chunks, and the chunks
    span every other axis (the writer's layout).

    Returns the positions that could not be read (missing, damaged, laid out otherwise); the
    caller reads those the careful way, which names the damage.
    """
    c0 = layout.chunks[0]
    first, last = lead.start // c0, -(-lead.stop // c0)
    failed = []
    for i, path in enumerate(paths):
        targets = [
            out[i, k * c0 : (k + 1) * c0].reshape(-1).view(np.uint8)
            for k in range(last - first)
        ]
        try:
            _read_rows_into(root, path, layout, first, targets)
        except (OSError, ValueError, RuntimeError, TypeError):
            failed.append(i)
    return failed


def normalise_key(key: _Key, shape: tuple[int, ...]) -> list[int | np.ndarray | slice]:
    """Pad an outer-indexing key to full rank (negative ints resolved, ranges checked)."""
    return _normalise(key, shape)


def outer_index(array: np.ndarray, key: list[int | np.ndarray | slice]) -> np.ndarray:
    """Outer-index ``array`` with a key from :func:`normalise_key`; a copy, never a view."""
    return np.array(_apply(array, key, [0] * array.ndim), order="C", copy=True)
