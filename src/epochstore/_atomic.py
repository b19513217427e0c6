"""Durable, atomic file operations on a local filesystem.

The recipe (as in zarr's ``LocalStore`` and SQLite): write to a temporary name in the same
directory, flush and ``fsync`` the file, ``os.replace`` it onto the final name, then ``fsync`` the
directory so the rename itself survives a power cut. A reader sees the old file or the new one,
never a mix.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

__all__ = ["PARTIAL_SUFFIX", "atomic_write_bytes", "atomic_writer", "fsync_dir"]

#: Suffix of temporary files; anything ending in it is an unfinished write.
PARTIAL_SUFFIX = ".partial"


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


def temporary_path(path: Path) -> Path:
    """Return a unique temporary sibling of ``path`` (hidden, ending in ``.partial``)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}")


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file that replaces ``path`` atomically when the block exits cleanly.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    final = Path(path)
    tmp = temporary_path(final)
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
