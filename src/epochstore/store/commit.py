"""Atomic commit of one epoch node: rename where the filesystem has it, metadata-last elsewhere.

Both strategies give the same guarantee: a reader sees the epoch whole or not at all.

- :class:`RenameCommit` (local directories): the node is written under a hidden temporary name
  (``.tmp-epoch_NNNNN-<uuid>``), every file is fsynced, and one ``rename`` publishes it. An
  overwrite swaps the old and new directories in one ``renameat2(RENAME_EXCHANGE)`` on Linux.
- :class:`MetadataLastCommit` (object stores, memory): chunks are written first under the final
  name and every ``zarr.json`` is held back, then written deepest first, so the epoch group's own
  metadata, which makes the epoch exist, is the last single PUT.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zarr.core.buffer import Buffer, BufferPrototype
from zarr.core.sync import sync
from zarr.storage import WrapperStore

from epochstore._atomic import PARTIAL_SUFFIX, fsync_dir
from epochstore.errors import EpochExistsError, StoreWriteError
from epochstore.naming import TMP_PREFIX, epoch_name, parse_epoch_name, tmp_epoch_name

if TYPE_CHECKING:
    from zarr.abc.store import ByteRequest, Store

    from epochstore.store.location import Location

__all__ = [
    "METADATA_KEY",
    "CommitStrategy",
    "MetadataLastCommit",
    "MetadataLastStore",
    "RenameCommit",
    "commit_strategy_for",
]

METADATA_KEY = "zarr.json"
_TRASH_PREFIX = ".trash-"

#: Writes one epoch node at ``path`` into ``store``.
NodeWriter = Callable[["Store", str], None]


class CommitStrategy(ABC):
    """How an epoch node is made visible all at once."""

    def __init__(self, location: Location) -> None:
        self.location = location

    @abstractmethod
    def commit(
        self, analyzer: str, epoch: int, write: NodeWriter, *, overwrite: bool
    ) -> None:
        """Write the node with ``write`` and publish it atomically.

        Raises
        ------
        EpochExistsError
            If the epoch exists (or another writer committed it first) and not ``overwrite``.
        StoreWriteError
            If the store failed (disk full, I/O error); nothing partial is visible.
        """

    @abstractmethod
    def committed(self, analyzer: str, names: Iterable[str]) -> list[int]:
        """Return the epochs among the listed child ``names`` that are committed, sorted."""

    @abstractmethod
    def cleanup(self, analyzer: str, names: Iterable[str], older_than: float) -> list[str]:
        """Remove what killed writers left among ``names``; return the removed keys."""

    @abstractmethod
    def delete(self, analyzer: str, epoch: int) -> None:
        """Remove a committed epoch so that no reader sees part of it."""


def _write_error(location: Location, analyzer: str, epoch: int, exc: OSError) -> StoreWriteError:
    return StoreWriteError(
        f"writing {analyzer}/{epoch_name(epoch)} to {location.display} failed: {exc}. "
        "No partial epoch was published and existing epochs are untouched; free space or fix "
        "the storage, then write again (store.cleanup() removes leftovers)."
    )


def _exists_error(location: Location, analyzer: str, epoch: int) -> EpochExistsError:
    return EpochExistsError(
        f"epoch {epoch} of analyzer {analyzer!r} already exists in {location.display}; "
        "pass overwrite=True to replace it, or delete_epoch() first"
    )


# --- local filesystem: rename -------------------------------------------------------------------

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); ``False`` where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # pragma: no cover - non-glibc platforms
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # pragma: no cover - filesystems without RENAME_EXCHANGE
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(Path(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(dirpath)


class RenameCommit(CommitStrategy):
    """Write under a temporary hidden name, fsync, rename into place (local directories)."""

    def commit(
        self, analyzer: str, epoch: int, write: NodeWriter, *, overwrite: bool
    ) -> None:
        loc = self.location
        final = loc.local_path(analyzer, epoch_name(epoch))
        if not overwrite and final.exists():
            raise _exists_error(loc, analyzer, epoch)
        tmp_name = tmp_epoch_name(epoch, uuid.uuid4().hex)
        tmp = loc.local_path(analyzer, tmp_name)
        try:
            write(loc.store, loc.key(analyzer, tmp_name))
            _fsync_tree(tmp)
            self._publish(tmp, final, overwrite=overwrite)
        except EpochExistsError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _write_error(loc, analyzer, epoch, exc) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(final.parent)

    def _publish(self, tmp: Path, final: Path, *, overwrite: bool) -> None:
        analyzer, epoch = final.parent.name, parse_epoch_name(final.name)
        assert epoch is not None
        if not overwrite:
            try:
                tmp.rename(final)
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise _exists_error(self.location, analyzer, epoch) from None
                raise
            return
        try:
            swapped = _exchange(tmp, final)
        except FileNotFoundError:
            swapped = False
            with contextlib.suppress(OSError):
                tmp.rename(final)
            if not tmp.exists():
                return
            swapped = _exchange(tmp, final)
        if swapped:
            shutil.rmtree(tmp)  # now holds the old epoch
            return
        # No atomic exchange: the old epoch disappears for a moment, never mixed with the new.
        trash = final.with_name(f"{_TRASH_PREFIX}{final.name}-{uuid.uuid4().hex}")
        final.rename(trash)
        tmp.rename(final)
        shutil.rmtree(trash)

    def committed(self, analyzer: str, names: Iterable[str]) -> list[int]:
        return sorted(e for e in map(parse_epoch_name, names) if e is not None)

    def cleanup(self, analyzer: str, names: Iterable[str], older_than: float) -> list[str]:
        removed: list[str] = []
        now = time.time()
        for name in names:
            if not (
                name.startswith((TMP_PREFIX, _TRASH_PREFIX)) or name.endswith(PARTIAL_SUFFIX)
            ):
                continue
            path = self.location.local_path(analyzer, name)
            try:
                if now - path.stat().st_mtime < older_than:
                    continue
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except FileNotFoundError:
                continue
            removed.append(self.location.key(analyzer, name))
        return removed

    def delete(self, analyzer: str, epoch: int) -> None:
        final = self.location.local_path(analyzer, epoch_name(epoch))
        trash = final.with_name(f"{_TRASH_PREFIX}{final.name}-{uuid.uuid4().hex}")
        final.rename(trash)  # one rename: the epoch vanishes whole
        fsync_dir(final.parent)
        shutil.rmtree(trash)


# --- stores without rename: metadata last --------------------------------------------------------


class MetadataLastStore(WrapperStore[Any]):
    """A store wrapper that holds back ``zarr.json`` writes until :meth:`flush_metadata`.

    Reads of held-back keys are served from memory, so zarr sees a consistent store while the
    node is being written.
    """

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._held: dict[str, Buffer] = {}

    def _with_store(self, store: Store) -> MetadataLastStore:  # pragma: no cover - zarr API
        return type(self)(store)

    @staticmethod
    def _is_metadata(key: str) -> bool:
        return key == METADATA_KEY or key.endswith("/" + METADATA_KEY)

    async def set(self, key: str, value: Buffer) -> None:
        if self._is_metadata(key):
            self._held[key] = value
        else:
            await self._store.set(key, value)

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        if self._is_metadata(key):
            if key not in self._held and not await self._store.exists(key):
                self._held[key] = value
        else:
            await self._store.set_if_not_exists(key, value)

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        if key in self._held and byte_range is None:
            return self._held[key]
        value: Buffer | None = await self._store.get(key, prototype, byte_range)
        return value

    async def exists(self, key: str) -> bool:
        return key in self._held or await self._store.exists(key)

    async def _flush(self) -> None:
        # Deepest first: the epoch group's own zarr.json, which makes the epoch exist, is last.
        for key in sorted(self._held, key=lambda k: k.count("/"), reverse=True):
            await self._store.set(key, self._held.pop(key))

    def flush_metadata(self) -> None:
        """Write the held-back metadata, deepest first."""
        sync(self._flush())


async def _delete_prefix(store: Store, prefix: str) -> None:
    await store.delete_dir(prefix)


class MetadataLastCommit(CommitStrategy):
    """Chunks first, then array metadata, then the epoch group's metadata (object stores)."""

    def commit(
        self, analyzer: str, epoch: int, write: NodeWriter, *, overwrite: bool
    ) -> None:
        loc = self.location
        node = loc.key(analyzer, epoch_name(epoch))
        exists = sync(loc.store.exists(f"{node}/{METADATA_KEY}"))
        if exists and not overwrite:
            raise _exists_error(loc, analyzer, epoch)
        try:
            if exists:
                self.delete(analyzer, epoch)
            held = MetadataLastStore(loc.store)
            write(held, node)
            held.flush_metadata()
        except OSError as exc:
            with contextlib.suppress(Exception):
                sync(_delete_prefix(loc.store, node))
            raise _write_error(loc, analyzer, epoch, exc) from exc
        except BaseException:
            with contextlib.suppress(Exception):
                sync(_delete_prefix(loc.store, node))
            raise

    def committed(self, analyzer: str, names: Iterable[str]) -> list[int]:
        import asyncio

        candidates = [(e, n) for n in names if (e := parse_epoch_name(n)) is not None]

        async def check() -> list[bool]:
            return list(
                await asyncio.gather(
                    *(
                        self.location.store.exists(self.location.key(analyzer, n, METADATA_KEY))
                        for _, n in candidates
                    )
                )
            )

        flags = sync(check()) if candidates else []
        return sorted(e for (e, _), ok in zip(candidates, flags, strict=True) if ok)

    def cleanup(self, analyzer: str, names: Iterable[str], older_than: float) -> list[str]:
        # Object stores give no cheap age: every uncommitted epoch prefix is removed, so call
        # this only when no writer is running.
        names = list(names)
        committed = {epoch_name(e) for e in self.committed(analyzer, names)}
        removed = []
        for name in names:
            if parse_epoch_name(name) is None or name in committed:
                continue
            key = self.location.key(analyzer, name)
            sync(_delete_prefix(self.location.store, key))
            removed.append(key)
        return removed

    def delete(self, analyzer: str, epoch: int) -> None:
        node = self.location.key(analyzer, epoch_name(epoch))
        # The group metadata goes first: from then on the epoch does not exist.
        sync(self.location.store.delete(f"{node}/{METADATA_KEY}"))
        sync(_delete_prefix(self.location.store, node))


def commit_strategy_for(location: Location) -> CommitStrategy:
    """Rename on a local directory, metadata-last everywhere else."""
    if location.local_root is not None:
        return RenameCommit(location)
    return MetadataLastCommit(location)
