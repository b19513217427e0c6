"""The series of small fields on S3 (moto): a scalar across epochs is one GET, never stale."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from epochstore import ArtifactLoader, ArtifactStore

A = "metrics"
N_EPOCHS = 30


def _outputs(epoch: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    return {"loss": np.float32(epoch + shift), "norms": np.arange(8.0) * (epoch + shift)}


def _location(s3: Any, client: str) -> tuple[Any, dict[str, Any] | None]:
    url = s3.url()
    if client == "s3fs":
        return url, s3.storage_options
    return s3.server.obstore_location(s3.bucket, url.removeprefix(f"s3://{s3.bucket}/")), None


@pytest.mark.parametrize("client", ["s3fs", "obstore"])
def test_a_scalar_across_epochs_is_one_get_and_follows_every_change(
    s3: Any, client: str
) -> None:
    location, options = _location(s3, client)
    store = ArtifactStore(location, storage_options=options)
    for epoch in range(N_EPOCHS):
        store.write_epoch(A, epoch, _outputs(epoch))
    expected = np.array([_outputs(e)["loss"] for e in range(N_EPOCHS)])

    loader = ArtifactLoader(location, storage_options=options)
    np.testing.assert_array_equal(loader.load_epochs(A)["loss"].values, expected)  # builds it

    s3.server.reset_requests()
    ds = ArtifactLoader(location, storage_options=options).load_epochs(A)
    assert s3.server.reset_requests() == {"GetObject": 2, "ListObjectsV2": 1}  # as before
    np.testing.assert_array_equal(ds["loss"].values, expected)
    assert s3.server.reset_requests() == {"GetObject": 1}  # the series, whatever N_EPOCHS

    store.write_epoch(A, 4, _outputs(4, 0.5), overwrite=True)  # recomputed
    store.write_epoch(A, N_EPOCHS, _outputs(N_EPOCHS))  # added
    store.delete_epoch(A, 9)  # deleted
    epochs = [e for e in range(N_EPOCHS + 1) if e != 9]
    expected = np.array([_outputs(e, 0.5 if e == 4 else 0.0)["loss"] for e in epochs])
    s3.server.reset_requests()
    ds = ArtifactLoader(location, storage_options=options).load_epochs(A)
    s3.server.reset_requests()
    np.testing.assert_array_equal(ds["loss"].values, expected)
    # The series, the two changed epochs' nodes, and the series written again.
    assert s3.server.reset_requests() == {"GetObject": 3, "PutObject": 1}
    np.testing.assert_array_equal(
        ArtifactLoader(location, storage_options=options).load_epochs(A)["loss"].values, expected
    )
