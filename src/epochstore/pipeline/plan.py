"""The plan: which (analyzer, epoch) pairs are missing or stale, grouped into one task per epoch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["EpochResult", "EpochTask", "Plan", "RunReport"]


@dataclass(frozen=True)
class EpochTask:
    """One unit of work: one checkpoint, the analyzers to compute for it.

    Attributes
    ----------
    epoch
        The checkpoint's epoch.
    analyzers
        The analyzers to compute.
    overwrite
        Those of ``analyzers`` whose stored (stale) epoch is replaced, atomically.
    """

    epoch: int
    analyzers: tuple[str, ...]
    overwrite: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """The missing and stale work of a run, decided from listings and manifests alone.

    *Missing*: the checkpoint has no epoch node for the analyzer. *Stale*: the node exists but
    was computed by another version of the analyzer, or with other run-level params, than the
    current code (see :mod:`epochstore.store.freshness`).

    Attributes
    ----------
    tasks
        One task per epoch with at least one missing analyzer, in epoch order.
    epochs
        Every committed checkpoint epoch considered.
    analyzers
        The analyzers considered, in order.
    stale
        One task per epoch with at least one stale analyzer (every analyzer in ``overwrite``).
    stale_versions
        Per analyzer with stale epochs: the versions that computed them, and the current one.
    """

    tasks: tuple[EpochTask, ...]
    epochs: tuple[int, ...]
    analyzers: tuple[str, ...]
    stale: tuple[EpochTask, ...] = ()
    stale_versions: Mapping[str, tuple[tuple[str | None, ...], str | None]] = field(
        default_factory=dict
    )

    @property
    def pairs(self) -> list[tuple[str, int]]:
        """The missing (analyzer, epoch) pairs."""
        return [(name, task.epoch) for task in self.tasks for name in task.analyzers]

    @property
    def stale_pairs(self) -> list[tuple[str, int]]:
        """The stale (analyzer, epoch) pairs."""
        return [(name, task.epoch) for task in self.stale for name in task.analyzers]

    def __len__(self) -> int:
        return len(self.pairs)

    def with_stale(self) -> Plan:
        """Return the plan whose tasks also recompute (overwrite) every stale pair."""
        merged: dict[int, tuple[list[str], list[str]]] = {}
        for task in self.tasks:
            merged.setdefault(task.epoch, ([], []))[0].extend(task.analyzers)
        for task in self.stale:
            names, overwrite = merged.setdefault(task.epoch, ([], []))
            names.extend(task.analyzers)
            overwrite.extend(task.analyzers)
        order = {name: i for i, name in enumerate(self.analyzers)}
        tasks = tuple(
            EpochTask(
                epoch=epoch,
                analyzers=tuple(sorted(names, key=order.__getitem__)),
                overwrite=tuple(sorted(overwrite, key=order.__getitem__)),
            )
            for epoch, (names, overwrite) in sorted(merged.items())
        )
        return Plan(tasks=tasks, epochs=self.epochs, analyzers=self.analyzers)

    def summary(self) -> str:
        """One line for humans (two when some epochs are stale)."""
        line = (
            f"{len(self)} missing (analyzer, epoch) pairs over {len(self.tasks)} of "
            f"{len(self.epochs)} checkpoints, analyzers: {', '.join(self.analyzers) or '-'}"
        )
        if self.stale:
            counts: dict[str, int] = {}
            for name, _ in self.stale_pairs:
                counts[name] = counts.get(name, 0) + 1
            shown = ", ".join(
                f"{name} {n} (version {'/'.join(str(v) for v in self.stale_versions[name][0])}"
                f" -> {self.stale_versions[name][1]})"
                for name, n in counts.items()
            )
            line += (
                f"\n{len(self.stale_pairs)} stale (analyzer, epoch) pairs, computed by another "
                f"analyzer version or params: {shown}; --recompute-stale rewrites them"
            )
        return line


@dataclass(frozen=True)
class EpochResult:
    """What a task did: small, so the parent never holds artifact data."""

    epoch: int
    written: tuple[str, ...] = ()
    already_done: tuple[str, ...] = ()
    error: str | None = None
    seconds: float = 0.0
    peak_rss_bytes: int = 0


@dataclass(frozen=True)
class RunReport:
    """The outcome of :meth:`AnalysisPipeline.run`."""

    results: tuple[EpochResult, ...]
    seconds: float

    @property
    def written(self) -> list[tuple[str, int]]:
        """The (analyzer, epoch) pairs this run wrote."""
        return [(name, r.epoch) for r in self.results for name in r.written]

    @property
    def failed(self) -> Mapping[int, str]:
        """Epochs whose task failed (e.g. a corrupt checkpoint), with the reason."""
        return {r.epoch: r.error for r in self.results if r.error is not None}

    @property
    def ok(self) -> bool:
        """Whether every task succeeded."""
        return not self.failed
