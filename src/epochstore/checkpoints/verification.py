"""``verify()``: check every recorded file against its size and sha256, changing nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from epochstore.naming import parse_checkpoint_name

if TYPE_CHECKING:
    from epochstore.checkpoints.fileformat import Digest
    from epochstore.checkpoints.manifest import Manifest
    from epochstore.location import FileSystem

__all__ = ["VerificationProblem", "VerificationReport", "check", "verify"]


@dataclass(frozen=True)
class VerificationProblem:
    """One file that failed verification.

    Attributes
    ----------
    path
        The file.
    problem
        What is wrong with it.
    epoch
        Its epoch, for a raw checkpoint.
    version
        Its version, for a validated or production copy.
    """

    path: str
    problem: str
    epoch: int | None = None
    version: str | None = None


@dataclass(frozen=True)
class VerificationReport:
    """The result of :meth:`CheckpointManager.verify`.

    Attributes
    ----------
    verified
        Paths of the files that match their records.
    problems
        Files that are missing, truncated, corrupt or unreadable.
    uncommitted
        Files named like checkpoints that the manifest does not list (an interrupted save, or
        files written by something else); they are never loaded.
    """

    verified: tuple[str, ...]
    problems: tuple[VerificationProblem, ...]
    uncommitted: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every recorded file verified."""
        return not self.problems

    @property
    def corrupt_epochs(self) -> list[int]:
        """Epochs of the raw checkpoints that failed."""
        return sorted(p.epoch for p in self.problems if p.epoch is not None)


def check(
    fs: FileSystem,
    path: str,
    digest: Digest,
    *,
    epoch: int | None = None,
    version: str | None = None,
) -> VerificationProblem | None:
    """Return what is wrong with the file at ``path`` against ``digest``, or ``None``."""
    problem = None
    if not fs.exists(path):
        problem = "file is missing"
    elif (size := fs.size(path)) != digest.size:
        problem = f"size is {size} bytes, but {digest.size} were recorded (truncated or changed)"
    else:
        with fs.open_read(path) as handle:
            sha = hashlib.file_digest(handle, "sha256").hexdigest()  # type: ignore[arg-type]
        if sha != digest.sha256:
            problem = f"sha256 is {sha}, but {digest.sha256} was recorded (corrupt)"
    return None if problem is None else VerificationProblem(path, problem, epoch, version)


def verify(
    fs: FileSystem,
    directory: str,
    manifest: Manifest,
    registry_checked: tuple[Sequence[str], Sequence[VerificationProblem]] = ((), ()),
) -> VerificationReport:
    """Check the checkpoints of ``manifest`` against their records, list uncommitted checkpoint
    files, and add ``registry_checked`` (the registry's own ``verify()``: verified paths and
    problems of promoted versions and the production copy; the registry sits above this
    package, so its caller passes the result in)."""
    verified: list[str] = []
    problems: list[VerificationProblem] = []
    for record in manifest.checkpoints:
        path = fs.join(directory, record.file)
        problem = check(fs, path, record.digest, epoch=record.epoch)
        verified += [path] if problem is None else []
        problems += [] if problem is None else [problem]
    registry_verified, registry_problems = registry_checked
    files = {record.file for record in manifest.checkpoints}
    uncommitted = tuple(
        fs.join(directory, name)
        for name in fs.list_names(directory)
        if parse_checkpoint_name(name) is not None and name not in files
    )
    return VerificationReport(
        (*verified, *registry_verified), (*problems, *registry_problems), uncommitted
    )
