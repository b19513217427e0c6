"""The plan: which (analyzer, epoch) pairs are missing, grouped into one task per epoch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["EpochResult", "EpochTask", "Plan", "RunReport"]


@dataclass(frozen=True)
class EpochTask:
    """One unit of work: one checkpoint, the analyzers still missing for it."""

    epoch: int
    analyzers: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """The missing work of a run, decided from the store's existence checks alone.

    Attributes
    ----------
    tasks
        One task per epoch with at least one missing analyzer, in epoch order.
    epochs
        Every committed checkpoint epoch considered.
    analyzers
        The analyzers considered, in order.
    """

    tasks: tuple[EpochTask, ...]
    epochs: tuple[int, ...]
    analyzers: tuple[str, ...]

    @property
    def pairs(self) -> list[tuple[str, int]]:
        """The missing (analyzer, epoch) pairs."""
        return [(name, task.epoch) for task in self.tasks for name in task.analyzers]

    def __len__(self) -> int:
        return len(self.pairs)

    def summary(self) -> str:
        """One line for humans."""
        return (
            f"{len(self)} missing (analyzer, epoch) pairs over {len(self.tasks)} of "
            f"{len(self.epochs)} checkpoints, analyzers: {', '.join(self.analyzers) or '-'}"
        )


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
