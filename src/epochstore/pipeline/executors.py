"""Executors: how epoch tasks run (in-process, local processes, a Dask cluster).

An executor is anything with ``map_unordered(fn, items)`` yielding results as tasks finish.
Tasks are independent (each writes different epoch nodes), so order does not matter.
"""

from __future__ import annotations

import multiprocessing
import os
import uuid
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
    """Tasks on a ``dask.distributed`` cluster: one task per epoch, retried if it fails.

    Workers load checkpoints from the shared run location (a shared filesystem or an object
    store) and write results directly to the store; only small
    :class:`~epochstore.pipeline.plan.EpochResult` objects come back, so the client never holds
    artifact data. Tasks are independent and idempotent (a task skips what is already written),
    which is what makes retrying them safe.

    Two mechanisms retry a task:

    - an exception in the task (e.g. a transient S3 error) is retried up to ``retries`` times;
    - a worker that dies mid-task (killed, out of memory) has its task rescheduled on another
      worker by the scheduler, up to ``distributed.scheduler.allowed-failures`` times (3 by
      default) before the run fails with ``KilledWorker``. The epoch node the dead worker was
      writing was never committed, so the rerun writes it whole.

    Parameters
    ----------
    client
        A ``distributed.Client`` (of a ``LocalCluster`` or any Dask cluster). Its workers must
        reach the run location: same paths, or a URL with credentials they can use.
    retries
        Retries per task after an exception.

    Examples
    --------
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as c:
    ...     AnalysisPipeline("s3://bucket/runs/p113", storage_options=opts).run(client=c)
    ... # doctest: +SKIP
    """

    def __init__(self, client: Any, *, retries: int = 2) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.client = client
        self.retries = retries

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        from distributed import as_completed as dask_as_completed

        items = list(items)
        if not items:
            return
        prefix = f"epochstore-analyze-{uuid.uuid4().hex[:8]}"
        keys = [f"{prefix}-{_task_name(item, i)}" for i, item in enumerate(items)]
        futures = self.client.map(fn, items, key=keys, retries=self.retries, pure=False)
        try:
            # The client's own loop: the client need not be dask's default one.
            for future in dask_as_completed(futures, loop=self.client.loop):
                result = future.result()
                future.release()
                yield result
        finally:
            # On an error (or when the caller stops early) nothing is left running.
            self.client.cancel([f for f in futures if not f.done()])


def _task_name(item: object, index: int) -> str:
    """The end of a readable Dask key: ``epoch_00100`` for pipeline jobs (one task group)."""
    task = item[-1] if isinstance(item, tuple) and item else item
    epoch = getattr(task, "epoch", None)
    return f"epoch_{epoch:05d}" if isinstance(epoch, int) else f"item_{index}"
