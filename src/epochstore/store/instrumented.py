"""A store wrapper that counts reads: the stable way to test and benchmark laziness.

Timings are noisy; counts are not. Wrap any zarr store, open an :class:`~epochstore.ArtifactLoader`
on it, and assert how many chunk reads (and bytes) an operation made.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

from zarr.storage import WrapperStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from zarr.abc.store import ByteRequest, Store
    from zarr.core.buffer import Buffer, BufferPrototype

__all__ = ["CountingStore"]


def _is_metadata(key: str) -> bool:
    return key == "zarr.json" or key.endswith("/zarr.json")


class CountingStore(WrapperStore[Any]):
    """Counts ``get``, ``exists`` and listing calls on a wrapped store.

    Attributes
    ----------
    chunk_reads
        ``Counter`` of chunk keys read (every ``get`` of a non-metadata key).
    metadata_reads
        ``Counter`` of ``zarr.json`` keys read.
    bytes_read
        Total bytes returned by ``get`` for chunk keys.
    list_calls
        Number of ``list``, ``list_dir`` and ``list_prefix`` calls.
    exists_calls
        Number of ``exists`` calls.
    """

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._lock = threading.Lock()
        self.reset()

    def _with_store(self, store: Store) -> CountingStore:  # pragma: no cover - zarr API
        return type(self)(store)

    def __getstate__(self) -> dict[str, Any]:
        return {"_store": self._store}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["_store"])  # type: ignore[misc]

    def reset(self) -> None:
        """Set every count back to zero."""
        with self._lock:
            self.chunk_reads: Counter[str] = Counter()
            self.metadata_reads: Counter[str] = Counter()
            self.bytes_read = 0
            self.list_calls = 0
            self.exists_calls = 0

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        value: Buffer | None = await self._store.get(key, prototype, byte_range)
        with self._lock:
            if _is_metadata(key):
                self.metadata_reads[key] += 1
            else:
                self.chunk_reads[key] += 1
                self.bytes_read += 0 if value is None else len(value)
        return value

    async def exists(self, key: str) -> bool:
        with self._lock:
            self.exists_calls += 1
        return bool(await self._store.exists(key))

    def list_dir(self, prefix: str) -> AsyncIterator[str]:
        with self._lock:
            self.list_calls += 1
        return self._store.list_dir(prefix)  # type: ignore[no-any-return]

    def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        with self._lock:
            self.list_calls += 1
        return self._store.list_prefix(prefix)  # type: ignore[no-any-return]

    def list(self) -> AsyncIterator[str]:
        with self._lock:
            self.list_calls += 1
        return self._store.list()  # type: ignore[no-any-return]
