"""Shared by every test directory: the toy family, a real S3 endpoint (moto's server)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from epochstore.testing.s3 import TEST_CREDENTIALS, MotoS3Server

# The toy family is no installed plug-in: the tests register it for themselves. It needs
# torch, which the store-only CI job (Python 3.12, .ci/run) does not install; the tests that
# use it skip there (pytest.importorskip("torch")).
try:
    from epochstore.testing import toy
except ModuleNotFoundError as exc:
    if exc.name != "torch":
        raise
else:
    toy.register()

#: Where a URL that lost its storage_options would go: a closed local port, so such a bug fails
#: at once (connection refused) instead of reaching for AWS.
DEAD_ENDPOINT = "http://127.0.0.1:9"


@dataclass(frozen=True)
class S3:
    """A bucket on the session's moto S3 server."""

    server: MotoS3Server
    bucket: str

    @property
    def storage_options(self) -> dict[str, Any]:
        """s3fs options for the endpoint (a fresh dict per call: callers may change it)."""
        return self.server.storage_options

    def url(self, *parts: str) -> str:
        """Return a fresh, unused ``s3://`` URL in the bucket (``parts`` appended)."""
        return "/".join([f"s3://{self.bucket}", uuid.uuid4().hex, *parts])

    def fs(self) -> Any:
        """Return a synchronous s3fs filesystem on the endpoint (no listing cache)."""
        import s3fs

        return s3fs.S3FileSystem(use_listings_cache=False, **self.storage_options)


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    """moto's S3 server on 127.0.0.1 and a free port, with one bucket.

    The AWS_* variables hold test credentials for the session; the default endpoint is a dead
    local port, so only code that passes ``storage_options`` on reaches the server. Fails
    loudly (never skips) if the server cannot start.
    """
    with pytest.MonkeyPatch.context() as env:
        for name, value in TEST_CREDENTIALS.items():
            env.setenv(name, value)
        env.setenv("AWS_ENDPOINT_URL", DEAD_ENDPOINT)
        with MotoS3Server() as server:
            server.create_bucket("epochstore-tests")
            yield S3(server=server, bucket="epochstore-tests")
