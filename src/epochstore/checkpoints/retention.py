"""Retention as small policy objects: each says which committed checkpoints it preserves.

A checkpoint is deleted only when no policy preserves it (the manager combines them with
:class:`AnyOf`). NaN and infinite metric values rank worst; among equal best values the
earliest epoch wins. See "Retention" in ``docs/checkpoints.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from epochstore.checkpoints.manifest import CheckpointRecord, Mode

__all__ = [
    "AnyOf",
    "KeepAll",
    "KeepBest",
    "KeepEpochs",
    "KeepEvery",
    "KeepLast",
    "RetentionPolicy",
    "best_record",
    "check_mode",
    "check_positive",
    "rank_records",
    "select_for_deletion",
]


def check_mode(mode: object) -> Mode:
    """Return ``mode`` if it is ``"min"`` or ``"max"``; raise ``ValueError`` otherwise."""
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    return mode


def check_positive(value: object, what: str) -> int:
    """Return ``value`` if it is a positive ``int``; raise ``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value


def best_record(
    records: Iterable[CheckpointRecord], metric: str, mode: Mode
) -> CheckpointRecord | None:
    """Return the record with the best finite value of ``metric``, or ``None`` if none has one."""
    ranked = rank_records(records, metric, mode)
    return ranked[0] if ranked else None


def rank_records(
    records: Iterable[CheckpointRecord], metric: str, mode: Mode
) -> list[CheckpointRecord]:
    """Return the records with a finite value of ``metric``, best first (ties: earliest)."""
    sign = 1.0 if mode == "min" else -1.0
    candidates = [
        (sign * value, record.epoch, record)
        for record in records
        if (value := record.metrics.get(metric)) is not None and math.isfinite(value)
    ]
    return [record for _, _, record in sorted(candidates, key=lambda item: item[:2])]


@runtime_checkable
class RetentionPolicy(Protocol):
    """Decides which committed checkpoints to keep."""

    def preserve(self, records: Sequence[CheckpointRecord]) -> frozenset[int]:
        """Return the epochs to keep among ``records`` (committed, sorted by epoch)."""
        ...  # pragma: no cover - protocol


@dataclass(frozen=True)
class KeepAll:
    """Keep every checkpoint (the default: analysis wants every epoch)."""

    def preserve(self, records: Sequence[CheckpointRecord]) -> frozenset[int]:
        """Return every epoch."""
        return frozenset(r.epoch for r in records)


@dataclass(frozen=True)
class KeepLast:
    """Keep the ``n`` newest checkpoints."""

    n: int

    def __post_init__(self) -> None:
        check_positive(self.n, "max_checkpoints (KeepLast.n)")

    def preserve(self, records: Sequence[CheckpointRecord]) -> frozenset[int]:
        """Return the ``n`` highest epochs."""
        return frozenset(sorted(r.epoch for r in records)[-self.n :])


@dataclass(frozen=True)
class KeepBest:
    """Keep the checkpoint with the best finite value of ``metric``."""

    metric: str
    mode: Mode = "min"

    def __post_init__(self) -> None:
        check_mode(self.mode)

    def preserve(self, records: Sequence[CheckpointRecord]) -> frozenset[int]:
        """Return the best epoch, if any checkpoint has a finite value of the metric."""
        best = best_record(records, self.metric, self.mode)
        return frozenset() if best is None else frozenset({best.epoch})


@dataclass(frozen=True)
class KeepEvery:
    """Keep every checkpoint whose epoch is a multiple of ``k``."""

    k: int

    def __post_init__(self) -> None:
        check_positive(self.k, "keep_every (KeepEvery.k)")

    def preserve(self, records: Sequence[CheckpointRecord]) -> frozenset[int]:
        """Return the epochs divisible by ``k``."""
        return frozenset(r.epoch for r in records if r.epoch % self.k == 0)


@dataclass(frozen=True)
class KeepEpochs:
    """Keep the given epochs (the manager uses it for promoted checkpoints)."""

    epochs: frozenset[int]

    def preserve(self, records: Sequence[CheckpointRecord]) -> frozenset[int]:
        """Return the listed epochs that are committed."""
        return frozenset(r.epoch for r in records if r.epoch in self.epochs)


@dataclass(frozen=True)
class AnyOf:
    """Keep what any of ``policies`` keeps."""

    policies: tuple[RetentionPolicy, ...]

    def preserve(self, records: Sequence[CheckpointRecord]) -> frozenset[int]:
        """Return the union of the policies' epochs."""
        kept: set[int] = set()
        for policy in self.policies:
            kept |= policy.preserve(records)
        return frozenset(kept)


def select_for_deletion(
    records: Sequence[CheckpointRecord], policy: RetentionPolicy
) -> list[CheckpointRecord]:
    """Return the records no part of ``policy`` preserves, oldest first."""
    ordered = sorted(records, key=lambda r: r.epoch)
    kept = policy.preserve(ordered)
    return [r for r in ordered if r.epoch not in kept]
