"""Which write each committed epoch holds: a version string per epoch and field, never data.

An epoch node is never changed in place: every write (new epoch, overwrite, repair,
recompute) makes a new node with new files, so the field's chunk object identifies the write
it came from:

- a local directory: the chunk file's inode number and its change and modification times
  (one ``stat``; a new file for every write, and a chunk rewritten in place, e.g. damaged,
  changes them too);
- an object store (s3fs, obstore): the ETag of the epoch's ``zarr.json`` (it holds the write's
  random token) joined with the chunk's ETag, both from the listing that
  :meth:`~epochstore.ArtifactLoader.load_epochs` makes anyway (no extra request).

Other stores (memory, unknown fsspec backends) give no versions: what is derived from epochs
(:mod:`epochstore.store.series`) is then not used.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zarr.storage import FsspecStore, LocalStore, ObjectStore, WrapperStore

from epochstore.naming import epoch_name

if TYPE_CHECKING:
    from zarr.abc.store import Store

__all__ = [
    "FieldVersions",
    "base_store",
    "list_keys_with_versions",
    "local_directory",
    "local_version",
]


def base_store(store: Store) -> Store:
    """The innermost store below wrappers (counting, strict) that keep keys as they are."""
    while isinstance(store, WrapperStore):
        store = store._store
    return store


def local_version(path: str) -> str | None:
    """The version of a local file (None if it is gone)."""
    try:
        st = os.stat(path)  # noqa: PTH116 - a str path: pathlib costs more than the stat
    except OSError:
        return None
    return f"{st.st_ino}-{st.st_ctime_ns}-{st.st_mtime_ns}-{st.st_size}"


async def list_keys_with_versions(
    store: Store, prefix: str
) -> list[tuple[str, str | None]] | None:
    """Every key under ``prefix`` with its object's ETag, in the plain listing's requests.

    Returns None when the store cannot say (the caller then lists keys without versions).
    """
    base = base_store(store)
    if isinstance(base, ObjectStore):
        import obstore

        found: list[tuple[str, str | None]] = []
        async for batch in obstore.list(base.store, prefix=prefix):
            for meta in batch:
                etag = meta.get("e_tag")
                found.append((meta["path"], None if etag is None else str(etag)))
        return found
    if isinstance(base, FsspecStore):
        root = f"{base.path}/"
        info: dict[str, dict[str, Any]] = await base.fs._find(
            f"{base.path}/{prefix}", detail=True, maxdepth=None, withdirs=False
        )
        found = []
        for path, details in info.items():
            etag = details.get("ETag", details.get("etag"))
            found.append((path.removeprefix(root), None if etag is None else str(etag)))
        return found
    return None


@dataclass(frozen=True)
class FieldVersions:
    """Where the versions of one single-chunk field come from (picklable: sent to workers).

    Attributes
    ----------
    suffix
        The field's chunk key below an epoch node, ``"<field>/<chunk key>"``.
    nodes, keys
        From an object store's listing: each epoch's node version, and every key's version
        (keys relative to the analyzer).
    local_dir
        For a local store: the analyzer's directory (chunk files are ``stat``-ed).
    data_nodes
        The node holding an epoch's data where it is not the epoch node (the listing's
        ``data_nodes``: a later generation).
    """

    suffix: str
    nodes: Mapping[int, str] | None = None
    keys: Mapping[str, str] | None = None
    local_dir: str | None = None
    data_nodes: Mapping[int, str] = field(default_factory=dict)

    def _chunk(self, epoch: int) -> str:
        return f"{self.data_nodes.get(epoch) or epoch_name(epoch)}/{self.suffix}"

    def of(self, epochs: Iterable[int]) -> dict[int, str]:
        """The version of the field in each of ``epochs`` that has one (taken now)."""
        found: dict[int, str] = {}
        if self.nodes is not None and self.keys is not None:
            for epoch in epochs:
                node = self.nodes.get(epoch)
                chunk = self.keys.get(self._chunk(epoch))
                if node is not None and chunk is not None:
                    found[epoch] = f"{node}/{chunk}"
        elif self.local_dir is not None:
            for epoch in epochs:
                version = local_version(f"{self.local_dir}/{self._chunk(epoch)}")
                if version is not None:
                    found[epoch] = version
        return found


def local_directory(store: Store) -> str | None:
    """The directory of a local store, also below wrappers; else None."""
    base = base_store(store)
    return str(base.root) if isinstance(base, LocalStore) else None
