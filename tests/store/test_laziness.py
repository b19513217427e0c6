"""Laziness, asserted by counting store reads (stable), never by timing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from zarr.storage import LocalStore

from epochstore import ArtifactLoader, ArtifactStore
from epochstore.store.instrumented import CountingStore

N_EPOCHS = 12
SHAPE = (16, 5, 5)


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, dict[int, np.ndarray]]:
    store = ArtifactStore(tmp_path)
    rng = np.random.default_rng(0)
    data = {}
    for epoch in range(0, N_EPOCHS * 100, 100):
        data[epoch] = rng.standard_normal(SHAPE).astype(np.float32)
        store.write_epoch(
            "neuron_activations",
            epoch,
            {"activations": data[epoch], "loss": np.float32(epoch)},
            dims={"activations": ("neuron", "a", "b")},
            chunks={"activations": (1, 5, 5)},
        )
    return tmp_path, data


def _counting_loader(path: Path) -> tuple[ArtifactLoader, CountingStore]:
    counting = CountingStore(LocalStore(path, read_only=True))
    return ArtifactLoader(counting), counting


def test_listing_epochs_reads_no_epoch_metadata_or_chunks(run: tuple[Path, dict]) -> None:
    loader, counting = _counting_loader(run[0])
    assert len(loader.get_epochs("neuron_activations")) == N_EPOCHS
    assert sum(counting.chunk_reads.values()) == 0
    assert all("epoch_" not in key for key in counting.metadata_reads)
    assert counting.list_calls == 1


@pytest.mark.parametrize("chunks", ["auto", "zarr", None])
def test_opening_load_epochs_reads_no_chunk(run: tuple[Path, dict], chunks: str | None) -> None:
    loader, counting = _counting_loader(run[0])
    ds = loader.load_epochs("neuron_activations", chunks=chunks)  # type: ignore[arg-type]
    assert ds.sizes["epoch"] == N_EPOCHS
    assert sum(counting.chunk_reads.values()) == 0
    # Only the root and the analyzer group: no epoch is opened to build the dataset.
    assert all("epoch_" not in key for key in counting.metadata_reads)


@pytest.mark.parametrize("chunks", ["auto", "zarr", None])
def test_one_neuron_across_epochs_reads_one_chunk_per_epoch(
    run: tuple[Path, dict], chunks: str | None
) -> None:
    path, data = run
    loader, counting = _counting_loader(path)
    ds = loader.load_epochs("neuron_activations", chunks=chunks)  # type: ignore[arg-type]
    values = ds["activations"].sel(neuron=7).values
    np.testing.assert_array_equal(values, np.stack([d[7] for d in data.values()]))
    touched = [k for k in counting.chunk_reads if "/activations/" in k]
    assert len(touched) == N_EPOCHS  # one shard object per epoch ...
    shard_bytes = sum(
        p.stat().st_size for p in path.rglob("*") if p.is_file() and "/activations/c/" in str(p)
    )
    # ... and from each, only the shard index and neuron 7's chunk.
    assert counting.bytes_read < shard_bytes / 4
    assert not [k for k in counting.chunk_reads if "/loss/" in k]


def test_one_epoch_one_neuron_reads_one_chunk(run: tuple[Path, dict]) -> None:
    path, data = run
    loader, counting = _counting_loader(path)
    ds = loader.load_epoch("neuron_activations", 300)
    assert sum(counting.chunk_reads.values()) == 0
    np.testing.assert_array_equal(ds["activations"][3].values, data[300][3])
    assert list(counting.chunk_reads) == [
        "artifacts/neuron_activations/epoch_00300/activations/c/0/0/0"
    ]


def test_reduction_over_epochs_streams_whole_epochs(run: tuple[Path, dict]) -> None:
    path, data = run
    loader, counting = _counting_loader(path)
    ds = loader.load_epochs("neuron_activations")
    act = ds["activations"]
    assert act.chunks is not None
    # Default blocks: whole epochs (whole shards), as many as fit in DASK_BLOCK_BYTES: these
    # tiny epochs all fit in one block, not one task per Zarr chunk per epoch.
    assert act.data.chunksize == (N_EPOCHS, *SHAPE)
    assert act.data.numblocks == (1, 1, 1, 1)
    mean = act.mean("epoch")
    assert isinstance(mean, xr.DataArray)
    np.testing.assert_allclose(mean.values, np.mean(list(data.values()), axis=0), atol=1e-6)
    # Each epoch's shard read once, whole (one GET), not once per chunk.
    touched = {k: n for k, n in counting.chunk_reads.items() if "/activations/" in k}
    assert len(touched) == N_EPOCHS
    assert set(touched.values()) == {1}


def test_auto_blocks_on_a_local_store_are_slabs_of_epochs_along_whole_chunks(
    run: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Local stores: as many epochs per block as fit, along whole Zarr chunks of the field."""
    from epochstore.store import reader

    epoch_bytes = 4 * int(np.prod(SHAPE))  # 16 chunks of one neuron (100 bytes) each
    monkeypatch.setattr(reader, "DASK_BLOCK_BYTES", 5 * epoch_bytes)
    loader, _ = _counting_loader(run[0])
    ds = loader.load_epochs("neuron_activations")
    # 12 epochs x 6 neurons = 7,200 bytes <= 8,000: every epoch, whole chunks of neurons.
    assert ds["activations"].data.chunks == ((N_EPOCHS,), (6, 6, 4), (5,), (5,))
    assert ds["loss"].data.chunks == ((N_EPOCHS,),)  # a scalar: every epoch in one block
    zarr_aligned = loader.load_epochs("neuron_activations", chunks="zarr")
    assert zarr_aligned["activations"].data.chunksize == (1, 1, 5, 5)


def test_auto_blocks_on_an_object_store_hold_whole_epochs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Elsewhere (one request per shard matters): whole epochs, as many as fit."""
    from zarr.storage import MemoryStore

    from epochstore.store import reader

    store = ArtifactStore(MemoryStore())
    for epoch in range(N_EPOCHS):
        store.write_epoch("neuron_activations", epoch, {"activations": np.ones(SHAPE)},
                          chunks={"activations": (1, 5, 5)})
    epoch_bytes = 8 * int(np.prod(SHAPE))
    monkeypatch.setattr(reader, "DASK_BLOCK_BYTES", 5 * epoch_bytes)
    chunks = store.load_epochs("neuron_activations")["activations"].data.chunks
    assert chunks == ((5, 5, 2), (16,), (5,), (5,))


@pytest.mark.parametrize("blocks", ["whole epochs", "slabs"])
def test_one_neuron_across_epochs_reads_only_its_chunk_bytes(
    run: tuple[Path, dict], blocks: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dask fuses the selection into each block's read: bytes, not blocks."""
    from epochstore.store import reader

    if blocks == "slabs":  # as for a large field: blocks of epochs x whole chunks
        monkeypatch.setattr(reader, "DASK_BLOCK_BYTES", 4 * int(np.prod(SHAPE)))
    path, data = run
    loader, counting = _counting_loader(path)
    ds = loader.load_epochs("neuron_activations")  # default blocks
    counting.reset()
    values = ds["activations"].isel(neuron=7).values
    np.testing.assert_array_equal(values, np.stack([d[7] for d in data.values()]))
    chunk_bytes = {
        k: (path / k).stat().st_size for k in counting.chunk_reads if "/activations/" in k
    }
    index_bytes = 16 * SHAPE[0] + 4
    neuron_chunk = 25 * 4 + 16 + 4  # a 5 x 5 float32 chunk, Blosc header, CRC32C (at most)
    assert len(chunk_bytes) == N_EPOCHS
    assert counting.bytes_read <= N_EPOCHS * (index_bytes + neuron_chunk + 16)
    assert counting.bytes_read < sum(chunk_bytes.values()) / 4


def test_mean_over_epochs_matches_a_load_epoch_loop(run: tuple[Path, dict]) -> None:
    path, data = run
    loader = ArtifactLoader(path)
    lazy = loader.load_epochs("neuron_activations")["activations"].mean("epoch").values
    looped = sum(
        loader.load_epoch("neuron_activations", e)["activations"].values for e in data
    ) / len(data)
    np.testing.assert_allclose(lazy, looped, rtol=1e-6)


def test_a_mean_over_slabs_reads_each_chunk_once(
    run: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    from epochstore.store import reader

    monkeypatch.setattr(reader, "DASK_BLOCK_BYTES", 4 * int(np.prod(SHAPE)))
    path, data = run
    loader, counting = _counting_loader(path)
    lazy = loader.load_epochs("neuron_activations")["activations"]
    assert len(lazy.data.chunks[1]) > 1  # slabs, not whole epochs
    np.testing.assert_allclose(lazy.mean("epoch").values,
                               np.mean(list(data.values()), axis=0), atol=1e-6)
    shard_bytes = sum(
        p.stat().st_size for p in path.rglob("*") if p.is_file() and "/activations/c/" in str(p)
    )
    index_bytes = 16 * SHAPE[0] + 4
    # Each chunk once, plus one shard index per epoch per slab.
    slabs = len(lazy.data.chunks[1])
    assert counting.bytes_read <= shard_bytes + N_EPOCHS * slabs * index_bytes


@pytest.mark.parametrize("damage", ["flipped byte", "deleted shard"])
def test_a_damaged_epoch_in_a_slab_is_an_error_naming_it(
    run: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    from epochstore import EpochstoreError
    from epochstore.store import reader

    monkeypatch.setattr(reader, "DASK_BLOCK_BYTES", 4 * int(np.prod(SHAPE)))
    path, data = run
    shard = path / "artifacts/neuron_activations/epoch_00300/activations/c/0/0/0"
    assert shard.is_file()
    intact = ArtifactLoader(path).load_epochs("neuron_activations")["activations"]
    np.testing.assert_array_equal(intact.isel(neuron=slice(0, 6)).values,
                                  np.stack([d[:6] for d in data.values()]))
    np.testing.assert_allclose(intact.mean("epoch").values,  # the slab reader, in this thread
                               np.mean(list(data.values()), axis=0), atol=1e-6)
    if damage == "flipped byte":
        raw = bytearray(shard.read_bytes())
        raw[40] ^= 0x40
        shard.write_bytes(bytes(raw))
    else:
        shard.unlink()
    lazy = ArtifactLoader(path).load_epochs("neuron_activations")["activations"]
    assert len(lazy.data.chunks[1]) > 1  # slabs
    with pytest.raises(EpochstoreError, match="epoch 300"):
        lazy.mean("epoch").values  # noqa: B018
