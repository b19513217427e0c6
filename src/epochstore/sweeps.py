"""Sweeps: train the grid of a family's variants under one root, resumable, in parallel.

A sweep takes a family, a preset, fixed overrides and the swept values of some config keys,
and trains every combination into ``ROOT/<family>/<variant-name>``, where the name is built
from the swept values (``p=17,model_seed=1``): readable, a valid path component on every
filesystem and object store, and unique within the sweep. Each variant is an ordinary run.

Resuming is per variant: a variant whose training recorded that it finished
(:mod:`epochstore.status`) is skipped, any other is handed to the family's ``train``, which
continues from its latest checkpoint. A killed sweep run again therefore finishes exactly what
is missing. Variants run one after another, in local processes (``workers``), or on a Dask
cluster (``client``); each gets ``threads`` torch threads (default: the cores divided among the
workers) so parallel variants do not oversubscribe the machine.
"""

from __future__ import annotations

import inspect
import itertools
import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from epochstore.errors import EpochstoreError
from epochstore.location import join
from epochstore.progress import Progress

__all__ = [
    "SweepReport",
    "TrainJob",
    "VariantResult",
    "grid",
    "parse_sweep",
    "sweep",
    "train_variant",
    "variant_names",
]

_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.+-]+")
#: Longest variant name; longer ones are cut and made unique with a hash.
MAX_NAME_LENGTH: Final = 120


def _split_values(text: str) -> list[str]:
    """Split ``V1,V2,...`` at the commas outside brackets and quotes (JSON lists stay whole)."""
    parts: list[str] = []
    depth = 0
    quoted = False
    current: list[str] = []
    for char in text:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "[{":
            depth += 1
        elif not quoted and char in "]}":
            depth -= 1
        if char == "," and depth == 0 and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_sweep(pairs: Sequence[str]) -> dict[str, list[Any]]:
    """Parse ``KEY=V1,V2,...`` options (JSON values) into ``{key: [values]}``, in order.

    Raises
    ------
    EpochstoreError
        On a malformed option, an empty or repeated value, or a key swept twice.
    """
    result: dict[str, list[Any]] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key or not text:
            raise EpochstoreError(
                f"--sweep takes KEY=V1,V2,... (JSON values), e.g. --sweep p=17,19; got {pair!r}"
            )
        if key in result:
            raise EpochstoreError(f"--sweep {key} is given twice; list all its values once")
        texts = [v.strip() for v in _split_values(text)]
        values = [_value(v) for v in texts]
        encoded = [json.dumps(v, sort_keys=True) for v in values]
        if not all(texts) or len(set(encoded)) != len(encoded):
            raise EpochstoreError(f"--sweep {pair!r} has an empty or repeated value")
        result[key] = values
    return result


def grid(swept: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the swept values (the first key varies slowest)."""
    keys = list(swept)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*swept.values())]


def _format(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "_".join(_format(v) for v in value)
    return _UNSAFE.sub("_", str(value)).strip("._") or "x"


def variant_names(points: Sequence[Mapping[str, Any]]) -> list[str]:
    """Readable, unique, path-safe names of grid points: ``"p=17,model_seed=1"``.

    Values are written as JSON numbers and words; characters other than letters, digits and
    ``_ . + -`` become ``_``. Names that would collide (or exceed ``MAX_NAME_LENGTH``) get
    a short hash of their values appended.

    Examples
    --------
    >>> variant_names([{"p": 17, "lr": 0.001}, {"p": 19, "lr": 0.001}])
    ['p=17,lr=0.001', 'p=19,lr=0.001']
    """
    import hashlib

    names = [",".join(f"{k}={_format(v)}" for k, v in point.items()) or "default"
             for point in points]
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    result = []
    for name, point in zip(names, points, strict=True):
        if counts[name] > 1 or len(name) > MAX_NAME_LENGTH:
            digest = hashlib.sha1(json.dumps(point, sort_keys=True).encode()).hexdigest()[:8]
            name = f"{name[:MAX_NAME_LENGTH - 9]}~{digest}"
        result.append(name)
    return result


@dataclass(frozen=True)
class TrainJob:
    """One variant to train (picklable: sent to worker processes and Dask workers)."""

    run: str
    family: Any  # a ModelFamily object
    config: Mapping[str, Any]
    threads: int | None = None
    storage_options: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class VariantResult:
    """What training one variant did."""

    run: str
    trained: bool
    seconds: float = 0.0
    error: str | None = None


def train_variant(
    job: TrainJob, progress: Callable[[int, Mapping[str, float]], None] | None = None
) -> VariantResult:
    """Train one variant (resuming it), record that it finished, write its summary.

    Used by :func:`sweep` and ``epochstore train`` alike. A family's ``train`` that takes no
    ``storage_options`` can train into local directories only.
    """
    from epochstore.status import mark_finished
    from epochstore.summary import write_summary

    started = time.perf_counter()
    if job.threads:
        import torch

        torch.set_num_threads(job.threads)
    kwargs: dict[str, Any] = {"progress": progress}
    if job.storage_options or "://" in job.run:
        if "storage_options" not in inspect.signature(job.family.train).parameters:
            raise EpochstoreError(
                f"family {job.family.name!r} trains into local directories only, not into "
                f"{job.run!r}; train locally and copy the run, or use a family whose train() "
                "takes storage_options"
            )
        kwargs["storage_options"] = job.storage_options
    job.family.train(job.run, dict(job.config), **kwargs)
    mark_finished(job.run, storage_options=job.storage_options)
    write_summary(job.run, storage_options=job.storage_options, family=job.family)
    return VariantResult(run=job.run, trained=True, seconds=time.perf_counter() - started)


def _train_task(job: TrainJob) -> VariantResult:
    """Executor task: train one variant; a bad variant is reported, the others go on."""
    try:
        return train_variant(job)
    except (EpochstoreError, ValueError, TypeError) as exc:
        return VariantResult(run=job.run, trained=False, error=f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class SweepReport:
    """The outcome of :func:`sweep`.

    Attributes
    ----------
    runs
        Every variant's run location, in grid order.
    results
        The variants this call trained (or tried to), in grid order.
    skipped
        Variants already finished, left as they were.
    """

    runs: tuple[str, ...]
    results: tuple[VariantResult, ...] = ()
    skipped: tuple[str, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> dict[str, str]:
        """Variants whose training failed, with the reason."""
        return {r.run: r.error for r in self.results if r.error is not None}

    @property
    def ok(self) -> bool:
        """Whether every variant is trained."""
        return not self.failed


def sweep(
    root: str | os.PathLike[str],
    family: Any,
    sweep: Mapping[str, Sequence[Any]],
    *,
    preset: str = "demo",
    overrides: Mapping[str, Any] | None = None,
    workers: int = 1,
    client: Any = None,
    threads: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
    progress: bool | None = None,
) -> SweepReport:
    """Train every combination of ``sweep`` values into ``ROOT/<family>/<variant-name>``.

    Parameters
    ----------
    root
        The sweep's root: a local directory or an fsspec URL (``"s3://bucket/runs"``).
    family
        A :class:`~epochstore.interface.ModelFamily` or a registered family name.
    sweep
        Config key to the values it takes, e.g. ``{"p": [17, 19], "model_seed": [1, 2]}``.
    preset
        The family preset every variant starts from.
    overrides
        Fixed config values on top of the preset (e.g. smaller sizes).
    workers
        Local processes training variants in parallel (1: one after another, in this process).
    client
        A ``dask.distributed.Client``: one task per variant on its cluster instead.
    threads
        Torch threads per variant; default: the cores divided among ``workers``.
    storage_options
        fsspec options when ``root`` is a URL.
    progress
        Show a progress bar over variants (default: when stderr is a terminal).

    Returns
    -------
    SweepReport

    Examples
    --------
    >>> import epochstore
    >>> epochstore.sweep("runs", "modadd", {"p": [53, 59], "model_seed": [1, 2]},
    ...                  workers=2)  # doctest: +SKIP
    """
    from epochstore.pipeline.executors import DaskExecutor, ProcessExecutor, SequentialExecutor
    from epochstore.plugins import get_family

    if isinstance(family, str):
        family = get_family(family)
    presets = family.presets()
    if preset not in presets:
        raise EpochstoreError(
            f"family {family.name!r} has no preset {preset!r}; presets: {sorted(presets)}"
        )
    if not sweep or any(not values for values in sweep.values()):
        raise EpochstoreError("a sweep needs at least one key with at least one value")
    points = grid(sweep)
    base = {**presets[preset], **dict(overrides or {})}
    runs = [join(root, family.name, name) for name in variant_names(points)]
    if threads is None and client is None:
        threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    from epochstore.status import is_finished

    jobs: list[TrainJob] = []
    skipped: list[str] = []
    for run, point in zip(runs, points, strict=True):
        if is_finished(run, storage_options=storage_options):
            skipped.append(run)
            continue
        jobs.append(TrainJob(run=run, family=family, config={**base, **point}, threads=threads,
                             storage_options=storage_options))
    if client is not None:
        executor: Any = DaskExecutor(client, retries=0)
    elif workers > 1 and len(jobs) > 1:
        executor = ProcessExecutor(min(workers, len(jobs)))
    else:
        executor = SequentialExecutor()
    show = sys.stderr.isatty() if progress is None else progress
    done: dict[str, VariantResult] = {}
    with Progress(len(runs), "sweep", unit="variant", enabled=show,
                  initial=len(skipped)) as bar:
        for result in executor.map_unordered(_train_task, jobs):
            done[result.run] = result
            bar.advance()
            if result.error:
                bar.write(f"{result.run}: failed ({result.error})")
    return SweepReport(
        runs=tuple(runs),
        results=tuple(done[r] for r in runs if r in done),
        skipped=tuple(skipped),
    )
