"""Executors: how epoch tasks run (in-process, local processes, a Dask cluster).

An executor is anything with ``map_unordered(fn, items)`` yielding results as tasks finish.
Tasks are independent (each writes different epoch nodes), so order does not matter.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["DaskExecutor", "Executor", "ProcessExecutor", "SequentialExecutor"]

T = TypeVar("T")
R = TypeVar("R")


@runtime_checkable
class Executor(Protocol):
    """Runs ``fn`` over ``items``; yields results in completion order."""

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        """Run ``fn(item)`` for every item; yield each result as soon as it is ready."""
        ...


class SequentialExecutor:
    """In-process, one task after another (the default)."""

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        for item in items:
            yield fn(item)


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class ProcessExecutor:
    """``workers`` local processes (spawned: no fork of zarr's I/O thread or torch's pools).

    Each process gets ``cpu_count // workers`` torch threads so they do not oversubscribe.
    """

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        with ProcessPoolExecutor(
            max_workers=min(self.workers, max(1, len(items))),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(threads,),
        ) as pool:
            futures = [pool.submit(fn, item) for item in items]
            for future in as_completed(futures):
                yield future.result()


class DaskExecutor:
    """Tasks on a ``dask.distributed`` cluster: one task per epoch, retried if a worker dies.

    Workers load checkpoints from the shared run location and write results directly to the
    store; only small :class:`~epochstore.pipeline.plan.EpochResult` objects come back.
    """

    def __init__(self, client: Any, *, retries: int = 2) -> None:
        self.client = client
        self.retries = retries

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        from distributed import as_completed as dask_as_completed

        futures = self.client.map(fn, list(items), retries=self.retries, pure=False)
        for future in dask_as_completed(futures):
            yield future.result()
