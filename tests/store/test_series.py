"""The derived series of small fields: O(1) reads across epochs, never stale values.

Reads are counted on a real local store (``CountingStore`` around ``LocalStore``, and a plain
run directory where the node files themselves show what was read), never timed.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from zarr.storage import LocalStore

from epochstore import ArtifactLoader, ArtifactStore, CorruptArtifactError
from epochstore.store.instrumented import CountingStore
from epochstore.store.series import (
    SERIES_DIR,
    SERIES_MAX_FIELD_BYTES,
    SeriesCache,
    decode_series,
    encode_series,
)
from epochstore.store.versions import FieldVersions

A = "metrics"
N_EPOCHS = 40


def _outputs(epoch: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    return {
        "loss": np.float32(epoch + shift),
        "norms": np.arange(56, dtype=np.float64) * (epoch + shift),
        "big": np.full((8, 200), epoch + shift, dtype=np.float32),  # 6.4 kB: no series
    }


@pytest.fixture
def run(tmp_path: Path) -> Path:
    store = ArtifactStore(tmp_path)
    for epoch in range(N_EPOCHS):
        store.write_epoch(A, epoch, _outputs(epoch))
    return tmp_path


def _counting(path: Path) -> tuple[ArtifactLoader, CountingStore]:
    counting = CountingStore(LocalStore(path, read_only=True))
    return ArtifactLoader(counting), counting


def _node_reads(counting: CountingStore, field: str) -> int:
    return sum(n for key, n in counting.chunk_reads.items() if f"/{field}/" in key)


def _series_reads(counting: CountingStore) -> int:
    return sum(n for key, n in counting.chunk_reads.items() if f"/{SERIES_DIR}/" in key)


def _expected(field: str, epochs: list[int], shifts: dict[int, float] | None = None
              ) -> np.ndarray:
    shifts = shifts or {}
    return np.stack([_outputs(e, shifts.get(e, 0.0))[field] for e in epochs])


@pytest.mark.parametrize("chunks", ["auto", None])
def test_a_scalar_across_epochs_costs_one_read_once_the_series_exists(
    run: Path, chunks: str | None
) -> None:
    loader, counting = _counting(run)
    first = loader.load_epochs(A, chunks=chunks)["loss"].values  # type: ignore[arg-type]
    np.testing.assert_array_equal(first, _expected("loss", list(range(N_EPOCHS))))
    assert _node_reads(counting, "loss") == N_EPOCHS  # no series yet: every node, once

    loader, counting = _counting(run)
    ds = loader.load_epochs(A, chunks=chunks)  # type: ignore[arg-type]
    np.testing.assert_array_equal(ds["loss"].values, first)
    np.testing.assert_array_equal(ds["norms"].values, _expected("norms", list(range(N_EPOCHS))))
    assert _node_reads(counting, "loss") == 0
    assert _node_reads(counting, "norms") == N_EPOCHS  # its series is built by this read
    assert _series_reads(counting) == 2

    loader, counting = _counting(run)
    ds = loader.load_epochs(A, chunks=chunks)  # type: ignore[arg-type]
    np.testing.assert_array_equal(ds["norms"].isel(norms_dim_0=3).values,
                                  _expected("norms", list(range(N_EPOCHS)))[:, 3])
    assert _node_reads(counting, "norms") == 0
    assert _series_reads(counting) == 1
    # No epoch's metadata was read either: listing, manifest, one series object.
    assert all("epoch_" not in key for key in counting.metadata_reads)


def test_a_loader_without_series_reads_every_node_and_writes_nothing(run: Path) -> None:
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    for _ in range(2):
        counting = CountingStore(LocalStore(run, read_only=True))
        values = ArtifactLoader(counting, series=False).load_epochs(A)["loss"].values
        np.testing.assert_array_equal(values, _expected("loss", list(range(N_EPOCHS))))
        assert _node_reads(counting, "loss") == N_EPOCHS
        assert _series_reads(counting) == 0
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before  # not one file written


def test_a_large_field_and_a_sharded_field_have_no_series(run: Path) -> None:
    assert SERIES_MAX_FIELD_BYTES < 8 * 200 * 4
    loader, counting = _counting(run)
    for _ in range(2):
        np.testing.assert_array_equal(
            loader.load_epochs(A)["big"].values, _expected("big", list(range(N_EPOCHS)))
        )
    assert _node_reads(counting, "big") == 2 * N_EPOCHS
    assert not (run / "artifacts" / A / SERIES_DIR / "big.safetensors").exists()


def _read_calls() -> int:
    """This process's read system calls so far (Linux ``/proc/self/io``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("syscr:"):
            return int(line.split()[1])
    raise AssertionError("no syscr in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_a_plain_run_directory_reads_the_series_not_the_nodes(run: Path) -> None:
    def count_reads() -> tuple[np.ndarray, int]:
        loader = ArtifactLoader(run)
        loader.manifest(A)  # the metadata reads, outside the count
        before = _read_calls()
        values = loader.load_epochs(A, chunks=None)["loss"].values
        return values, _read_calls() - before

    first, building = count_reads()
    assert (run / "artifacts" / A / SERIES_DIR / "loss.safetensors").is_file()
    again, reads = count_reads()
    np.testing.assert_array_equal(again, first)
    assert building >= N_EPOCHS  # every epoch's chunk
    assert reads < 5  # the series object, whatever the number of epochs


def test_a_chunk_damaged_in_place_is_not_taken_from_the_series(run: Path) -> None:
    ArtifactLoader(run).load_epochs(A)["loss"].values  # builds the series  # noqa: B018
    chunk = run / "artifacts" / A / "epoch_00004" / "loss" / "c"
    chunk.write_bytes(chunk.read_bytes()[:-1] + b"\x00")  # the checksum no longer matches
    with pytest.raises(CorruptArtifactError, match="epoch 4"):
        ArtifactLoader(run).load_epochs(A)["loss"].values  # noqa: B018


@pytest.mark.parametrize("counted", [True, False], ids=["wrapped-store", "run-directory"])
def test_added_overwritten_repaired_and_deleted_epochs_are_never_taken_from_the_series(
    run: Path, counted: bool
) -> None:
    def loader_() -> tuple[ArtifactLoader, CountingStore | None]:
        if counted:
            return _counting(run)
        return ArtifactLoader(run), None

    loader, _ = loader_()
    loader.load_epochs(A)["loss"].values  # builds the series  # noqa: B018
    store = ArtifactStore(run)
    store.write_epoch(A, N_EPOCHS, _outputs(N_EPOCHS))  # added
    store.write_epoch(A, 3, _outputs(3, 0.5), overwrite=True)  # overwritten (a recompute)
    store.delete_epoch(A, 7)  # repaired: deleted, then computed again
    store.write_epoch(A, 7, _outputs(7, 0.25))
    store.delete_epoch(A, 11)  # deleted
    epochs = [e for e in range(N_EPOCHS + 1) if e != 11]
    shifts = {3: 0.5, 7: 0.25}

    loader, counting = loader_()
    ds = loader.load_epochs(A)
    assert list(ds["epoch"].values) == epochs
    np.testing.assert_array_equal(ds["loss"].values, _expected("loss", epochs, shifts))
    if counting is not None:
        assert _node_reads(counting, "loss") == 3  # the added, overwritten and repaired epochs

    loader, counting = loader_()  # the series now holds them: nothing read from nodes
    np.testing.assert_array_equal(loader.load_epochs(A)["loss"].values,
                                  _expected("loss", epochs, shifts))
    if counting is not None:
        assert _node_reads(counting, "loss") == 0


def test_an_epoch_overwritten_during_the_read_is_read_again_next_time(run: Path) -> None:
    """Versions are taken before values: a value read across an overwrite is never trusted."""
    artifacts = run / "artifacts"
    cache = SeriesCache(
        LocalStore(artifacts), f"{A}/{SERIES_DIR}/loss.safetensors",
        artifacts / A / SERIES_DIR / "loss.safetensors",
        FieldVersions("loss/c", local_dir=str(artifacts / A)), shape=(), dtype=np.dtype("f4"),
    )
    epochs = list(range(N_EPOCHS))

    def overwrite_then_read(positions: np.ndarray) -> np.ndarray:
        # Another writer overwrites epoch 5 after the versions were taken, before the values
        # are read: the values read are the new ones.
        ArtifactStore(run).write_epoch(A, 5, _outputs(5, 0.75), overwrite=True)
        fresh = ArtifactLoader(run)
        return np.stack([fresh.load_epoch(A, epochs[p])["loss"].values for p in positions])

    got = cache.read(epochs, overwrite_then_read)
    assert got[5] == np.float32(5.75)
    # The series recorded that value under epoch 5's *old* version, so it is not trusted:
    loader, counting = _counting(run)
    np.testing.assert_array_equal(loader.load_epochs(A)["loss"].values,
                                  _expected("loss", epochs, {5: 0.75}))
    assert _node_reads(counting, "loss") == 1


def test_a_damaged_series_is_ignored_and_rewritten(run: Path) -> None:
    ArtifactLoader(run).load_epochs(A)["loss"].values  # noqa: B018
    path = run / "artifacts" / A / SERIES_DIR / "loss.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF  # one flipped bit of the values: the checksum fails
    path.write_bytes(bytes(raw))
    loader, counting = _counting(run)
    np.testing.assert_array_equal(loader.load_epochs(A)["loss"].values,
                                  _expected("loss", list(range(N_EPOCHS))))
    assert _node_reads(counting, "loss") == N_EPOCHS
    assert decode_series(path.read_bytes(), (), np.dtype("float32")) is not None
    path.write_bytes(b"not a series")
    np.testing.assert_array_equal(ArtifactLoader(run).load_epochs(A)["loss"].values,
                                  _expected("loss", list(range(N_EPOCHS))))


def test_concurrent_rebuilds_leave_a_whole_series(run: Path) -> None:
    errors: list[Exception] = []
    barrier = threading.Barrier(4)

    def rebuild() -> None:
        try:
            barrier.wait()
            for _ in range(5):
                values = ArtifactLoader(run).load_epochs(A)["norms"].values
                np.testing.assert_array_equal(values, _expected("norms", list(range(N_EPOCHS))))
        except Exception as exc:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=rebuild) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    folder = run / "artifacts" / A / SERIES_DIR
    assert [p.name for p in folder.iterdir()] == ["norms.safetensors"]  # no temporary left
    decoded = decode_series((folder / "norms.safetensors").read_bytes(), (56,),
                            np.dtype("float64"))
    assert decoded is not None
    assert decoded[0] == list(range(N_EPOCHS))


def test_the_series_is_invisible_to_listing_and_zarr(run: Path) -> None:
    import zarr

    ArtifactLoader(run).load_epochs(A)["loss"].values  # noqa: B018
    store = ArtifactStore(run)
    assert store.get_epochs(A) == list(range(N_EPOCHS))
    assert store.cleanup(stale_after=0) == []
    group = zarr.open_group(run / "artifacts" / A, mode="r")
    with pytest.warns(UserWarning, match=r"\.series is not recognized"):  # zarr skips it
        members = sorted(name for name, _ in group.members())
    assert members == [
        f"epoch_{e:05d}" for e in range(N_EPOCHS)
    ]
    store.delete_analyzer(A)
    assert not (run / "artifacts" / A).exists()


def test_encode_decode_round_trip_and_refusals() -> None:
    values = np.arange(6, dtype=np.int16).reshape(3, 2)
    raw = encode_series([0, 5, 9], ["a", "b", "c"], values)
    decoded = decode_series(raw, (2,), np.dtype("int16"))
    assert decoded is not None
    assert decoded[0] == [0, 5, 9]
    assert decoded[1] == ["a", "b", "c"]
    np.testing.assert_array_equal(decoded[2], values)
    assert decode_series(raw, (3,), np.dtype("int16")) is None  # another shape
    assert decode_series(raw, (2,), np.dtype("float32")) is None  # another dtype
    assert decode_series(raw[:-1], (2,), np.dtype("int16")) is None  # truncated


def test_reading_some_epochs_keeps_the_other_entries(run: Path) -> None:
    ArtifactLoader(run).load_epochs(A)["loss"].values  # noqa: B018
    ArtifactStore(run).write_epoch(A, N_EPOCHS, _outputs(N_EPOCHS))
    loader, counting = _counting(run)  # a dashboard extending its series by the new epoch
    assert loader.load_epochs(A, [N_EPOCHS])["loss"].values.tolist() == [N_EPOCHS]
    assert _node_reads(counting, "loss") == 1
    loader, counting = _counting(run)
    np.testing.assert_array_equal(loader.load_epochs(A)["loss"].values,
                                  _expected("loss", list(range(N_EPOCHS + 1))))
    assert _node_reads(counting, "loss") == 0
