"""Durable, atomic file operations on a local filesystem.

The recipe (as in zarr's ``LocalStore`` and SQLite): write to a temporary name in the same
directory, flush and ``fsync`` the file, ``os.replace`` it onto the final name, then ``fsync`` the
directory so the rename itself survives a power cut. A reader sees the old file or the new one,
never a mix.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

__all__ = [
    "PARTIAL_SUFFIX",
    "STALE_AFTER",
    "atomic_write_bytes",
    "atomic_writer",
    "fsync_dir",
    "fsync_file",
    "fsync_tree",
    "temp_target",
    "temporary_name",
]

#: Suffix of temporary files; anything ending in it is an unfinished write.
PARTIAL_SUFFIX: Final = ".partial"

#: Seconds after its last change when a temporary file (``*.partial``, an uncommitted epoch
#: node) is taken for a dead writer's and may be removed. One hour: a live writer touches its
#: temporary file at least once per file or epoch written, which takes seconds to minutes even
#: for multi-GB checkpoints on slow disks, so a live writer's file is never this old.
STALE_AFTER: Final = 3600.0

#: Temporary names: ``.<final name>.<32 hex>.partial`` (see :func:`temporary_name`).
_TEMP_NAME: Final = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{32}" + re.escape(PARTIAL_SUFFIX))


def temporary_name(name: str) -> str:
    """Return a unique temporary sibling name of ``name`` (hidden, ending in ``.partial``)."""
    return f".{name}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}"


def temp_target(name: str) -> str | None:
    """Return the final name a temporary file was written for, or ``None`` for other names."""
    match = _TEMP_NAME.fullmatch(name)
    return match.group("name") if match else None


def fsync_file(path: str | os.PathLike[str]) -> None:
    """``fsync`` one file so that its content is on disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """``fsync`` a directory so that renames and creations inside it are durable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - platforms that cannot open directories (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def fsync_tree(root: str | os.PathLike[str]) -> None:
    """``fsync`` every file and directory below ``root`` (before one rename publishes it)."""
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            fsync_file(Path(dirpath, name))
        fsync_dir(dirpath)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file that replaces ``path`` atomically when the block exits cleanly.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    final = Path(path)
    tmp = final.with_name(temporary_name(final.name))
    try:
        with tmp.open("xb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(final.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably."""
    with atomic_writer(path) as handle:
        handle.write(data)
