"""Verify a whole run (every chunk's checksum, every checkpoint's sha256) and repair it.

Verification reads each field of each epoch through the same strict read path as the loader,
so it finds what a reader would hit: a chunk failing its CRC32C, a truncated or missing chunk,
missing metadata. Repair deletes damaged epochs (each disappears whole), so the pipeline
recomputes exactly those on its next run. Checkpoints are never deleted by repair: they are
inputs, and a damaged one is reported for the user to restore or retrain.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from epochstore.errors import EpochstoreError
from epochstore.location import join
from epochstore.run import CHECKPOINTS_DIR

__all__ = ["ArtifactDamage", "RunVerification", "repair_run", "verify_run"]


@dataclass(frozen=True)
class ArtifactDamage:
    """One damaged epoch of one analyzer."""

    analyzer: str
    epoch: int
    field: str | None
    problem: str


@dataclass(frozen=True)
class RunVerification:
    """What :func:`verify_run` found.

    Attributes
    ----------
    epochs_checked
        Number of (analyzer, epoch) nodes read completely.
    chunks_bytes
        Uncompressed bytes read and checked.
    damaged
        Damaged (analyzer, epoch) nodes, one entry per node.
    checkpoint_problems
        ``(path, problem)`` of checkpoints that fail verification.
    checkpoints_checked
        Number of checkpoint files that verified.
    """

    epochs_checked: int = 0
    chunks_bytes: int = 0
    damaged: tuple[ArtifactDamage, ...] = ()
    checkpoint_problems: tuple[tuple[str, str], ...] = ()
    checkpoints_checked: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Whether nothing is damaged."""
        return not self.damaged and not self.checkpoint_problems

    def describe(self) -> str:
        """A report for humans, one damaged item per line."""
        size = f"{self.chunks_bytes / 1e6:.1f} MB"
        header = (
            f"checked {self.epochs_checked} artifact epochs ({size}) "
            f"and {self.checkpoints_checked} checkpoints"
        )
        lines = [header]
        for d in self.damaged:
            where = f" field {d.field}" if d.field else ""
            lines.append(f"DAMAGED artifact {d.analyzer}/epoch {d.epoch}{where}: {d.problem}")
        lines += [
            f"DAMAGED checkpoint {path}: {problem}" for path, problem in self.checkpoint_problems
        ]
        lines += list(self.notes)
        lines.append("OK: no damage found" if self.ok else "damage found")
        return "\n".join(lines)


def _verify_artifacts(
    location: str, storage_options: Mapping[str, Any] | None
) -> tuple[int, int, list[ArtifactDamage]]:
    from epochstore.store import ArtifactLoader

    loader = ArtifactLoader(location, storage_options=storage_options)
    checked = nbytes = 0
    damaged: list[ArtifactDamage] = []
    for analyzer in loader.get_available_analyzers():
        manifest = loader.manifest(analyzer)
        for epoch in manifest.epochs:
            try:
                ds = loader.load_epoch(analyzer, epoch)
            except EpochstoreError as exc:
                damaged.append(ArtifactDamage(analyzer, epoch, None, str(exc)))
                continue
            problem = None
            for name in manifest.fields:
                try:
                    values = ds[name].values  # reads and checks every chunk
                except (EpochstoreError, OSError, ValueError) as exc:
                    problem = ArtifactDamage(analyzer, epoch, name, str(exc))
                    break
                nbytes += values.nbytes
                del values
            if problem is None:
                checked += 1
            else:
                damaged.append(problem)
    return checked, nbytes, damaged


def verify_run(
    location: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None
) -> RunVerification:
    """Read and check every artifact chunk and every checkpoint of a run.

    Parameters
    ----------
    location
        Where the run lives: its directory or URL.
    storage_options
        fsspec options for URLs.

    Returns
    -------
    RunVerification
        Counts, and every damaged artifact epoch and checkpoint.
    """
    from epochstore.checkpoints import CheckpointManager

    location = os.fspath(location)
    checked, nbytes, damaged = _verify_artifacts(location, storage_options)
    problems: list[tuple[str, str]] = []
    verified = 0
    notes: list[str] = []
    try:
        report = CheckpointManager(
            checkpoint_dir=join(location, CHECKPOINTS_DIR),
            storage_options=storage_options,
            read_only=True,
        ).verify()
    except FileNotFoundError:
        notes.append("no checkpoints directory")
    else:
        verified = len(report.verified)
        problems = [(p.path, p.problem) for p in report.problems]
        notes += [
            f"uncommitted checkpoint-like file (never loaded): {u}" for u in report.uncommitted
        ]
    return RunVerification(
        epochs_checked=checked,
        chunks_bytes=nbytes,
        damaged=tuple(damaged),
        checkpoint_problems=tuple(problems),
        checkpoints_checked=verified,
        notes=tuple(notes),
    )


def repair_run(
    location: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    dry_run: bool = False,
    log: Callable[[str], None] | None = None,
) -> RunVerification:
    """Verify a run and delete every damaged artifact epoch, so the pipeline recomputes it.

    Leftovers of killed writers are removed too (``ArtifactStore.cleanup``). Damaged
    checkpoints are reported, never deleted.

    Returns
    -------
    RunVerification
        The verification that decided what was deleted.
    """
    from epochstore.naming import epoch_name
    from epochstore.store import ArtifactStore

    result = verify_run(location, storage_options=storage_options)
    if dry_run:
        return result
    store = ArtifactStore(os.fspath(location), storage_options=storage_options)
    for damage in result.damaged:
        store.delete_epoch(damage.analyzer, damage.epoch, force=True)
        if log is not None:
            log(f"deleted {damage.analyzer}/{epoch_name(damage.epoch)}: recompute it with "
                "`epochstore analyze`")
    for key in store.cleanup():
        if log is not None:
            log(f"removed leftover {key}")
    return result
