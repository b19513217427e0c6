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
