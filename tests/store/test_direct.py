"""The direct read path equals zarr's on every layout the store writes, and fails the same way."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from zarr.core.sync import sync
from zarr.storage import LocalStore

from epochstore import ArtifactLoader, ArtifactStore
from epochstore.errors import CorruptArtifactError
from epochstore.store import direct
from epochstore.store.codecs import Codec
from epochstore.store.direct import (
    DirectLayout,
    MissingChunkError,
    checksum,
    read_direct,
    read_field_local,
)
from epochstore.store.instrumented import CountingStore

ANALYZER = "acts"
FIELD = "values"

# (shape, dtype, chunks, codec)
LAYOUTS: dict[str, tuple[tuple[int, ...], str, tuple[int, ...] | None, Codec]] = {
    "default sharded, ragged last chunk": ((40, 9, 7), "float32", (16, 9, 7), Codec()),
    "two chunked axes": ((40, 9, 7), "float32", (16, 4, 7), Codec()),
    "one chunk, unsharded": ((6, 5), "float64", None, Codec()),
    "no compression": ((33, 4), "int64", (8, 4), Codec(cname=None)),
    "no checksum": ((33, 4), "int32", (8, 4), Codec(checksum=False)),
    "zstd shuffle": ((33, 4), "float32", (8, 4), Codec(cname="zstd", shuffle="shuffle")),
    "bool": ((20, 3), "bool", (8, 3), Codec()),
    "1-d": ((50,), "uint8", (16,), Codec()),
    "0-d": ((), "float32", None, Codec()),
}



def _data(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    rng = np.random.default_rng(sum(shape) + len(dtype))
    values = np.asarray(rng.standard_normal(shape) * 100)
    values[values < 0] = 0  # ReLU-like, as the store's typical data
    return values.astype(dtype)


@pytest.fixture(params=sorted(LAYOUTS))
def written(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, np.ndarray]]:
    shape, dtype, chunks, codec = LAYOUTS[request.param]
    data = _data(shape, dtype)
    store = ArtifactStore(tmp_path, codec=codec)
    dims = tuple(f"d{i}" for i in range(len(shape)))
    store.write_epoch(
        ANALYZER, 3, {FIELD: data}, dims={FIELD: dims},
        chunks=None if chunks is None else {FIELD: chunks},
    )
    return str(tmp_path), data


def _array_path(root: str) -> str:
    return f"{ANALYZER}/epoch_00003/{FIELD}"


def _layout(root: str) -> DirectLayout:
    meta = json.loads((Path(root) / "artifacts" / _array_path(root) / "zarr.json").read_text())
    layout = DirectLayout.from_metadata(meta)
    assert layout is not None, "the store's own layouts are all read directly"
    return layout


def _keys_for(shape: tuple[int, ...]) -> list[tuple[Any, ...]]:
    if not shape:
        return [()]
    n = shape[0]
    keys: list[tuple[Any, ...]] = [
        (),
        (0,),
        (-1,),
        (slice(3, n - 2, 4),),
        (slice(None, None, -3),),
        (np.array([0, n - 1, n // 2, n - 1]),),
        (slice(5, 5),),
        (np.array([], dtype=np.intp),),
    ]
    if len(shape) >= 2:
        keys += [(slice(None), 2), (4, slice(1, 3)), (np.array([1, n - 3]), np.array([0, 2]))]
    return keys


def test_direct_reads_equal_zarr_reads(written: tuple[str, np.ndarray]) -> None:
    root, data = written
    store = LocalStore(Path(root) / "artifacts", read_only=True)
    layout = _layout(root)
    array = zarr.open_array(store=store, path=_array_path(root), mode="r")
    for key in _keys_for(data.shape):
        got = sync(read_direct(store, _array_path(root), layout, key))
        if any(isinstance(k, slice) and (k.step or 1) < 0 for k in key):
            expected = data[key]  # zarr refuses negative steps; numpy is the reference
        else:
            expected = np.asarray(array.get_orthogonal_selection(key) if key else array[...])
        assert got.dtype == expected.dtype, key
        np.testing.assert_array_equal(got, expected, err_msg=str(key))
        assert got.flags.c_contiguous
        assert got.flags.writeable


def test_loader_values_equal_the_written_arrays(written: tuple[str, np.ndarray]) -> None:
    root, data = written
    ds = ArtifactLoader(root).load_epoch(ANALYZER, 3)
    np.testing.assert_array_equal(ds[FIELD].values, data)
    if data.ndim:
        np.testing.assert_array_equal(ds[FIELD][-1].values, data[-1])


def _write_sharded(root: Path, codec: Codec | None = None) -> np.ndarray:
    """Write epoch 3 of a (64, 9, 7) field in one shard of 8 chunks; return its values."""
    data = _data((64, 9, 7), "float32")
    ArtifactStore(root, codec=codec or Codec()).write_epoch(
        ANALYZER, 3, {FIELD: data}, dims={FIELD: ("n", "a", "b")}, chunks={FIELD: (8, 9, 7)}
    )
    return data


@pytest.fixture
def sharded(tmp_path: Path) -> tuple[Path, np.ndarray]:
    return tmp_path, _write_sharded(tmp_path)


def test_a_whole_field_is_one_request_and_a_row_is_two(sharded: tuple[Path, np.ndarray]) -> None:
    root, data = sharded
    counting = CountingStore(LocalStore(root, read_only=True))
    ds = ArtifactLoader(counting).load_epoch(ANALYZER, 3)
    shard = next((root / "artifacts" / _array_path(str(root))).rglob("c/0/0/0"))
    counting.reset()
    np.testing.assert_array_equal(ds[FIELD].values, data)
    assert sum(counting.chunk_reads.values()) == 1  # the whole shard, once
    assert counting.bytes_read == shard.stat().st_size
    counting.reset()
    np.testing.assert_array_equal(ds[FIELD][9].values, data[9])
    assert sum(counting.chunk_reads.values()) == 2  # the shard index, then one chunk
    assert counting.bytes_read < shard.stat().st_size / 4


def _shard(root: Path) -> Path:
    return root / "artifacts" / _array_path(str(root)) / "c" / "0" / "0" / "0"


@pytest.mark.parametrize("where", ["chunk", "index"])
def test_a_flipped_byte_is_an_error_never_a_value(
    sharded: tuple[Path, np.ndarray], where: str
) -> None:
    root, _ = sharded
    shard = _shard(root)
    raw = bytearray(shard.read_bytes())
    raw[100 if where == "chunk" else len(raw) - 10] ^= 0xFF
    shard.write_bytes(bytes(raw))
    store = LocalStore(root / "artifacts", read_only=True)
    layout = _layout(str(root))
    with pytest.raises(ValueError, match="checksum"):
        sync(read_direct(store, _array_path(str(root)), layout, ()))
    with pytest.raises(CorruptArtifactError, match="epoch 3"):
        _ = ArtifactLoader(root).load_epoch(ANALYZER, 3)[FIELD].values


def test_a_truncated_shard_is_an_error(sharded: tuple[Path, np.ndarray]) -> None:
    root, _ = sharded
    shard = _shard(root)
    shard.write_bytes(shard.read_bytes()[:300])
    loader = ArtifactLoader(root)
    with pytest.raises(CorruptArtifactError):
        _ = loader.load_epoch(ANALYZER, 3)[FIELD].values
    with pytest.raises(CorruptArtifactError):
        _ = loader.load_epoch(ANALYZER, 3)[FIELD][0].values


def test_a_missing_shard_is_an_error(sharded: tuple[Path, np.ndarray]) -> None:
    root, _ = sharded
    _shard(root).unlink()
    store = LocalStore(root / "artifacts", read_only=True)
    with pytest.raises(MissingChunkError):
        sync(read_direct(store, _array_path(str(root)), _layout(str(root)), (0,)))
    with pytest.raises(CorruptArtifactError):
        _ = ArtifactLoader(root).load_epoch(ANALYZER, 3)[FIELD].values


def test_a_chunk_the_index_marks_empty_is_an_error(sharded: tuple[Path, np.ndarray]) -> None:
    root, _ = sharded
    shard = _shard(root)
    raw = bytearray(shard.read_bytes())
    layout = _layout(str(root))
    body = len(raw) - layout.index_nbytes
    index = np.frombuffer(raw[body : body + 16 * layout.n_chunks], "<u8").copy()
    index[:2] = 2**64 - 1  # chunk 0: "never written"
    import google_crc32c

    raw[body : body + index.nbytes] = index.tobytes()
    raw[-4:] = np.uint32(google_crc32c.value(index.tobytes())).tobytes()
    shard.write_bytes(bytes(raw))
    with pytest.raises(CorruptArtifactError, match="missing"):
        _ = ArtifactLoader(root).load_epoch(ANALYZER, 3)[FIELD][0].values


def test_layouts_it_does_not_know_go_to_zarr(tmp_path: Path) -> None:
    from zarr.codecs import GzipCodec

    array = zarr.create_array(
        store=LocalStore(tmp_path), name="x", shape=(10, 4), chunks=(5, 4), dtype="float32",
        compressors=[GzipCodec()],
    )
    array[...] = 1.0
    meta = json.loads((tmp_path / "x" / "zarr.json").read_text())
    assert DirectLayout.from_metadata(meta) is None  # gzip, and two chunks without a shard
    big_endian = dict(meta, data_type="float32", chunk_grid={
        "name": "regular", "configuration": {"chunk_shape": [10, 4]}},
        codecs=[{"name": "bytes", "configuration": {"endian": "big"}}])
    assert DirectLayout.from_metadata(big_endian) is None
    assert DirectLayout.from_metadata({"zarr_format": 3}) is None  # damaged metadata


def test_the_manifest_predicts_every_epochs_layout(written: tuple[str, np.ndarray]) -> None:
    # Stacked reads use the layout derived from the manifest instead of reading each epoch's
    # metadata; it must be exactly what zarr wrote.
    root, _ = written
    manifest = ArtifactLoader(root).manifest(ANALYZER)
    spec = manifest.fields[FIELD]
    predicted = DirectLayout.from_field(
        spec.shape, np.dtype(spec.dtype), spec.layout, manifest.codec
    )
    assert predicted == _layout(root)


# --- the local full-field read: straight into the result, counted --------------------------


def test_local_full_reads_equal_the_written_arrays(written: tuple[str, np.ndarray]) -> None:
    root, data = written
    layout = _layout(root)
    out = np.empty(layout.shape, dtype=layout.dtype)
    if read_field_local(Path(root) / "artifacts", _array_path(root), layout, out):
        np.testing.assert_array_equal(out, data)
    else:  # chunks across a second axis, an edge chunk: left to the careful path
        assert layout.grid[1:] != (1,) * (len(layout.shape) - 1) or any(
            g * c != s for g, c, s in zip(layout.grid, layout.chunks, layout.shape, strict=True)
        )


class _CountingPreadv:
    """``os.preadv`` that counts its calls and the bytes it read."""

    def __init__(self) -> None:
        self.calls = 0
        self.bytes = 0
        self._preadv = os.preadv

    def __call__(self, fd: int, buffers: Any, offset: int) -> int:
        got = self._preadv(fd, buffers, offset)
        self.calls += 1
        self.bytes += got
        return got


@pytest.mark.parametrize("codec", [Codec(), Codec(cname=None)], ids=["lz4", "none"])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_local_full_epoch_reads_every_byte_once_in_counted_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: Codec, threads: int
) -> None:
    data = _write_sharded(tmp_path, codec)
    monkeypatch.setattr(direct, "_SPLIT_BYTES", 1 if threads > 1 else 2**40)
    monkeypatch.setattr(direct, "_decode_threads", lambda: threads)
    counting = _CountingPreadv()
    monkeypatch.setattr(os, "preadv", counting)
    values = ArtifactLoader(tmp_path).load_epoch(ANALYZER, 3)[FIELD].values
    np.testing.assert_array_equal(values, data)
    n_chunks = 8
    if codec.cname is None:  # the shard index, then each thread's chunks straight into place
        assert counting.calls == 1 + threads
    else:  # the shard index, then each chunk into a buffer the core keeps in cache
        assert counting.calls == 1 + n_chunks
    assert counting.bytes == _shard(tmp_path).stat().st_size  # every byte once, nothing else


@pytest.mark.parametrize("codec", [Codec(), Codec(cname=None)], ids=["lz4", "none"])
@pytest.mark.parametrize("where", ["first chunk", "last chunk", "crc of a chunk", "index"])
def test_damage_in_a_local_full_read_is_an_error_naming_epoch_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: Codec, where: str
) -> None:
    _write_sharded(tmp_path, codec)
    monkeypatch.setattr(direct, "_SPLIT_BYTES", 1)  # the two-thread path
    monkeypatch.setattr(direct, "_decode_threads", lambda: 2)
    shard = _shard(tmp_path)
    raw = bytearray(shard.read_bytes())
    layout = _layout(str(tmp_path))
    body = len(raw) - layout.index_nbytes
    index = np.frombuffer(raw[body : body + 16 * layout.n_chunks], "<u8").reshape(-1, 2)
    position = {
        "first chunk": int(index[0, 0]) + 20,
        "last chunk": int(index[-1, 0]) + 20,
        "crc of a chunk": int(index[3, 0] + index[3, 1]) - 2,
        "index": len(raw) - 10,
    }[where]
    raw[position] ^= 0xFF
    shard.write_bytes(bytes(raw))
    out = np.empty(layout.shape, dtype=layout.dtype)
    assert not read_field_local(tmp_path / "artifacts", _array_path(str(tmp_path)), layout, out)
    with pytest.raises(CorruptArtifactError, match=rf"'{FIELD}'.*epoch 3"):
        _ = ArtifactLoader(tmp_path).load_epoch(ANALYZER, 3)[FIELD].values


@pytest.mark.parametrize("codec", [Codec(), Codec(cname=None)], ids=["lz4", "none"])
def test_a_chunk_missing_from_a_local_full_read_is_an_error(
    tmp_path: Path, codec: Codec
) -> None:
    _write_sharded(tmp_path, codec)
    shard = _shard(tmp_path)
    raw = bytearray(shard.read_bytes())
    layout = _layout(str(tmp_path))
    body = len(raw) - layout.index_nbytes
    index = np.frombuffer(raw[body : body + 16 * layout.n_chunks], "<u8").copy()
    index[-2:] = 2**64 - 1  # the last chunk: "never written"
    raw[body : body + index.nbytes] = index.tobytes()
    raw[-4:] = np.uint32(checksum(index.tobytes())).tobytes()
    shard.write_bytes(bytes(raw))
    with pytest.raises(CorruptArtifactError, match=rf"'{FIELD}'.*epoch 3.*missing"):
        _ = ArtifactLoader(tmp_path).load_epoch(ANALYZER, 3)[FIELD].values


def test_a_forked_child_reads_with_its_own_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read threads are per process: a forked child does not wait on its parent's."""
    import multiprocessing

    data = _write_sharded(tmp_path)
    monkeypatch.setattr(direct, "_SPLIT_BYTES", 1)
    monkeypatch.setattr(direct, "_decode_threads", lambda: 2)
    np.testing.assert_array_equal(ArtifactLoader(tmp_path).load_epoch(ANALYZER, 3)[FIELD].values,
                                  data)  # the parent's pool exists now
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        total = pool.apply_async(_sum_of_field, (str(tmp_path),)).get(timeout=60)
    assert total == pytest.approx(float(data.sum(dtype=np.float64)))


def _sum_of_field(root: str) -> float:
    direct._SPLIT_BYTES = 1
    direct._decode_threads = lambda: 2
    values = ArtifactLoader(root).load_epoch(ANALYZER, 3)[FIELD].values
    return float(values.sum(dtype=np.float64))
