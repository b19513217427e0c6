"""Fault injection: a zarr store wrapper that fails writes the way real storage does."""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any

from zarr.storage import WrapperStore

if TYPE_CHECKING:
    from zarr.abc.store import Store
    from zarr.core.buffer import Buffer

__all__ = ["FailingStore"]


class FailingStore(WrapperStore[Any]):
    """Raise ``OSError(code)`` once more than ``budget`` bytes have been written through it.

    Models a disk filling up (``errno.ENOSPC``) or a device failing (``errno.EIO``) in the
    middle of a write. ``failures`` counts the writes refused.
    """

    def __init__(self, store: Store, *, budget: int, code: int = errno.ENOSPC) -> None:
        super().__init__(store)
        self.budget = budget
        self.code = code
        self.written = 0
        self.failures = 0

    def _with_store(self, store: Store) -> FailingStore:  # pragma: no cover - zarr API
        return type(self)(store, budget=self.budget, code=self.code)

    async def set(self, key: str, value: Buffer) -> None:
        if self.written + len(value) > self.budget:
            self.failures += 1
            raise OSError(self.code, os.strerror(self.code), key)
        self.written += len(value)
        await self._store.set(key, value)
