"""Overwrites without rename: the new data is the epoch's next generation, switched to in one PUT.

On object stores (and any store without rename) an overwrite never deletes before it commits:
readers see the old epoch until the epoch group's metadata names the new generation, then the
new one; a killed overwrite leaves the old epoch readable, and cleanup() removes its remains.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from zarr.core.sync import sync

from epochstore import ArtifactLoader, ArtifactStore, EpochChangedError
from epochstore.store import commit
from epochstore.store.manifest import DATA_NODE_KEY, GENERATIONS_FORMAT

if TYPE_CHECKING:
    from conftest import Backend

A = "neuron_activations"
DIMS = {"activations": ("neuron", "a", "b"), "loss": ()}
WITHOUT_RENAME = ["memory", "fsspec-memory", "s3"]


def _outputs(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "activations": rng.standard_normal((8, 5, 5)).astype(np.float32),
        "loss": np.float32(seed),
    }


def _write(store: ArtifactStore, epoch: int, seed: int, **kwargs: Any) -> dict[str, Any]:
    outputs = _outputs(seed)
    store.write_epoch(A, epoch, outputs, dims=DIMS, chunks={"activations": (2, 5, 5)},
                      **kwargs)
    return outputs


def _keys(store: ArtifactStore) -> list[str]:
    """Every key below the analyzer, relative to it."""
    prefix = f"{store._location.key(A)}/"

    async def collect() -> list[str]:
        return [k async for k in store._location.store.list_prefix(prefix)]

    return sorted(k.removeprefix(prefix) for k in sync(collect()))


def _nodes(store: ArtifactStore) -> set[str]:
    """The epoch nodes and generations below the analyzer (not the derived ``.series``)."""
    return {k.split("/", 1)[0] for k in _keys(store) if "/" in k and not k.startswith(".")}


def _assert_reads(loader: ArtifactLoader, epochs: dict[int, dict[str, Any]]) -> None:
    assert loader.get_epochs(A) == sorted(epochs)
    for epoch, outputs in epochs.items():
        ds = loader.load_epoch(A, epoch)
        assert DATA_NODE_KEY not in ds.attrs
        np.testing.assert_array_equal(ds["activations"].values, outputs["activations"])
        np.testing.assert_array_equal(ds["loss"].values, outputs["loss"])
    stacked = loader.load_epochs(A)
    for position, epoch in enumerate(sorted(epochs)):
        np.testing.assert_array_equal(
            stacked["activations"][position].values, epochs[epoch]["activations"]
        )
        assert float(stacked["loss"][position]) == float(epochs[epoch]["loss"])
    np.testing.assert_array_equal(  # one neuron across epochs: partial reads of each node
        loader.load_epochs(A, chunks=None)["activations"][:, 3].values,
        np.stack([epochs[e]["activations"][3] for e in sorted(epochs)]),
    )


@pytest.mark.parametrize("kind", WITHOUT_RENAME)
def test_readers_see_the_old_epoch_until_the_overwrite_commits(
    kind: str, make_backend: Callable[[str], Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = make_backend(kind)
    store = backend.store()
    old = {3: _write(store, 3, 1), 4: _write(store, 4, 2)}
    loader = backend.loader()
    flush = commit.MetadataLastStore.flush_metadata
    during: list[set[str]] = []

    def then_read(self: Any) -> None:
        flush(self)  # the new generation's chunks and array metadata are all written ...
        during.append(_nodes(store))
        _assert_reads(backend.loader(), old)  # ... and nothing of it is visible yet

    monkeypatch.setattr(commit.MetadataLastStore, "flush_metadata", then_read)
    new = _write(store, 3, 9, overwrite=True)
    monkeypatch.undo()
    assert during == [{"epoch_00003", "epoch_00003.g1", "epoch_00004"}]
    _assert_reads(loader, {3: new, 4: old[4]})
    _assert_reads(backend.loader(), {3: new, 4: old[4]})
    # The old data is gone; the epoch node keeps only its metadata, naming generation 1.
    keys = _keys(store)
    assert [k for k in keys if k.startswith("epoch_00003/")] == ["epoch_00003/zarr.json"]
    assert _nodes(store) == {"epoch_00003", "epoch_00003.g1", "epoch_00004"}

    newer = _write(store, 3, 10, overwrite=True)  # generation 2 replaces generation 1
    assert _nodes(store) == {"epoch_00003", "epoch_00003.g2", "epoch_00004"}
    _assert_reads(backend.loader(), {3: newer, 4: old[4]})
    assert store.cleanup() == []

    store.delete_epoch(A, 3)
    assert _nodes(store) == {"epoch_00004"}
    again = _write(store, 3, 11)  # a new epoch again: generation 0
    assert _nodes(store) == {"epoch_00003", "epoch_00004"}
    _assert_reads(backend.loader(), {3: again, 4: old[4]})


@pytest.mark.parametrize("kind", ["memory", "s3"])
def test_a_killed_overwrite_leaves_the_old_epoch_and_cleanup_removes_its_remains(
    kind: str, make_backend: Callable[[str], Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = make_backend(kind)
    store = backend.store()
    old = _write(store, 3, 1)

    class Killed(BaseException):
        pass

    def killed(self: Any) -> None:
        raise Killed

    # Killed before its commit: what it wrote is removed on the way out (an exception) ...
    monkeypatch.setattr(commit.MetadataLastStore, "flush_metadata", killed)
    with pytest.raises(Killed):
        _write(store, 3, 9, overwrite=True)
    monkeypatch.undo()
    assert _nodes(store) == {"epoch_00003"}
    # ... or stays when the process dies (a claim and a torn chunk): invisible to readers.
    node = store._location.key(A, "epoch_00003.g1")
    claim = commit._CLAIM
    sync(store._location.store.set(f"{node}/zarr.json", claim))
    sync(store._location.store.set(f"{node}/activations/c/0/0/0", claim))
    _assert_reads(backend.loader(), {3: old})

    # The next overwrite skips the claimed generation; the old data goes after its commit.
    new = _write(store, 3, 9, overwrite=True)
    assert _nodes(store) == {"epoch_00003", "epoch_00003.g1", "epoch_00003.g2"}
    _assert_reads(backend.loader(), {3: new})
    assert store.cleanup() == [f"{store._location.key(A)}/epoch_00003.g1"]
    assert _nodes(store) == {"epoch_00003", "epoch_00003.g2"}

    # Killed after its commit, before deleting the old data: readers follow the new one.
    monkeypatch.setattr(commit, "_delete_prefix", _fail)
    newer = _write(store, 3, 10, overwrite=True)
    monkeypatch.undo()
    assert _nodes(store) == {"epoch_00003", "epoch_00003.g2", "epoch_00003.g3"}
    _assert_reads(backend.loader(), {3: newer})
    assert store.cleanup() == [f"{store._location.key(A)}/epoch_00003.g2"]
    _assert_reads(backend.loader(), {3: newer})


async def _fail(*args: object) -> None:
    raise OSError("the process died here")


def test_old_generation_zero_data_left_by_a_killed_overwrite_is_cleaned(
    make_backend: Callable[[str], Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = make_backend("memory")
    store = backend.store()
    _write(store, 3, 1)
    monkeypatch.setattr(commit, "_delete_fields", _fail)
    new = _write(store, 3, 9, overwrite=True)
    monkeypatch.undo()
    assert "epoch_00003/activations/zarr.json" in _keys(store)  # the old data, now unused
    _assert_reads(backend.loader(), {3: new})
    node = store._location.key(A, "epoch_00003")
    assert store.cleanup() == [f"{node}/*"]
    assert [k for k in _keys(store) if k.startswith("epoch_00003/")] == ["epoch_00003/zarr.json"]
    _assert_reads(backend.loader(), {3: new})


def test_a_read_whose_generation_is_deleted_is_told_to_retry(
    make_backend: Callable[[str], Backend],
) -> None:
    backend = make_backend("memory")
    store = backend.store()
    _write(store, 3, 1)
    ds = backend.loader().load_epoch(A, 3)  # lazy: the old generation's values not read yet
    new = _write(store, 3, 9, overwrite=True)
    with pytest.raises(EpochChangedError, match="load it again"):
        ds["activations"].values  # noqa: B018
    np.testing.assert_array_equal(
        backend.loader().load_epoch(A, 3)["activations"].values, new["activations"]
    )


def test_finished_overwrites_cost_no_request_per_epoch_on_s3(s3: Any) -> None:
    """After overwrites, the listing alone says where each epoch's data is (no GET each)."""
    url, options = s3.url("run"), s3.storage_options
    store = ArtifactStore(url, storage_options=options)
    for epoch in range(6):
        _write(store, epoch, epoch)
    s3.server.reset_requests()
    new = {e: _write(store, e, 100 + e, overwrite=True) for e in range(6)}
    counts = s3.server.reset_requests()
    # Per epoch: the claim, 2 fields x (chunk object + zarr.json), the generation's zarr.json
    # and the commit; once, the root's zarr.json (format 3).
    assert counts["PutObject"] == 6 * 7 + 1
    loader = ArtifactLoader(url, storage_options=options)
    ds = loader.load_epochs(A, chunks=None)
    counts = s3.server.reset_requests()
    assert counts["GetObject"] <= 3  # the root's and the analyzer's metadata, no epoch's
    np.testing.assert_array_equal(
        ds["activations"].values, np.stack([new[e]["activations"] for e in range(6)])
    )


def test_an_overwrite_on_an_object_store_marks_the_store_format_3(
    make_backend: Callable[[str], Backend],
) -> None:
    backend = make_backend("fsspec-memory")
    store = backend.store()
    _write(store, 3, 1)
    meta = store._read_json()
    assert meta is not None
    assert meta["attributes"]["epochstore_format"] == 2  # what a new store is marked
    new = _write(backend.store(), 3, 9, overwrite=True)
    assert backend.loader()._read_json()["attributes"]["epochstore_format"] == GENERATIONS_FORMAT
    _assert_reads(backend.loader(), {3: new})


def test_a_local_copy_of_a_store_with_generations_reads_them(
    make_backend: Callable[[str], Backend],
) -> None:
    """A store copied from S3 to a disk keeps its generations; the local reader follows them."""
    backend = make_backend("local")
    store = backend.store()
    old = {3: _write(store, 3, 1), 4: _write(store, 4, 2)}
    analyzer = backend.location / "artifacts" / A
    # What an overwrite on S3 leaves, as copied: the data in epoch_00003.g1, named by the node.
    shutil.copytree(analyzer / "epoch_00003", analyzer / "epoch_00003.g1")
    shutil.rmtree(analyzer / "epoch_00003" / "activations")
    shutil.rmtree(analyzer / "epoch_00003" / "loss")
    meta_path = analyzer / "epoch_00003" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"][DATA_NODE_KEY] = "epoch_00003.g1"
    meta_path.write_text(json.dumps(meta))
    _assert_reads(backend.loader(), old)
    new = _write(store, 3, 9, overwrite=True)  # a local overwrite: the whole node swapped
    _assert_reads(backend.loader(), {3: new, 4: old[4]})
