"""The small filesystem layer under the checkpoint manager: a local directory or an fsspec URL.

Both backends offer the same few operations, and the same commit semantics for
:meth:`FileSystem.atomic_write`: readers see the old file or the whole new one, never a part.

- Local paths use :mod:`epochstore._atomic`: a temporary sibling, ``fsync``, ``os.replace``,
  ``fsync`` of the directory.
- fsspec URLs (``s3://``, ``gs://``, ``memory://`` ...) write a temporary key and move it onto
  the final name: a rename where the filesystem has one, a server-side copy on object stores
  (where the final object appears whole, or not at all). A temporary key is never read as a
  checkpoint, and the manager's manifest, written last, is what commits a checkpoint.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from epochstore._atomic import PARTIAL_SUFFIX, atomic_writer, fsync_dir

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import BinaryIO

__all__ = ["FileSystem", "FsspecFileSystem", "LocalFileSystem", "open_filesystem", "temp_target"]

#: Temporary names written by :meth:`FileSystem.atomic_write`: ``.<final name>.<32 hex>.partial``
#: (the same pattern as :func:`epochstore._atomic.temporary_path`).
_TEMP_NAME: Final = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{32}" + re.escape(PARTIAL_SUFFIX))


def temp_target(name: str) -> str | None:
    """Return the final name a temporary file was written for, or ``None`` for other names."""
    match = _TEMP_NAME.fullmatch(name)
    return match.group("name") if match else None


class FileSystem(ABC):
    """The operations the checkpoint manager needs from where it stores files.

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

    def makedirs(self, directory: str) -> None:
        self._fs.makedirs(directory, exist_ok=True)

    def open_read(self, path: str) -> contextlib.AbstractContextManager[BinaryIO]:
        handle: BinaryIO = self._fs.open(path, "rb")
        return handle

    @contextlib.contextmanager
    def atomic_write(self, path: str) -> Iterator[BinaryIO]:
        directory, _, name = path.rpartition("/")
        tmp = f"{directory}/.{name}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}"
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
    location: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None
) -> tuple[FileSystem, str]:
    """Return the filesystem of ``location`` and the root path to use with it.

    A plain path or a ``file://`` URL is local; any other URL goes through fsspec, with
    ``storage_options`` passed to the fsspec filesystem.
    """
    text = os.fspath(location)
    if "://" not in text or text.startswith("file://"):
        if storage_options:
            raise ValueError(
                f"storage_options are only for fsspec URLs, not for the local path {text!r}"
            )
        return LocalFileSystem(), str(Path(text.removeprefix("file://")).expanduser().absolute())
    import fsspec

    from epochstore._fsspec import url_storage_options

    # No listing cache (other processes write here); the caller's options win.
    fs, root = fsspec.core.url_to_fs(text, **url_storage_options(text, storage_options))
    return FsspecFileSystem(fs), str(root).rstrip("/") or "/"
