"""Fixtures of the scale-out tests: a real LocalCluster next to the real S3 endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="module")
def dask_client(s3: Any) -> Iterator[Any]:
    """A ``distributed.Client`` on a LocalCluster: 2 worker processes, 1 thread each.

    Started after the ``s3`` fixture, so the workers inherit its AWS_* environment (test
    credentials, and a dead default endpoint: a URL without storage_options fails at once).
    It is not dask's default scheduler: other tests' dask arrays keep computing in-process
    (a ``memory://`` store or a counting wrapper would not be seen by worker processes).
    """
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client
