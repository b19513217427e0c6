"""Metadata-last commits on S3: what a killed writer leaves is invisible, then overwritten."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from epochstore import ArtifactLoader, ArtifactStore, EpochExistsError

DIMS = {"activations": ("neuron", "a", "b")}


def _act(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((8, 4, 4)).astype(np.float32)


def test_leftovers_of_a_killed_writer_are_invisible_and_overwritten(s3: Any) -> None:
    url, options = s3.url("run"), s3.storage_options
    store = ArtifactStore(url, storage_options=options)
    store.write_epoch("neuron_activations", 0, {"activations": _act(0)}, dims=DIMS,
                      chunks={"activations": (1, 4, 4)})  # 8 chunks in one shard
    # What a writer killed during its metadata flush leaves: a damaged shard and the array's
    # metadata under epoch_00001/, but not the group's zarr.json that would commit it.
    node = f"{url.removeprefix('s3://')}/artifacts/neuron_activations/epoch_00001"
    fs = s3.fs()
    fs.pipe({f"{node}/activations/c/0/0/0": b"\x00 a torn shard",
             f"{node}/activations/zarr.json": fs.cat_file(node.replace("00001", "00000")
                                                           + "/activations/zarr.json")})
    loader = ArtifactLoader(url, storage_options=options)
    assert loader.get_epochs("neuron_activations") == [0]
    assert not loader.has_epoch("neuron_activations", 1)

    new = _act(1)
    store.write_epoch("neuron_activations", 1, {"activations": new}, dims=DIMS)
    assert loader.get_epochs("neuron_activations") == [0, 1]
    np.testing.assert_array_equal(
        loader.load_epoch("neuron_activations", 1)["activations"].values, new
    )
    with pytest.raises(EpochExistsError):
        store.write_epoch("neuron_activations", 1, {"activations": new}, dims=DIMS)
    assert store.cleanup() == []


def test_cleanup_lists_uncommitted_prefixes_from_the_same_listing(s3: Any) -> None:
    url, options = s3.url("run"), s3.storage_options
    store = ArtifactStore(url, storage_options=options)
    store.write_epoch("neuron_activations", 0, {"activations": _act(0)}, dims=DIMS)
    root = f"{url.removeprefix('s3://')}/artifacts/neuron_activations"
    s3.fs().pipe({f"{root}/epoch_00007/activations/c/0/0/0": b"torn"})
    s3.server.reset_requests()
    assert store.cleanup() == ["artifacts/neuron_activations/epoch_00007"]
    counts = s3.server.reset_requests()
    assert counts["HeadObject"] == 0  # no existence check per epoch
    assert store.get_epochs("neuron_activations") == [0]


def _obstore_location(s3: Any, prefix: str) -> Any:
    """A zarr ``ObjectStore`` (obstore) on the same bucket, rooted at ``prefix``."""
    from obstore.store import S3Store
    from zarr.storage import ObjectStore

    return ObjectStore(
        S3Store(
            s3.bucket,
            prefix=prefix,
            endpoint=s3.server.endpoint_url,
            access_key_id="testing",
            secret_access_key="testing",
            region="us-east-1",
            client_options={"allow_http": True},
            virtual_hosted_style_request=False,
        )
    )


@pytest.mark.parametrize("client", ["s3fs", "obstore"])
def test_two_writers_of_one_new_epoch_cannot_both_succeed(
    s3: Any, client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit point is a conditional PUT (If-None-Match): the second writer is refused.

    The other writer commits the same epoch just before this one's commit point, after this
    one's existence check passed: the window an existence check cannot close. The real
    conditional PUT on the S3 server decides; the winner's epoch stays whole and readable.
    """
    from epochstore.store import commit

    url = s3.url()
    if client == "obstore":
        pytest.importorskip("obstore")
        location: Any = _obstore_location(s3, url.split("/", 3)[3])
        options = None
    else:
        location, options = url, s3.storage_options
    ours = ArtifactStore(location, storage_options=options)
    theirs = ArtifactStore(location, storage_options=options)
    winner = np.full((4, 3), 7.0, dtype=np.float32)
    flush = commit.MetadataLastStore.flush_metadata
    raced = []

    def they_commit_first(self: Any) -> None:
        flush(self)  # this writer's chunks and array metadata are written ...
        if not raced:  # ... then the other writer commits, before this one's commit point
            raced.append(True)
            theirs.write_epoch("a", 1, {"x": winner})

    monkeypatch.setattr(commit.MetadataLastStore, "flush_metadata", they_commit_first)
    with pytest.raises(EpochExistsError):
        ours.write_epoch("a", 1, {"x": np.ones((4, 3), np.float32)})
    loader = ArtifactLoader(location, storage_options=options)
    assert loader.get_epochs("a") == [1]
    np.testing.assert_array_equal(loader.load_epoch("a", 1)["x"].values, winner)


def test_overwrites_through_obstore_switch_generations(s3: Any) -> None:
    """obstore's conditional PUT claims each generation; readers follow the switch."""
    pytest.importorskip("obstore")
    location = _obstore_location(s3, s3.url().split("/", 3)[3])
    store = ArtifactStore(location)
    store.write_epoch("a", 1, {"x": np.zeros((4, 3), np.float32)})
    for value in (1.0, 2.0):
        store.write_epoch("a", 1, {"x": np.full((4, 3), value, np.float32)}, overwrite=True)
        loader = ArtifactLoader(location)
        assert loader.get_epochs("a") == [1]
        np.testing.assert_array_equal(loader.load_epoch("a", 1)["x"].values, value)
        np.testing.assert_array_equal(loader.load_epochs("a")["x"].values[0], value)
    found = s3.fs().find(f"{s3.bucket}/{location.store.prefix}")
    nodes = {k.split("/a/", 1)[1].split("/")[0] for k in found if "/a/epoch_" in k}
    assert nodes == {"epoch_00001", "epoch_00001.g2"}
