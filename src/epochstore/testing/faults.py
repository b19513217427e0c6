"""Fault injection: a store that fails writes the way real storage does, an analyzer that dies."""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from zarr.storage import WrapperStore

from epochstore.interface import EpochContext, FieldSpec, JSONValue, RunContext
from epochstore.naming import epoch_name

if TYPE_CHECKING:
    import torch
    from zarr.abc.store import Store
    from zarr.core.buffer import Buffer

__all__ = ["FailingStore", "KillOnce"]


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


@dataclass
class KillOnce:
    """An analyzer that SIGKILLs its own worker process the first time it runs for some epochs.

    Before dying it leaves what a writer killed mid-commit leaves on an object store: a chunk
    and an array's metadata under the epoch's prefix, no group metadata (a marker file per
    epoch, on a disk every worker shares, makes it happen once). It reads the toy family's
    cache (:mod:`epochstore.testing.toy`). It lives here, in an importable module, because it
    travels to worker processes, which cannot import a test module.
    """

    marker_dir: str
    run_url: str = ""
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    epochs: tuple[int, ...] = ()
    name: str = "kill_once"
    version: str = "1"
    fields: Mapping[str, FieldSpec] = field(
        default_factory=lambda: {"norm": FieldSpec(()), "hidden_sum": FieldSpec(("unit",))}
    )

    def prepare(self, run: RunContext) -> Mapping[str, JSONValue]:
        """Nothing run-level."""
        return {}

    def compute(
        self, model: torch.nn.Module, cache: Mapping[str, torch.Tensor], probe: Any,
        context: EpochContext,
    ) -> dict[str, np.ndarray]:
        """Die once for each epoch in ``epochs`` (leaving a half-written node), else compute."""
        marker = Path(self.marker_dir, f"killed_epoch_{context.epoch}")
        if context.epoch in self.epochs and not marker.exists():
            marker.touch()
            import s3fs

            fs = s3fs.S3FileSystem(**self.storage_options)
            node = f"{self.run_url}/artifacts/{self.name}/{epoch_name(context.epoch)}"
            fs.pipe({f"{node}/hidden_sum/c/0": b"half a shard",
                     f"{node}/hidden_sum/zarr.json": b'{"zarr_format": 3, "node_type": "arr'})
            os.kill(os.getpid(), signal.SIGKILL)
        return {
            "norm": np.asarray(float(cache["logits"].norm())),
            "hidden_sum": cache["hidden"].sum(dim=0).cpu().numpy(),
        }
