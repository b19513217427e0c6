"""Files at a location: one small interface over a local directory or an fsspec URL.

Both backends offer the same few operations, and the same commit semantics for
:meth:`FileSystem.atomic_write`: readers see the old file or the whole new one, never a part.

- Local paths use :mod:`._local`: a temporary sibling, ``fsync``, ``os.replace``, ``fsync`` of
  the directory.
- fsspec URLs (``s3://``, ``gs://``, ``memory://`` ...) write a temporary key and move it onto
  the final name: a rename where the filesystem has one, a server-side copy on object stores
  (where the final object appears whole, or not at all). Temporary keys end in ``.partial`` and
  are never read as data; callers commit by writing their record (a manifest) last.

A conditional write on object stores (``If-None-Match``, e.g. through obstore) belongs here, as
another way for :meth:`FileSystem.atomic_write` to publish: callers would not change.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from epochstore.errors import InvalidLocationError
from epochstore.location._local import atomic_writer, fsync_dir, temp_target, temporary_name
from epochstore.location._paths import PathOrURL, is_url, local_path, storage_options_for

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import BinaryIO

__all__ = ["FileSystem", "FsspecFileSystem", "LocalFileSystem", "open_filesystem"]


class FileSystem(ABC):
    """The file operations epochstore needs from a location (checkpoints, registry, run files).

    Paths are plain strings built with :meth:`join`; directories need not exist before
    :meth:`list_names` (a missing directory lists as empty).
    """

    #: Whether files can be made read-only (local files only).
    supports_permissions: bool = False

    @abstractmethod
    def join(self, *parts: str) -> str:
        """Join path parts."""

    @abstractmethod
    def parent(self, path: str) -> str:
        """Return the directory holding ``path``."""

    @abstractmethod
    def exists(self, path: str) -> bool:
        """Return whether a file exists at ``path``."""

    @abstractmethod
    def size(self, path: str) -> int:
        """Return the size of a file in bytes (``FileNotFoundError`` if missing)."""

    @abstractmethod
    def modified(self, path: str) -> float | None:
        """Return the POSIX time of the last change to ``path``, or ``None`` if unknown."""

    @abstractmethod
    def list_names(self, directory: str) -> list[str]:
        """Return the names (not paths) of the entries of ``directory``, sorted."""

    @abstractmethod
    def list_entries(self, directory: str) -> dict[str, bool]:
        """Map each entry name of ``directory`` to whether it is a directory (one listing)."""

    @abstractmethod
    def makedirs(self, directory: str) -> None:
        """Create ``directory`` and its parents if missing."""

    @abstractmethod
    def open_read(self, path: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """Open a file for binary, seekable reading."""

    @abstractmethod
    def atomic_write(self, path: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """Open a writer whose content replaces ``path`` whole when the block exits cleanly.

        On an exception nothing changes at ``path`` and the temporary file is removed.
        """

    @abstractmethod
    def remove(self, path: str) -> None:
        """Remove a file; a missing file is not an error."""

    def make_read_only(self, path: str) -> None:  # noqa: B027 - optional ability, no-op default
        """Make a file read-only where the filesystem can (a guard against edits in place)."""

    def read_bytes(self, path: str) -> bytes:
        """Return the whole content of a (small) file."""
        with self.open_read(path) as handle:
            return handle.read()

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` atomically."""
        with self.atomic_write(path) as handle:
            handle.write(data)

    def remove_stale(
        self, directory: str, ours: Callable[[str], object], stale_after: float
    ) -> list[str]:
        """Remove temporary files of dead writers from ``directory``; return their paths.

        Parameters
        ----------
        directory
            Where to look (not recursively).
        ours
            Whether a final name is one the caller writes (other temporary files are left).
        stale_after
            Only files unchanged for this many seconds are removed (see
            :data:`~epochstore.location.STALE_AFTER`).
        """
        removed = []
        now = time.time()
        for name in self.list_names(directory):
            target = temp_target(name)
            if target is None or not ours(target):
                continue
            path = self.join(directory, name)
            modified = self.modified(path)
            if modified is not None and now - modified >= stale_after:
                self.remove(path)
                removed.append(path)
        return removed


class LocalFileSystem(FileSystem):
    """Files on a local (POSIX) filesystem, written with fsync + ``os.replace``."""

    supports_permissions = True

    def join(self, *parts: str) -> str:
        return str(Path(*parts))

    def parent(self, path: str) -> str:
        return str(Path(path).absolute().parent)

    def exists(self, path: str) -> bool:
        return Path(path).is_file()

    def size(self, path: str) -> int:
        return Path(path).stat().st_size

    def modified(self, path: str) -> float | None:
        try:
            return Path(path).stat().st_mtime
        except FileNotFoundError:
            return None

    def list_names(self, directory: str) -> list[str]:
        try:
            return sorted(entry.name for entry in os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def list_entries(self, directory: str) -> dict[str, bool]:
        try:
            return {entry.name: entry.is_dir() for entry in os.scandir(directory)}
        except (FileNotFoundError, NotADirectoryError):
            return {}

    def makedirs(self, directory: str) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)

    def open_read(self, path: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return Path(path).open("rb")

    def atomic_write(self, path: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return atomic_writer(path)

    def remove(self, path: str) -> None:
        Path(path).unlink(missing_ok=True)
        fsync_dir(Path(path).parent)

    def make_read_only(self, path: str) -> None:
        Path(path).chmod(0o444)


class FsspecFileSystem(FileSystem):
    """Files under an fsspec URL; commits by writing a temporary key and moving it."""

    def __init__(self, fs: Any) -> None:
        self._fs = fs

    def join(self, *parts: str) -> str:
        return "/".join([parts[0].rstrip("/"), *(part.strip("/") for part in parts[1:])])

    def parent(self, path: str) -> str:
        return path.rstrip("/").rpartition("/")[0] or "/"

    def exists(self, path: str) -> bool:
        return bool(self._fs.isfile(path))

    def size(self, path: str) -> int:
        return int(self._fs.size(path))

    def modified(self, path: str) -> float | None:
        try:
            info = self._fs.info(path)
        except FileNotFoundError:
            return None
        for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
            value = info.get(key)
            if isinstance(value, dt.datetime):
                return value.timestamp()
            if isinstance(value, int | float):
                return float(value)
        return None

    def list_names(self, directory: str) -> list[str]:
        try:
            entries = self._fs.ls(directory, detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries)

    def list_entries(self, directory: str) -> dict[str, bool]:
        try:
            listing = self._fs.ls(directory, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return {}
        return {
            str(item["name"]).rstrip("/").rsplit("/", 1)[-1]: item.get("type") == "directory"
            for item in listing
        }

    def makedirs(self, directory: str) -> None:
        self._fs.makedirs(directory, exist_ok=True)

    def open_read(self, path: str) -> contextlib.AbstractContextManager[BinaryIO]:
        handle: BinaryIO = self._fs.open(path, "rb")
        return handle

    @contextlib.contextmanager
    def atomic_write(self, path: str) -> Iterator[BinaryIO]:
        directory, _, name = path.rpartition("/")
        tmp = f"{directory}/{temporary_name(name)}"
        try:
            with self._fs.open(tmp, "wb") as handle:
                yield handle
            self._fs.mv(tmp, path)
        except BaseException:
            with contextlib.suppress(Exception):
                self._fs.rm(tmp)
            raise

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm(path)


def open_filesystem(
    location: PathOrURL, storage_options: Mapping[str, Any] | None = None
) -> tuple[FileSystem, str]:
    """Return the filesystem of ``location`` and the root path to use with it.

    A plain path or a ``file://`` URL is local (made absolute, see :func:`local_path`); any
    other URL goes through fsspec, with ``storage_options`` over epochstore's defaults.

    Raises
    ------
    InvalidLocationError
        If ``storage_options`` are given for a local path (a ``ValueError``).
    """
    text = os.fspath(location)
    if not is_url(text):
        if storage_options:
            raise InvalidLocationError(
                f"storage_options are only for fsspec URLs, not for the local path {text!r}; "
                "drop them, or pass a URL such as 's3://bucket/run'"
            )
        return LocalFileSystem(), str(local_path(text))
    import fsspec

    fs, root = fsspec.core.url_to_fs(text, **storage_options_for(text, storage_options))
    return FsspecFileSystem(fs), str(root).rstrip("/") or "/"
