"""Part of each epoch across epochs on a local store (``direct.read_rows_local``).

One neuron across epochs, the notebook's most natural read, reads per epoch the shard index and
the chunks its selection touches, decoded by the read threads; anything it cannot read goes the
careful way, which names the damage.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from epochstore import ArtifactLoader, ArtifactStore, CorruptArtifactError
from epochstore.store import direct
from epochstore.store.codecs import Codec

A, F = "acts", "values"
EPOCHS = [0, 3, 4, 9, 12]
SHAPE, CHUNKS = (64, 9, 7), (8, 9, 7)  # 8 chunks of 8 rows in one shard per epoch


def _data(epoch: int) -> np.ndarray:
    values = np.random.default_rng(epoch).standard_normal(SHAPE) * 100
    values[values < 0] = 0
    return values.astype(np.float32)


@pytest.fixture(params=[Codec(), Codec(cname=None)], ids=["lz4", "none"])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    store = ArtifactStore(tmp_path, codec=request.param)
    for epoch in EPOCHS:
        store.write_epoch(A, epoch, {F: _data(epoch)}, dims={F: ("n", "a", "b")},
                          chunks={F: CHUNKS})
    return tmp_path


def _threads(monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    monkeypatch.setattr(direct, "_SPLIT_BYTES", 1 if threads > 1 else 2**40)
    monkeypatch.setattr(direct, "_decode_threads", lambda: threads)


KEYS: list[tuple[Any, ...]] = [
    (7,),
    (-1,),
    (slice(3, 5),),
    (slice(6, 20, 3),),
    (slice(None, None, -9),),
    (np.array([9, 8, 15]),),
    (7, slice(1, 4), 2),
    (np.array([10, 12]), np.array([0, 8]), slice(None)),
    (slice(8, 8),),
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("chunks", [None, "auto"])
def test_parts_of_epochs_equal_the_written_arrays(
    run: Path, monkeypatch: pytest.MonkeyPatch, threads: int, chunks: str | None
) -> None:
    _threads(monkeypatch, threads)
    stacked = xr.DataArray(np.stack([_data(e) for e in EPOCHS]))  # xarray's outer indexing
    field = ArtifactLoader(run).load_epochs(A, chunks=chunks)[F]  # type: ignore[arg-type]
    for key in KEYS:
        got = field[(slice(None), *key)].values
        expected = stacked[(slice(None), *key)].values
        np.testing.assert_array_equal(got, expected, err_msg=str(key))
    np.testing.assert_array_equal(field[2, 7].values, stacked[2, 7].values)  # one epoch


class _CountingPreadv:
    def __init__(self) -> None:
        self.calls: list[int] = []
        self._preadv = os.preadv

    def __call__(self, fd: int, buffers: Any, offset: int) -> int:
        got = self._preadv(fd, buffers, offset)
        self.calls.append(got)
        return got


@pytest.mark.parametrize("threads", [1, 2])
def test_one_neuron_reads_the_index_and_its_chunk_per_epoch(
    run: Path, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    _threads(monkeypatch, threads)
    field = ArtifactLoader(run).load_epochs(A, chunks=None)[F]
    counting = _CountingPreadv()
    monkeypatch.setattr(os, "preadv", counting)
    values = field[:, 7].values  # neuron 7: the first chunk (rows 0-7)
    np.testing.assert_array_equal(values, np.stack([_data(e)[7] for e in EPOCHS]))
    shards = [run / "artifacts" / A / f"epoch_{e:05d}" / F / "c" / "0" / "0" / "0"
              for e in EPOCHS]
    index_bytes = 16 * 8 + 4
    first_chunk = []
    for shard in shards:
        raw = shard.read_bytes()
        first_chunk.append(int(np.frombuffer(raw[-index_bytes:-4], "<u8")[1]))
    assert len(counting.calls) == 2 * len(EPOCHS)  # per epoch: the index, then the chunk
    assert sum(counting.calls) == len(EPOCHS) * index_bytes + sum(first_chunk)
    assert sum(counting.calls) < sum(s.stat().st_size for s in shards) / 4


@pytest.mark.parametrize("threads", [1, 2])
def test_a_damaged_epoch_is_an_error_naming_it(
    run: Path, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    _threads(monkeypatch, threads)
    shard = run / "artifacts" / A / "epoch_00009" / F / "c" / "0" / "0" / "0"
    raw = bytearray(shard.read_bytes())
    raw[40] ^= 0xFF  # inside the first chunk
    shard.write_bytes(bytes(raw))
    field = ArtifactLoader(run).load_epochs(A, chunks=None)[F]
    with pytest.raises(CorruptArtifactError, match=rf"'{F}'.*epoch 9"):
        _ = field[:, 7].values
    np.testing.assert_array_equal(field[:, 40].values,  # the other chunks are intact
                                  np.stack([_data(e)[40] for e in EPOCHS]))
