"""Where a run's files live: a local path or an fsspec URL, and durable atomic writes there.

The bottom layer, beside :mod:`epochstore.naming` and :mod:`epochstore.errors`: the run files,
the checkpoint manager, the promotion registry, the artifact store and the pipeline all find,
join and write their files through it, and nothing here imports a layer above.

- Text: :func:`is_url`, :func:`local_path` (local paths are made absolute, never resolved),
  :func:`join`, :func:`storage_options_for` (fsspec defaults for locations other processes
  write to).
- Files: :class:`FileSystem` with :class:`LocalFileSystem` and :class:`FsspecFileSystem`,
  opened by :func:`open_filesystem`; :meth:`FileSystem.atomic_write` is the one way a file
  is published whole.
- Reaching a URL: :func:`reaching` says why it failed (the URL, the cause, the options to check).
- Local durability: :func:`atomic_writer`, :func:`atomic_write_bytes`, :func:`fsync_file`,
  :func:`fsync_dir`, :func:`fsync_tree`.
- Temporary files: named by :func:`temporary_name` (``.<name>.<hex>.partial``), recognised by
  :func:`temp_target`, and taken for a dead writer's after :data:`STALE_AFTER` seconds.
"""

from epochstore.location._filesystem import (
    FileSystem,
    FsspecFileSystem,
    LocalFileSystem,
    open_filesystem,
)
from epochstore.location._local import (
    PARTIAL_SUFFIX,
    STALE_AFTER,
    atomic_write_bytes,
    atomic_writer,
    fsync_dir,
    fsync_file,
    fsync_tree,
    temp_target,
    temporary_name,
)
from epochstore.location._paths import PathOrURL, is_url, join, local_path, storage_options_for
from epochstore.location._reach import reaching

__all__ = [
    "PARTIAL_SUFFIX",
    "STALE_AFTER",
    "FileSystem",
    "FsspecFileSystem",
    "LocalFileSystem",
    "PathOrURL",
    "atomic_write_bytes",
    "atomic_writer",
    "fsync_dir",
    "fsync_file",
    "fsync_tree",
    "is_url",
    "join",
    "local_path",
    "open_filesystem",
    "reaching",
    "storage_options_for",
    "temp_target",
    "temporary_name",
]
