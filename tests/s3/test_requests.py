"""What an S3 run costs in requests, counted by the real (moto) server: stable, unlike timings.

The issue's rule: listing epochs costs one listing call, not one request per epoch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from epochstore import ArtifactLoader, ArtifactStore

N_EPOCHS = 24
SHAPE = (16, 5, 5)
DIMS = {"activations": ("neuron", "a", "b")}


@pytest.fixture(scope="module")
def run(s3: Any) -> tuple[str, dict[int, np.ndarray]]:
    url = s3.url("run")
    store = ArtifactStore(url, storage_options=s3.storage_options)
    rng = np.random.default_rng(0)
    data = {}
    for epoch in range(N_EPOCHS):
        data[epoch] = rng.standard_normal(SHAPE).astype(np.float32)
        store.write_epoch(
            "neuron_activations", epoch, {"activations": data[epoch]}, dims=DIMS,
            chunks={"activations": (1, 5, 5)},
        )
    return url, data


def test_listing_epochs_is_one_list_request_whatever_the_number_of_epochs(
    s3: Any, run: tuple[str, dict]
) -> None:
    loader = ArtifactLoader(run[0], storage_options=s3.storage_options)
    s3.server.reset_requests()
    assert loader.get_epochs("neuron_activations") == list(range(N_EPOCHS))
    # First call: the root's format and the analyzer's manifest, then one listing.
    assert s3.server.reset_requests() == {"GetObject": 2, "ListObjectsV2": 1}
    assert loader.get_epochs("neuron_activations") == list(range(N_EPOCHS))
    assert s3.server.reset_requests() == {"ListObjectsV2": 1}


def test_opening_load_epochs_is_metadata_only(s3: Any, run: tuple[str, dict]) -> None:
    loader = ArtifactLoader(run[0], storage_options=s3.storage_options)
    s3.server.reset_requests()
    ds = loader.load_epochs("neuron_activations")
    assert ds.sizes["epoch"] == N_EPOCHS
    assert s3.server.reset_requests() == {"GetObject": 2, "ListObjectsV2": 1}
    loader.load_epochs("neuron_activations")
    assert s3.server.reset_requests() == {"ListObjectsV2": 1}


@pytest.mark.parametrize("chunks", ["zarr", None])
def test_one_neuron_across_epochs_is_two_small_reads_per_epoch(
    s3: Any, run: tuple[str, dict], chunks: str | None
) -> None:
    url, data = run
    ds = ArtifactLoader(url, storage_options=s3.storage_options).load_epochs(
        "neuron_activations", chunks=chunks  # type: ignore[arg-type]
    )
    s3.server.reset_requests()
    values = ds["activations"].sel(neuron=7).values
    np.testing.assert_array_equal(values, np.stack([d[7] for d in data.values()]))
    # No metadata (every epoch has the manifest's layout); per epoch the shard index (suffix
    # range) and neuron 7's chunk (range).
    assert s3.server.reset_requests() == {"GetObject (range)": 2 * N_EPOCHS}


def test_a_write_is_one_existence_check_and_one_put_per_object(s3: Any) -> None:
    store = ArtifactStore(s3.url("run"), storage_options=s3.storage_options)
    outputs = {"activations": np.ones(SHAPE, np.float32), "loss": np.float32(1)}
    store.write_epoch("neuron_activations", 0, outputs, dims=DIMS)  # creates the groups
    store.write_epoch("neuron_activations", 1, outputs, dims=DIMS)  # re-reads the manifest
    s3.server.reset_requests()
    store.write_epoch("neuron_activations", 2, outputs, dims=DIMS)
    # GET epoch_00002/zarr.json (absent), then per field its shard/chunk and zarr.json, then
    # the group's zarr.json last: no HEAD, no LIST, nothing read from parent groups.
    assert s3.server.reset_requests() == {"GetObject": 1, "PutObject": 5}
    assert store.has_epoch("neuron_activations", 2)
    assert not store.has_epoch("neuron_activations", 3)
    assert s3.server.reset_requests() == {"GetObject": 2}
