"""Many runs at once: analyse every run under a root through one executor, or follow training.

:func:`analyze_runs` plans each run (:meth:`AnalysisPipeline.jobs`), sends the tasks of all
runs through one executor with one progress bar, and records each run's results. :func:`follow`
repeats that as training commits checkpoints, until every run is finished and analysed.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from epochstore.errors import EpochstoreError
from epochstore.pipeline.executors import (
    DaskExecutor,
    Executor,
    ProcessExecutor,
    SequentialExecutor,
)
from epochstore.pipeline.pipeline import AnalysisPipeline
from epochstore.pipeline.plan import EpochResult, EpochTask, Plan
from epochstore.pipeline.worker import TaskContext, run_epoch_task, unfreeze
from epochstore.progress import Progress

__all__ = ["ManyReport", "analyze_runs", "follow"]

#: ``log(line)``: where per-run plan summaries and notices go.
Log = Callable[[str], None]


@dataclass(frozen=True)
class ManyReport:
    """The outcome of :func:`analyze_runs` / :func:`follow`.

    Attributes
    ----------
    plans
        Each run's plan (before this call computed anything).
    results
        Each run's task results.
    skipped
        Runs not analysed, with the reason (e.g. no checkpoints yet).
    seconds
        Wall time.
    """

    plans: Mapping[str, Plan] = field(default_factory=dict)
    results: Mapping[str, tuple[EpochResult, ...]] = field(default_factory=dict)
    skipped: Mapping[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def written(self) -> list[tuple[str, str, int]]:
        """The (run, analyzer, epoch) triples written."""
        return [(run, name, r.epoch) for run, rs in self.results.items() for r in rs
                for name in r.written]

    @property
    def failed(self) -> dict[tuple[str, int], str]:
        """(run, epoch) tasks that failed, with the reason."""
        return {(run, r.epoch): r.error for run, rs in self.results.items() for r in rs
                if r.error is not None}

    @property
    def ok(self) -> bool:
        """Whether every task succeeded."""
        return not self.failed


def _tagged(item: tuple[int, tuple[TaskContext, EpochTask]]) -> tuple[int, EpochResult]:
    """Executor task: one epoch task, returned with the index of its run."""
    index, job = item
    return index, run_epoch_task(job)


def make_executor(workers: int = 1, client: Any = None) -> Executor:
    """The executor for ``workers`` local processes, or a Dask ``client``'s cluster."""
    if client is not None:
        return DaskExecutor(client)
    if workers > 1:
        return ProcessExecutor(workers)
    return SequentialExecutor()


def _execute(
    pipelines: Sequence[AnalysisPipeline],
    jobs: Sequence[Sequence[tuple[TaskContext, EpochTask]]],
    executor: Executor,
    progress: bool,
) -> list[list[EpochResult]]:
    items = [(i, job) for i, run_jobs in enumerate(jobs) for job in run_jobs]
    results: list[list[EpochResult]] = [[] for _ in pipelines]
    if not items:
        return results
    busy = [p.location for p, run_jobs in zip(pipelines, jobs, strict=True) if run_jobs]
    desc = f"analyze {busy[0]}" if len(busy) == 1 else f"analyze {len(busy)} runs"
    with Progress(len(items), desc, enabled=progress) as bar:
        try:
            for index, result in executor.map_unordered(_tagged, items):
                results[index].append(result)
                bar.advance()
                if result.error:
                    bar.write(f"{pipelines[index].location} epoch {result.epoch}: skipped "
                              f"({result.error})")
        finally:
            unfreeze()
    for index, pipeline in enumerate(pipelines):
        results[index].sort(key=lambda r: r.epoch)
        pipeline.record(results[index])
    return results


def analyze_runs(
    runs: Sequence[str | os.PathLike[str]],
    *,
    executor: Executor | None = None,
    workers: int = 1,
    client: Any = None,
    progress: bool | None = None,
    recompute_stale: bool = False,
    log: Log | None = None,
    skip_bad_runs: bool = True,
    **options: Any,
) -> ManyReport:
    """Compute the missing (run, analyzer, epoch) work of many runs through one executor.

    Parameters
    ----------
    runs
        Run locations (e.g. ``epochstore.runs.run_locations(root)``).
    executor, workers, client
        As for :meth:`AnalysisPipeline.run`; all runs' tasks share them.
    progress
        One progress bar over every task (default: when stderr is a terminal).
    recompute_stale
        Also recompute stale pairs.
    log
        Receives one plan summary line per run.
    skip_bad_runs
        Report a run that cannot be set up (bad ``variant.json``, unknown family, a refused
        capture) as skipped and go on with the others; ``False`` raises its error instead.
    **options
        Passed to each :class:`AnalysisPipeline` (``analyzers``, ``device``,
        ``storage_options``, ``codec``).
    """
    started = time.perf_counter()
    say = log or (lambda line: None)
    pipelines: list[AnalysisPipeline] = []
    jobs: list[list[tuple[TaskContext, EpochTask]]] = []
    plans: dict[str, Plan] = {}
    skipped: dict[str, str] = {}
    for run in runs:
        location = os.fspath(run)
        try:
            pipeline = AnalysisPipeline(location, **options)
            plan, run_jobs = pipeline.jobs(recompute_stale=recompute_stale)
        except EpochstoreError as exc:
            if not skip_bad_runs:
                raise
            skipped[location] = str(exc)
            say(f"{location}: skipped: {exc}")
            continue
        say(f"{location}: {plan.summary()}")
        pipelines.append(pipeline)
        jobs.append(run_jobs)
        plans[location] = plan
    show = sys.stderr.isatty() if progress is None else progress
    results = _execute(pipelines, jobs, executor or make_executor(workers, client), show)
    return ManyReport(
        plans=plans,
        results={p.location: tuple(r) for p, r in zip(pipelines, results, strict=True)},
        skipped=skipped,
        seconds=time.perf_counter() - started,
    )


@dataclass
class _Followed:
    checkpoints: int = -1
    changed: float = 0.0
    done: bool = False


def follow(
    root: str | os.PathLike[str],
    *,
    find: Callable[[], Sequence[str]] | None = None,
    executor: Executor | None = None,
    workers: int = 1,
    client: Any = None,
    poll: float = 2.0,
    idle_timeout: float = 300.0,
    progress: bool | None = None,
    log: Log | None = None,
    **options: Any,
) -> ManyReport:
    """Analyse checkpoints as training commits them, until every run is finished and analysed.

    Each round finds the runs under ``root`` (new runs join), computes what is missing in all
    of them through one executor, then waits ``poll`` seconds if there was nothing to do. A run
    is done when its training recorded that it finished (``training.json``) and nothing is
    missing; then each analyzer's run-level params are prepared afresh, and the epochs computed
    with params that changed since (e.g. chosen from what was then the last checkpoint) are
    recomputed, so the store ends as if the run had been analysed after training. A run
    without that record (trained outside epochstore, or its trainer died) stops being followed
    once no new checkpoint came for ``idle_timeout`` seconds, with a notice.

    Parameters
    ----------
    root
        A run or a root of runs (local directory or URL).
    find
        Returns the runs to follow (default: the runs under ``root``).
    executor, workers, client
        As for :func:`analyze_runs`.
    poll
        Seconds between rounds with nothing to do.
    idle_timeout
        Seconds without a new checkpoint after which an unfinished run is given up (and the
        whole follow ends if no run ever appears).
    progress
        A progress bar per round with work.
    log
        Receives notices (runs finished, given up).
    **options
        Passed to each :class:`AnalysisPipeline`.
    """
    from epochstore.runs import run_locations
    from epochstore.status import is_finished

    started = time.perf_counter()
    say = log or (lambda line: None)
    storage_options = options.get("storage_options")
    locate = find or (lambda: run_locations(root, storage_options))
    executor = executor or make_executor(workers, client)
    show = sys.stderr.isatty() if progress is None else progress
    state: dict[str, _Followed] = {}
    results: dict[str, list[EpochResult]] = {}
    plans: dict[str, Plan] = {}
    begun = time.monotonic()
    while True:
        now = time.monotonic()
        for run in locate():
            state.setdefault(run, _Followed(changed=now))
        active = [run for run, s in state.items() if not s.done]
        pipelines: list[AnalysisPipeline] = []
        jobs: list[list[tuple[TaskContext, EpochTask]]] = []
        finishing: list[AnalysisPipeline] = []
        for run in active:
            followed = state[run]
            finished = is_finished(run, storage_options=storage_options)  # before planning
            pipeline = AnalysisPipeline(run, **options)
            count = len(pipeline.checkpoints.epochs())
            if count != followed.checkpoints:
                followed.checkpoints, followed.changed = count, now
            if count == 0:
                run_jobs: list[tuple[TaskContext, EpochTask]] = []
            else:
                plan, run_jobs = pipeline.jobs()
                plans.setdefault(run, plan)
            if run_jobs:
                pipelines.append(pipeline)
                jobs.append(run_jobs)
            elif finished and count:
                finishing.append(pipeline)
            elif now - followed.changed >= idle_timeout:
                followed.done = True
                say(f"{run}: stopped following: no new checkpoint for {idle_timeout:.0f} s and "
                    "its training did not record that it finished (trained outside epochstore, "
                    "or the trainer died); run `epochstore analyze` again to pick up later ones")
        for pipeline in finishing:
            changed = pipeline.recheck_params()
            if changed:
                _, run_jobs = pipeline.jobs(recompute_stale=True)
                say(f"{pipeline.location}: run-level params of {', '.join(changed)} changed "
                    f"when training finished: recomputing {len(run_jobs)} epochs")
                pipelines.append(pipeline)
                jobs.append(run_jobs)
            else:
                from epochstore.summary import write_summary

                # The trainer's last summary may predate the last epochs analysed here.
                write_summary(pipeline.location, storage_options=storage_options,
                              family=pipeline.family)
            state[pipeline.location].done = True
            say(f"{pipeline.location}: training finished and every checkpoint is analysed")
        for pipeline, run_results in zip(
            pipelines, _execute(pipelines, jobs, executor, show), strict=True
        ):
            results.setdefault(pipeline.location, []).extend(run_results)
        if state and all(s.done for s in state.values()):
            break
        if not state and time.monotonic() - begun >= idle_timeout:
            say(f"no runs under {os.fspath(root)} after {idle_timeout:.0f} s; stopped")
            break
        if not pipelines:
            time.sleep(poll)
    return ManyReport(
        plans=plans,
        results={run: tuple(sorted(rs, key=lambda r: r.epoch)) for run, rs in results.items()},
        seconds=time.perf_counter() - started,
    )
