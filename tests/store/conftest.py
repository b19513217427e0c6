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
# without rename (metadata-last commit, as on object stores).
BACKENDS = ["local", "memory", "fsspec-memory"]


class Backend:
    """Opens writers and readers on one fresh location of one backend kind."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        if kind == "local":
            self.location: Any = tmp_path / "run"
            self.location.mkdir(parents=True)
        elif kind == "memory":
            self.location = zarr.storage.MemoryStore()
        else:
            self.location = f"memory://epochstore-tests/{uuid.uuid4().hex}"

    @property
    def has_rename(self) -> bool:
        return self.kind == "local"

    def store(self, **kwargs: Any) -> ArtifactStore:
        return ArtifactStore(self.location, **kwargs)

    def loader(self) -> ArtifactLoader:
        return ArtifactLoader(self.location)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return Backend(request.param, tmp_path)


@pytest.fixture
def make_backend(tmp_path: Path) -> Callable[[str], Backend]:
    def make(kind: str) -> Backend:
        return Backend(kind, tmp_path / uuid.uuid4().hex)

    return make
