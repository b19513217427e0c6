"""Backends every store test runs on: the conformance suite is parametrized over them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zarr

from epochstore import ArtifactLoader, ArtifactStore

# local: a directory (rename commit); memory: a zarr MemoryStore; fsspec-memory: an fsspec URL
# without rename (metadata-last commit, as on object stores); s3: a real S3 endpoint (moto's
# server, see tests/conftest.py), metadata-last over HTTP.
BACKENDS = ["local", "memory", "fsspec-memory", "s3"]


class Backend:
    """Opens writers and readers on one fresh location of one backend kind."""

    def __init__(self, kind: str, tmp_path: Path, s3: Any = None) -> None:
        self.kind = kind
        self.storage_options: dict[str, Any] | None = None
        self.location: Any
        if kind == "s3":
            self.location = s3.url("run")
            self.storage_options = s3.storage_options
        elif kind == "local":
            self.location = tmp_path / "run"
            self.location.mkdir(parents=True)
        elif kind == "memory":
            self.location = zarr.storage.MemoryStore()
        else:
            self.location = f"memory://epochstore-tests/{uuid.uuid4().hex}"

    @property
    def has_rename(self) -> bool:
        return self.kind == "local"

    def store(self, **kwargs: Any) -> ArtifactStore:
        return ArtifactStore(self.location, storage_options=self.storage_options, **kwargs)

    def loader(self) -> ArtifactLoader:
        return ArtifactLoader(self.location, storage_options=self.storage_options)


def _s3(request: pytest.FixtureRequest, kind: str) -> Any:
    # Only tests that use the s3 backend start the (session-wide) server.
    return request.getfixturevalue("s3") if kind == "s3" else None


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return Backend(request.param, tmp_path, _s3(request, request.param))


@pytest.fixture
def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], Backend]:
    def make(kind: str) -> Backend:
        return Backend(kind, tmp_path / uuid.uuid4().hex, _s3(request, kind))

    return make
