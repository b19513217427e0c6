"""Atomic commit of one epoch node: rename where the filesystem has it, metadata-last elsewhere.

Both strategies give the same guarantee: a reader sees the epoch whole or not at all.

- :class:`RenameCommit` (local directories): the node is written under a hidden temporary name
  (``.tmp-epoch_NNNNN-<uuid>``), every file is fsynced, and one ``rename`` publishes it. An
  overwrite swaps the old and new directories in one ``renameat2(RENAME_EXCHANGE)`` on Linux.
- :class:`MetadataLastCommit` (object stores, memory): chunks are written first under the final
  name and every ``zarr.json`` is held back, then written deepest first, so the epoch group's own
  metadata, which makes the epoch exist, is the last single PUT. The node is written through a
  :class:`MetadataLastStore` rooted at it, which sees only its own writes: zarr reads nothing
  back (one request per object), and a killed writer's leftovers are overwritten, never merged.
  An overwrite writes the new data as the epoch's next *generation* (``epoch_NNNNN.gK``, beside
  the node), then one PUT of the epoch group's metadata, naming it (``DATA_NODE_KEY``), switches
  readers over; the old data is deleted after. The epoch is never absent and never mixed.

Listing is part of the strategy (:meth:`CommitStrategy.list_epochs`), because what "committed"
means differs: a local directory lists committed epochs by name (temporary nodes are hidden), an
object store needs to see which epoch prefixes hold their group ``zarr.json``. Both answer from
one listing of the analyzer (on S3: ``ceil(keys / 1000)`` ``ListObjectsV2`` requests, where an
epoch has ``1 + 2 * fields`` keys in the default sharded layout), never one request per epoch.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import json
import os
import shutil
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import WrapperStore

from epochstore.errors import EpochExistsError, StoreWriteError
from epochstore.location import PARTIAL_SUFFIX, fsync_dir, fsync_tree
from epochstore.naming import (
    TMP_PREFIX,
    epoch_name,
    generation_name,
    parse_epoch_name,
    parse_generation_name,
    tmp_epoch_name,
)
from epochstore.store.manifest import DATA_NODE_KEY
from epochstore.store.versions import list_keys_with_versions

if TYPE_CHECKING:
    from zarr.abc.store import ByteRequest, Store

    from epochstore.store.location import Location

__all__ = [
    "METADATA_KEY",
    "CommitStrategy",
    "EpochListing",
    "MetadataLastCommit",
    "MetadataLastStore",
    "RenameCommit",
    "commit_strategy_for",
    "data_node_of",
    "key_exists",
]

METADATA_KEY = "zarr.json"
_TRASH_PREFIX = ".trash-"

#: Writes one epoch node at ``path`` into ``store``.
NodeWriter = Callable[["Store", str], None]


@dataclass(frozen=True)
class EpochListing:
    """What one listing of an analyzer group says.

    Attributes
    ----------
    epochs
        The committed epochs, sorted.
    analyzer_exists
        Whether the analyzer group's own ``zarr.json`` was listed.
    leftovers
        Child names that are not committed epochs but what a writer left (temporary or trash
        nodes locally; epoch prefixes without their group metadata on object stores). Some may
        belong to a writer still running.
    versions, key_versions
        When asked for and the listing gives them (object stores): each committed epoch's
        version (the ETag of its ``zarr.json``), and every key's, relative to the analyzer
        (:mod:`epochstore.store.versions`).
    data_nodes
        The node holding each committed epoch's data where it is not the epoch node itself (a
        later generation, ``epoch_NNNNN.gK``, after an overwrite on an object store).
    orphaned
        Epoch nodes whose own fields are an overwritten generation that a killed overwrite did
        not delete (their group metadata names a later generation): removed by cleanup.
    """

    epochs: list[int]
    analyzer_exists: bool
    leftovers: list[str] = field(default_factory=list)
    versions: dict[int, str] | None = None
    key_versions: dict[str, str] | None = None
    data_nodes: dict[int, str] = field(default_factory=dict)
    orphaned: list[str] = field(default_factory=list)

    def data_node(self, epoch: int) -> str:
        """The name of the node holding ``epoch``'s data (relative to the analyzer)."""
        return self.data_nodes.get(epoch) or epoch_name(epoch)


async def _key_exists(store: Store, key: str) -> bool:
    # A GET of a small metadata object: one request on object stores, where exists() may cost
    # two (s3fs follows a missing HEAD with a LIST, to look for a "directory").
    value = await store.get(key, prototype=default_buffer_prototype())
    return value is not None


def key_exists(store: Store, key: str) -> bool:
    """Return whether ``key`` (a small metadata object) exists, in one request."""
    return sync(_key_exists(store, key))


def data_node_of(group: dict[str, Any] | None, epoch: int) -> str:
    """The node holding an epoch's data, from its group metadata (``DATA_NODE_KEY``).

    Anything but a generation name of this epoch means the epoch node itself.
    """
    attrs = (group or {}).get("attributes", {})
    name = attrs.get(DATA_NODE_KEY) if isinstance(attrs, dict) else None
    if isinstance(name, str):
        found = parse_generation_name(name)
        if found is not None and found[0] == epoch:
            return name
    return epoch_name(epoch)


def _parse_group(value: Buffer | None) -> dict[str, Any] | None:
    """A group's ``zarr.json`` as a dict, or None if absent or unreadable."""
    if value is None:
        return None
    try:
        meta = json.loads(value.to_bytes())
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None


async def _read_group(store: Store, key: str) -> dict[str, Any] | None:
    """A group's ``zarr.json`` as a dict (one GET), or None if absent or unreadable."""
    return _parse_group(await store.get(key, prototype=default_buffer_prototype()))


async def _collect(keys: AsyncIterator[str]) -> list[str]:
    return [key async for key in keys]


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
    def list_epochs(self, analyzer: str, *, versions: bool = False) -> EpochListing:
        """List the analyzer's committed epochs from one listing; read no epoch's metadata.

        With ``versions``, also each key's version where the listing gives it (ETags on
        object stores, in the same requests; local listings give none).
        """

    @abstractmethod
    def cleanup(self, analyzer: str, names: Iterable[str], stale_after: float) -> list[str]:
        """Remove what killed writers left among the child ``names``; return the removed keys."""

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
            fsync_tree(tmp)
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

    def list_epochs(self, analyzer: str, *, versions: bool = False) -> EpochListing:
        # One directory listing: committed epochs are the children named epoch_NNNNN (a node
        # appears by rename, whole); hidden names are writes in progress or leftovers. Listed
        # with os.listdir: zarr's async listing costs ~20 us per entry (20 ms for 1,000 epochs).
        # (No versions: a local reader stats the files it needs, see store/versions.py.)
        try:
            names = os.listdir(self.location.local_path(analyzer))  # noqa: PTH208
        except (FileNotFoundError, NotADirectoryError):
            names = []
        hidden = (TMP_PREFIX, _TRASH_PREFIX)
        epochs, leftovers, generations = [], [], set()
        for name in names:
            epoch = parse_epoch_name(name)
            if epoch is not None:
                epochs.append(epoch)
            elif name.startswith(hidden) or name.endswith(PARTIAL_SUFFIX):
                leftovers.append(name)
            elif (found := parse_generation_name(name)) is not None:
                generations.add(found[0])
        # Generations are written only on object stores; a local copy of such a store has them,
        # and its group metadata says which one holds the data.
        data_nodes = {}
        for epoch in generations.intersection(epochs):
            path = self.location.local_path(analyzer, epoch_name(epoch), METADATA_KEY)
            try:
                group = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue
            node = data_node_of(group if isinstance(group, dict) else None, epoch)
            if node != epoch_name(epoch):
                data_nodes[epoch] = node
        return EpochListing(
            sorted(epochs), METADATA_KEY in names, sorted(leftovers), data_nodes=data_nodes
        )

    def cleanup(self, analyzer: str, names: Iterable[str], stale_after: float) -> list[str]:
        removed: list[str] = []
        now = time.time()
        for name in names:
            if not (
                name.startswith((TMP_PREFIX, _TRASH_PREFIX)) or name.endswith(PARTIAL_SUFFIX)
            ):
                continue
            path = self.location.local_path(analyzer, name)
            try:
                if now - path.stat().st_mtime < stale_after:
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


def _is_metadata(key: str) -> bool:
    return key == METADATA_KEY or key.endswith("/" + METADATA_KEY)



class MetadataLastStore(WrapperStore[Any]):
    """A view of ``store`` rooted at ``root`` that holds back ``zarr.json`` writes.

    The node below ``root`` is written from scratch: chunks go to the store at once, metadata is
    kept in memory until :meth:`flush_metadata` writes it, deepest first. Reads and existence
    checks see only what this writer wrote (held metadata, chunks it has set), never what was
    already in the store: a write makes no metadata requests and no read of a shard it is about
    to replace, and what a killed writer left at ``root`` (chunks, array metadata without the
    group's) is overwritten, never mistaken for an existing node or merged into a new shard.

    Write the node at the view's root (zarr path ``""``): a node written deeper would have zarr
    create its parents as new, empty groups.

    Parameters
    ----------
    store
        The underlying store.
    root
        Key prefix of the node being written, e.g. ``"artifacts/a/epoch_00001"``.
    """

    def __init__(self, store: Store, root: str) -> None:
        super().__init__(store)
        self._root = root.strip("/")
        self._held: dict[str, Buffer] = {}
        self._written: set[str] = set()

    def _with_store(self, store: Store) -> MetadataLastStore:  # pragma: no cover - zarr API
        return type(self)(store, self._root)

    def _key(self, key: str) -> str:
        return f"{self._root}/{key}" if self._root and key else (self._root or key)

    def _strip(self, key: str) -> str:
        return key.removeprefix(f"{self._root}/") if self._root else key

    async def set(self, key: str, value: Buffer) -> None:
        if _is_metadata(key):
            self._held[key] = value
        else:
            await self._store.set(self._key(key), value)
            self._written.add(key)

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        if _is_metadata(key):
            self._held.setdefault(key, value)
        elif key not in self._written:
            await self.set(key, value)

    async def _set_many(self, values: Iterable[tuple[str, Buffer]]) -> None:
        for key, value in values:
            await self.set(key, value)

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        if _is_metadata(key):
            held = self._held.get(key)
            if held is None or byte_range is None:
                return held
        elif key not in self._written:
            return None  # a fresh node: nothing is there until this writer puts it
        value: Buffer | None = await self._store.get(self._key(key), prototype, byte_range)
        return value

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Iterable[tuple[str, ByteRequest | None]]
    ) -> list[Buffer | None]:
        return [await self.get(key, prototype, byte_range) for key, byte_range in key_ranges]

    async def exists(self, key: str) -> bool:
        return key in self._held or key in self._written

    async def delete(self, key: str) -> None:
        self._held.pop(key, None)
        self._written.discard(key)
        await self._store.delete(self._key(key))

    async def delete_dir(self, prefix: str) -> None:
        prefix = prefix.rstrip("/")

        def inside(key: str) -> bool:
            return not prefix or key.startswith(f"{prefix}/")

        self._held = {k: v for k, v in self._held.items() if not inside(k)}
        self._written = {k for k in self._written if not inside(k)}
        await self._store.delete_dir(self._key(prefix))

    async def _list_held(self, prefix: str) -> AsyncIterator[str]:
        for key in sorted(self._held):
            if key.startswith(prefix):
                yield key

    def list(self) -> AsyncIterator[str]:
        return self._list_held("")

    def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        return self._list_held(prefix)

    async def _list_dir_held(self, prefix: str) -> AsyncIterator[str]:
        base = f"{prefix.rstrip('/')}/" if prefix.strip("/") else ""
        seen = set()
        async for key in self._list_held(base):
            child = key[len(base) :].split("/", 1)[0]
            if child not in seen:
                seen.add(child)
                yield child

    def list_dir(self, prefix: str) -> AsyncIterator[str]:
        # Only metadata is held and listed: a node written from scratch has no other nodes.
        return self._list_dir_held(prefix)

    async def _flush(self) -> None:
        # Deepest first: the epoch group's own zarr.json, which makes the epoch exist, is last.
        for key in sorted(self._held, key=lambda k: k.count("/"), reverse=True):
            await self._store.set(self._key(key), self._held.pop(key))

    def flush_metadata(self) -> None:
        """Write the held-back metadata, deepest first."""
        sync(self._flush())

    def take_root_metadata(self) -> Buffer | None:
        """Remove and return the held metadata of the node itself (its commit point)."""
        return self._held.pop(METADATA_KEY, None)


async def _create_exclusive(store: Store, key: str, value: Buffer) -> bool:
    """Write ``key`` only if it does not exist; return whether this call created it.

    On S3 (through obstore's :class:`zarr.storage.ObjectStore`, or s3fs) this is one
    conditional PUT (``If-None-Match: *``): of two writers, exactly one succeeds. Other stores
    check, then write: atomic within one process (memory), not across processes.
    """
    from zarr.storage import FsspecStore, ObjectStore

    if isinstance(store, ObjectStore):
        import obstore

        try:
            await obstore.put_async(store.store, key, value.as_buffer_like(), mode="create")
        except obstore.exceptions.AlreadyExistsError:
            return False
        return True
    protocol = getattr(getattr(store, "fs", None), "protocol", ())
    protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol)
    if isinstance(store, FsspecStore) and {"s3", "s3a"} & set(protocols):
        try:  # s3fs sends If-None-Match: * for mode="create"
            await store.fs._pipe_file(f"{store.path}/{key}", value.to_bytes(), mode="create")
        except FileExistsError:
            return False
        return True
    if await _key_exists(store, key):
        return False
    await store.set(key, value)
    return True


async def _delete_prefix(store: Store, prefix: str) -> None:
    await store.delete_dir(prefix)


class MetadataLastCommit(CommitStrategy):
    """Chunks first, then array metadata, then the epoch group's metadata (object stores).

    A new epoch costs, on S3, one GET (does the epoch exist?) and one PUT per object: each
    field's chunk or shard and its ``zarr.json``, then the group's ``zarr.json``, a conditional
    create. The node is written through a :class:`MetadataLastStore` rooted at it, so zarr
    checks no parent group.

    An overwrite never deletes before it commits: the new data is written as the epoch's next
    generation (``epoch_NNNNN.gK``, claimed by a conditional create of its ``zarr.json``, so
    two overwriters never write into one generation), then one PUT of the epoch group's
    ``zarr.json``, naming that generation (``DATA_NODE_KEY``), switches every later reader to
    it; the old data is deleted after. Readers see the old epoch or the new one, never none
    and never a mix (one already reading the old data when it goes is told to retry); a killed
    overwrite leaves the old epoch as it was.
    """

    def commit(
        self, analyzer: str, epoch: int, write: NodeWriter, *, overwrite: bool
    ) -> None:
        loc = self.location
        node = loc.key(analyzer, epoch_name(epoch))
        current = sync(loc.store.get(f"{node}/{METADATA_KEY}", default_buffer_prototype()))
        if current is not None and not overwrite:
            raise _exists_error(loc, analyzer, epoch)
        if current is not None:
            self._replace(analyzer, epoch, data_node_of(_parse_group(current), epoch), write)
            return
        with self._removed_if_failed(node, analyzer, epoch):
            held = MetadataLastStore(loc.store, node)
            write(held, "")
            root = held.take_root_metadata()
            held.flush_metadata()
            # The commit point, a conditional create: of two writers of one new epoch only
            # one can succeed (If-None-Match on S3), and the other must not delete its node.
            if root is not None and not sync(
                _create_exclusive(loc.store, f"{node}/{METADATA_KEY}", root)
            ):
                raise _exists_error(loc, analyzer, epoch)

    @contextlib.contextmanager
    def _removed_if_failed(self, prefix: str, analyzer: str, epoch: int) -> Iterator[None]:
        """Delete what was written under ``prefix`` if the block fails (an OSError becomes
        :class:`StoreWriteError`); an :class:`EpochExistsError` leaves it: the node is the
        other writer's."""
        loc = self.location
        try:
            yield
        except EpochExistsError:
            raise
        except OSError as exc:
            with contextlib.suppress(Exception):
                sync(_delete_prefix(loc.store, prefix))
            raise _write_error(loc, analyzer, epoch, exc) from exc
        except BaseException:
            with contextlib.suppress(Exception):
                sync(_delete_prefix(loc.store, prefix))
            raise

    def _claim(self, analyzer: str, epoch: int, after: int) -> str:
        """Claim the first free generation after ``after``; return its node name."""
        for generation in range(after + 1, after + 1 + _MAX_CLAIMS):
            name = generation_name(epoch, generation)
            key = f"{self.location.key(analyzer, name)}/{METADATA_KEY}"
            if sync(_create_exclusive(self.location.store, key, _CLAIM)):
                return name
        raise StoreWriteError(
            f"overwriting {analyzer}/{epoch_name(epoch)} in {self.location.display} found "
            f"{_MAX_CLAIMS} generations claimed by other writers; if none is running, "
            "store.cleanup() removes what killed writers left, then write again"
        )

    def _replace(self, analyzer: str, epoch: int, old: str, write: NodeWriter) -> None:
        loc = self.location
        node = loc.key(analyzer, epoch_name(epoch))
        old_generation = (parse_generation_name(old) or (epoch, 0))[1]
        name = self._claim(analyzer, epoch, old_generation)
        target = loc.key(analyzer, name)
        with self._removed_if_failed(target, analyzer, epoch):
            held = MetadataLastStore(loc.store, target)
            write(held, "")
            root = held.take_root_metadata()
            if root is None:  # pragma: no cover - write_node always creates the group
                raise StoreWriteError(f"writing {target} made no group metadata")
            held.flush_metadata()
            sync(loc.store.set(f"{target}/{METADATA_KEY}", root))
            # The commit point: one PUT of the epoch group's metadata naming the generation.
            sync(loc.store.set(f"{node}/{METADATA_KEY}", _naming_data_node(root, name)))
        # The old data goes only now; what a failure here leaves is found by the listing
        # (it resolves the epoch from its metadata) and removed by cleanup().
        with contextlib.suppress(Exception):
            if old_generation:
                sync(_delete_prefix(loc.store, loc.key(analyzer, old)))
            else:
                sync(_delete_fields(loc.store, node))

    def _resolve(self, analyzer: str, epochs: Iterable[int]) -> dict[int, str]:
        """Each epoch's data node, from its group metadata (one GET per epoch)."""

        async def one(epoch: int) -> tuple[int, str]:
            key = f"{self.location.key(analyzer, epoch_name(epoch))}/{METADATA_KEY}"
            return epoch, data_node_of(await _read_group(self.location.store, key), epoch)

        async def all_of(wanted: list[int]) -> list[tuple[int, str]]:
            return list(await asyncio.gather(*(one(e) for e in wanted)))

        return dict(sync(all_of(sorted(epochs))))

    def list_epochs(self, analyzer: str, *, versions: bool = False) -> EpochListing:
        # One recursive listing of the analyzer (no delimiter; S3 pages 1000 keys per request):
        # an epoch is committed iff the key epoch_NNNNN/zarr.json is among the keys.
        prefix = f"{self.location.key(analyzer)}/"
        tagged = None
        if versions:
            tagged = sync(list_keys_with_versions(self.location.store, prefix))
        if tagged is None:
            keys = sync(_collect(self.location.store.list_prefix(prefix)))
        else:
            keys = [key for key, _ in tagged]
        committed: set[int] = set()
        own_data: set[int] = set()  # epoch nodes with keys besides their zarr.json
        seen: set[str] = set()
        generations: dict[int, set[str]] = {}
        analyzer_exists = False
        for key in keys:
            name, _, rest = key.removeprefix(prefix).partition("/")
            if not rest:
                analyzer_exists = analyzer_exists or name == METADATA_KEY
                continue
            epoch = parse_epoch_name(name)
            if epoch is None:
                found = parse_generation_name(name)
                if found is not None:
                    generations.setdefault(found[0], set()).add(name)
                continue
            seen.add(name)
            if rest == METADATA_KEY:
                committed.add(epoch)
            else:
                own_data.add(epoch)
        leftovers = {n for n in seen if parse_epoch_name(n) not in committed}
        data_nodes: dict[int, str] = {}
        orphaned: list[str] = []
        ambiguous = []
        for epoch, names in generations.items():
            if epoch not in committed:
                leftovers |= names
            elif len(names) == 1 and epoch not in own_data:
                data_nodes[epoch] = next(iter(names))  # an overwrite that finished
            else:
                ambiguous.append(epoch)  # one under way, or what a killed one left
        for epoch, node in self._resolve(analyzer, ambiguous).items():
            candidates = generations[epoch] | ({epoch_name(epoch)} if epoch in own_data else set())
            if node != epoch_name(epoch):
                data_nodes[epoch] = node
                if epoch in own_data:
                    orphaned.append(epoch_name(epoch))
            leftovers |= candidates - {node, epoch_name(epoch)}
        found_versions, by_key = None, None
        if tagged is not None:
            found_versions, by_key = {}, {}
            for key, version in tagged:
                if version is None:
                    continue
                relative = key.removeprefix(prefix)
                by_key[relative] = version
                name, _, rest = relative.partition("/")
                epoch = parse_epoch_name(name)
                if rest == METADATA_KEY and epoch is not None:
                    found_versions[epoch] = version
        return EpochListing(
            sorted(committed), analyzer_exists, sorted(leftovers), found_versions, by_key,
            data_nodes=data_nodes, orphaned=sorted(orphaned),
        )

    def cleanup(self, analyzer: str, names: Iterable[str], stale_after: float) -> list[str]:
        # Object stores give no cheap age: every uncommitted epoch prefix and unused generation
        # is removed, so call this only when no writer is running.
        removed = []
        listing = self.list_epochs(analyzer)
        for name in listing.leftovers:
            key = self.location.key(analyzer, name)
            sync(_delete_prefix(self.location.store, key))
            removed.append(key)
        for name in listing.orphaned:
            key = self.location.key(analyzer, name)
            sync(_delete_fields(self.location.store, key))
            removed.append(f"{key}/*")
        return removed

    def delete(self, analyzer: str, epoch: int) -> None:
        store = self.location.store
        node = self.location.key(analyzer, epoch_name(epoch))
        data = data_node_of(sync(_read_group(store, f"{node}/{METADATA_KEY}")), epoch)
        # The group metadata goes first: from then on the epoch does not exist.
        sync(store.delete(f"{node}/{METADATA_KEY}"))
        sync(_delete_prefix(store, node))
        if data != epoch_name(epoch):
            sync(_delete_prefix(store, self.location.key(analyzer, data)))


#: Most generations an overwrite tries to claim (each taken one is a live or killed writer's).
_MAX_CLAIMS = 100
#: What a claimed generation's zarr.json holds until its writer replaces it: an empty group.
_CLAIM = default_buffer_prototype().buffer.from_bytes(
    json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}}).encode()
)


def _naming_data_node(root: Buffer, name: str) -> Buffer:
    """The group metadata ``root`` with ``DATA_NODE_KEY`` naming the node ``name``."""
    meta = json.loads(root.to_bytes())
    meta.setdefault("attributes", {})[DATA_NODE_KEY] = name
    return default_buffer_prototype().buffer.from_bytes(json.dumps(meta, indent=2).encode())


async def _delete_fields(store: Store, node: str) -> None:
    """Delete everything below ``node`` but its own ``zarr.json`` (the data of generation 0)."""
    children = [child async for child in store.list_dir(node)]
    for child in children:
        if child != METADATA_KEY:
            await store.delete_dir(f"{node}/{child}")


def commit_strategy_for(location: Location) -> CommitStrategy:
    """Rename on a local directory, metadata-last everywhere else."""
    if location.local_root is not None:
        return RenameCommit(location)
    return MetadataLastCommit(location)
