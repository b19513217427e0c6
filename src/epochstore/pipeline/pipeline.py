"""AnalysisPipeline: compute exactly the missing (and, if asked, stale) pairs of a run."""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from epochstore._memory import fix_mmap_threshold
from epochstore.errors import EpochstoreError, FamilyNotFoundError, SchemaMismatchError
from epochstore.interface import Analyzer, ModelFamily, RunContext, check_analyzer
from epochstore.location import join
from epochstore.pipeline.executors import (
    DaskExecutor,
    Executor,
    ProcessExecutor,
    SequentialExecutor,
)
from epochstore.pipeline.plan import EpochResult, EpochTask, Plan, RunReport
from epochstore.pipeline.worker import TaskContext, run_epoch_task, unfreeze
from epochstore.plugins import get_family
from epochstore.progress import Progress
from epochstore.run import CHECKPOINTS_DIR, read_variant
from epochstore.store.codecs import DEFAULT_CODEC, Codec
from epochstore.store.freshness import read_manifest, refresh, stale_epochs, supersede

if TYPE_CHECKING:
    import torch

    from epochstore.checkpoints import CheckpointManager
    from epochstore.store import ArtifactStore

__all__ = ["AnalysisPipeline", "ProgressCallback"]

#: Called after each finished task with ``(result, tasks_done, tasks_total)``.
ProgressCallback = Callable[[EpochResult, int, int], None]

def _check_importable(family: ModelFamily, analyzers: Iterable[Analyzer]) -> None:
    """Refuse, before any work, to send a class defined in ``__main__`` to other processes.

    Spawned processes and Dask workers unpickle the family and analyzers by importing their
    modules; a class of a notebook or of ``python -c`` has no module they can import.
    """
    for kind, obj in [("family", family), *(("analyzer", a) for a in analyzers)]:
        module = type(obj).__module__
        if module in {"__main__", "__mp_main__"} or module.startswith("ipykernel"):
            name = getattr(obj, "name", type(obj).__name__)
            raise EpochstoreError(
                f"the {kind} {name!r} ({type(obj).__qualname__}) is defined in {module!r} "
                "(a notebook or a script), which worker processes cannot import: move its "
                "class into an importable module (a .py file on the path, or a package with "
                "an epochstore.families entry point) to use workers > 1 or Dask, or run with "
                "workers=1"
            )


class AnalysisPipeline:
    """Run a family's analyzers over every checkpoint of a run, one epoch at a time.

    Only missing (analyzer, epoch) pairs are computed (existence in the store is the only
    record of completion), each result is written the moment it is computed, and nothing is
    kept across epochs, so memory stays flat however many checkpoints there are. Running it
    twice does nothing the second time; after a kill it finishes what is missing.

    Parameters
    ----------
    location
        Where the run lives (local path or fsspec URL), holding ``variant.json``,
        ``checkpoints/`` and ``artifacts/``.
    family
        A :class:`~epochstore.families.ModelFamily` or a registered family name; default: the
        family in ``variant.json``.
    analyzers
        Analyzer objects or names of the family's analyzers; default: all of the family's.
    config
        The variant's parameters; default: ``variant.json``'s ``params``.
    device
        Torch device for the forward passes (``"cpu"``, ``"cuda"``, ...).
    storage_options
        fsspec options when ``location`` is a URL.
    codec
        Compression of analyzers this pipeline creates (a :class:`~epochstore.Codec` or a
        name for :meth:`~epochstore.Codec.parse`: ``"default"`` = LZ4, ``"archival"`` = zstd
        level 1, ...). An analyzer already in the store keeps the codec it was created with.
    capture
        Module names whose activations on the probe are captured with forward hooks, one
        analyzer ``capture_<name>`` each (:func:`epochstore.analysis.captures.capture_analyzers`;
        ``epochstore analyze --capture``). Shapes are checked once, before any epoch.
    capture_max_bytes
        Refuse a capture larger than this per epoch (the error names the fixes).

    Examples
    --------
    >>> pipeline = AnalysisPipeline("runs/modadd/demo")  # doctest: +SKIP
    >>> pipeline.plan().summary()  # doctest: +SKIP
    '240 missing (analyzer, epoch) pairs over 48 of 48 checkpoints, ...'
    >>> pipeline.run(workers=2)  # doctest: +SKIP
    """

    def __init__(
        self,
        location: str | os.PathLike[str],
        *,
        family: ModelFamily | str | None = None,
        analyzers: Sequence[Analyzer | str] | None = None,
        config: Mapping[str, Any] | None = None,
        device: str = "cpu",
        storage_options: Mapping[str, Any] | None = None,
        codec: Codec | str | None = None,
        capture: Sequence[str] = (),
        capture_max_bytes: int | None = None,
    ) -> None:
        self.location = os.fspath(location)
        if isinstance(codec, str):
            codec = Codec.parse(codec)
        self.codec: Codec = DEFAULT_CODEC if codec is None else codec
        self.storage_options = dict(storage_options) if storage_options else None
        variant = None
        if family is None or config is None:
            try:
                variant = read_variant(self.location, storage_options=self.storage_options)
            except FileNotFoundError:
                raise EpochstoreError(
                    f"{join(self.location, 'variant.json')} not found: is {self.location!r} a "
                    "run directory? Train one with `epochstore train`, or pass family= and "
                    "config= explicitly"
                ) from None
        if family is None:
            assert variant is not None
            family = variant.family
        resolved = get_family(family) if isinstance(family, str) else family
        bind = getattr(resolved, "for_run", None)  # optional: a family keeping files in the run
        self.family: ModelFamily = (
            resolved if bind is None else bind(self.location, self.storage_options)
        )
        self.config: Mapping[str, Any] = (
            dict(config) if config is not None else dict(variant.params if variant else {})
        )
        self.device = device
        chosen: list[Analyzer | str] | None = None if analyzers is None else list(analyzers)
        if capture:
            from epochstore.analysis.captures import DEFAULT_MAX_BYTES, capture_analyzers

            captured = capture_analyzers(
                self.family, self.config, list(capture), device=device,
                max_bytes=DEFAULT_MAX_BYTES if capture_max_bytes is None else capture_max_bytes,
            )
            base = chosen if chosen is not None else list(self.family.analyzers())
            chosen = [*base, *captured]
        self.analyzers: dict[str, Analyzer] = self._resolve_analyzers(chosen)
        self.checkpoint_dir = join(self.location, CHECKPOINTS_DIR)
        self._artifacts: ArtifactStore | None = None
        self._manager: CheckpointManager | None = None

    def _resolve_analyzers(self, analyzers: Sequence[Analyzer | str] | None) -> dict[str, Analyzer]:
        known = {a.name: a for a in self.family.analyzers()}
        if analyzers is None:
            chosen = list(known.values())
        else:
            chosen = []
            for item in analyzers:
                if isinstance(item, str):
                    if item not in known:
                        raise FamilyNotFoundError(
                            f"family {self.family.name!r} has no analyzer {item!r}; its "
                            f"analyzers: {sorted(known)}"
                        )
                    chosen.append(known[item])
                else:
                    chosen.append(item)
        result: dict[str, Analyzer] = {}
        for analyzer in chosen:
            check_analyzer(analyzer)
            if analyzer.name in result:
                raise ValueError(
                    f"analyzer {analyzer.name!r} is listed twice in analyzers=; list each "
                    f"analyzer once"
                )
            result[analyzer.name] = analyzer
        return result

    # --- components -----------------------------------------------------------------------------

    @property
    def artifacts(self) -> ArtifactStore:
        """The run's artifact store."""
        if self._artifacts is None:
            from epochstore.store import ArtifactStore

            self._artifacts = ArtifactStore(
                self.location, storage_options=self.storage_options, codec=self.codec
            )
        return self._artifacts

    @property
    def store(self) -> ArtifactStore:
        """Deprecated name of :attr:`artifacts` (``ArtifactStore.store`` is a zarr store)."""
        warnings.warn(
            "AnalysisPipeline.store is deprecated; use AnalysisPipeline.artifacts",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.artifacts

    @property
    def run_dir(self) -> str:
        """Deprecated name of ``location``."""
        warnings.warn(
            "AnalysisPipeline.run_dir is deprecated; use AnalysisPipeline.location",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.location

    @property
    def checkpoints(self) -> CheckpointManager:
        """The run's checkpoint manager (read-only: analysis never changes checkpoints)."""
        if self._manager is None:
            from epochstore.checkpoints import CheckpointManager

            self._manager = CheckpointManager(
                checkpoint_dir=self.checkpoint_dir,
                storage_options=self.storage_options,
                read_only=True,
            )
        return self._manager

    # --- planning -------------------------------------------------------------------------------

    def plan(self, epochs: Sequence[int] | None = None) -> Plan:
        """List the missing (analyzer, epoch) pairs from the store's listing alone.

        Parameters
        ----------
        epochs
            Restrict to these checkpoint epochs (default: every committed checkpoint).

        Raises
        ------
        EpochstoreError
            If the run has no committed checkpoint.
        """
        committed = self.checkpoints.epochs()
        if not committed:
            raise EpochstoreError(
                f"no committed checkpoints in {self.checkpoint_dir}; train the run first "
                "(`epochstore train`) or check the run directory"
            )
        if epochs is not None:
            wanted = set(epochs)
            unknown = wanted - set(committed)
            if unknown:
                raise EpochstoreError(
                    f"epochs {sorted(unknown)} have no committed checkpoint in "
                    f"{self.checkpoint_dir}"
                )
            committed = [e for e in committed if e in wanted]
        present = set(self.artifacts.get_available_analyzers())
        considered = set(committed)
        done: dict[str, set[int]] = {}
        stale: dict[int, list[str]] = {}
        stale_versions: dict[str, tuple[tuple[str | None, ...], str | None]] = {}
        for name, analyzer in self.analyzers.items():
            if name not in present:
                done[name] = set()
                continue
            manifest = read_manifest(self.artifacts, name)  # first: get_epochs then only lists
            done[name] = set(self.artifacts.get_epochs(name))
            found = stale_epochs(manifest, done[name] & considered, version=analyzer.version)
            for epoch in found:
                stale.setdefault(epoch, []).append(name)
            if found:
                versions = tuple(sorted(set(found.values()), key=str))
                stale_versions[name] = (versions, analyzer.version)
        tasks = []
        for epoch in committed:
            missing = tuple(name for name in self.analyzers if epoch not in done[name])
            if missing:
                tasks.append(EpochTask(epoch=epoch, analyzers=missing))
        stale_tasks = tuple(
            EpochTask(epoch=epoch, analyzers=tuple(names), overwrite=tuple(names))
            for epoch, names in sorted(stale.items())
        )
        return Plan(
            tasks=tuple(tasks),
            epochs=tuple(committed),
            analyzers=tuple(self.analyzers),
            stale=stale_tasks,
            stale_versions=stale_versions,
        )

    # --- running --------------------------------------------------------------------------------

    def _load_model(self, epoch: int) -> torch.nn.Module:
        checkpoint = self.checkpoints.load(epoch, map_location=self.device, include_optimizer=False)
        model = self.family.build_model(self.config)
        model.load_state_dict(checkpoint["model"])
        return model.to(self.device).eval()

    def _run_context(self) -> RunContext:
        # Run-level params (e.g. from the final checkpoint) come from the whole run, never
        # from the subset of epochs this call was asked to analyze.
        return RunContext(
            location=self.location,
            family=self.family,
            config=self.config,
            epochs=tuple(self.checkpoints.epochs()),
            load_model=self._load_model,
            device=self.device,
        )

    def _prepare(self, plan: Plan) -> dict[str, Mapping[str, Any]]:
        """Create each pending analyzer's group once, with its run-level params.

        An analyzer stored by another version is superseded: its params are prepared afresh
        and its stored epochs become stale (:func:`~epochstore.store.freshness.supersede`).
        """
        pending = {name for task in plan.tasks for name in task.analyzers}
        present = set(self.artifacts.get_available_analyzers())
        params: dict[str, Mapping[str, Any]] = {}
        run = self._run_context()
        for name in sorted(pending):
            analyzer = self.analyzers[name]
            if name in present:
                manifest = read_manifest(self.artifacts, name)
                if manifest.version != analyzer.version:
                    fresh = _as_json(name, analyzer.prepare(run))
                    manifest = supersede(self.artifacts, name, analyzer.version, fresh)
                params[name] = manifest.params  # reuse: stay consistent with stored epochs
                continue
            params[name] = _as_json(name, analyzer.prepare(run))
            self.artifacts.create_analyzer(name, version=analyzer.version, params=params[name])
        return params

    def recheck_params(self) -> list[str]:
        """Prepare every stored analyzer's run-level params afresh; supersede those that changed.

        Params computed before training finished (e.g. from what was then the final
        checkpoint, as ``epochstore analyze --follow`` does) may differ from the finished
        run's: the epochs computed with the old params become stale, to be recomputed with
        ``run(recompute_stale=True)``. Loads what each analyzer's ``prepare`` loads.

        Returns
        -------
        list of str
            The analyzers whose params changed.
        """
        present = set(self.artifacts.get_available_analyzers())
        run = self._run_context()
        changed = []
        for name, analyzer in self.analyzers.items():
            if name not in present:
                continue
            manifest = read_manifest(self.artifacts, name)
            if manifest.version != analyzer.version:
                continue  # superseded as a whole when it is next computed
            params = _as_json(name, analyzer.prepare(run))
            if params != dict(manifest.params):
                supersede(self.artifacts, name, analyzer.version, params)
                changed.append(name)
        return changed

    def jobs(
        self, *, epochs: Sequence[int] | None = None, recompute_stale: bool = False
    ) -> tuple[Plan, list[tuple[TaskContext, EpochTask]]]:
        """Plan, prepare the analyzers, and return the plan and the tasks for any executor.

        :meth:`run` is ``jobs``, the executor, then :meth:`record`; running the jobs of many
        runs through one executor (``epochstore analyze ROOT``) uses the same three steps.

        Parameters
        ----------
        epochs
            Restrict to these checkpoint epochs.
        recompute_stale
            Also recompute (overwrite, atomically) the stale pairs.
        """
        plan = self.plan(epochs)
        work = plan.with_stale() if recompute_stale else plan
        if not work.tasks:
            return plan, []
        if self.artifacts.supports_rename:
            self.artifacts.cleanup()
        fix_mmap_threshold()  # before prepare(), which loads and analyses a checkpoint too
        params = self._prepare(work)
        ctx = TaskContext(
            location=self.location,
            checkpoint_dir=self.checkpoint_dir,
            storage_options=self.storage_options,
            family=self.family,
            analyzers={name: self.analyzers[name] for name in work.analyzers},
            params=params,
            config=self.config,
            device=self.device,
            codec=self.codec,
        )
        return plan, [(ctx, task) for task in work.tasks]

    def record(self, results: Sequence[EpochResult], *, summary: bool = True) -> None:
        """Record finished tasks: written epochs are current now; rewrite the run's summary.

        Parameters
        ----------
        results
            The tasks' results.
        summary
            Rewrite the derived variant summary (:func:`epochstore.summary.write_summary`).
        """
        written: dict[str, list[int]] = {}
        for result in results:
            for name in result.written:
                written.setdefault(name, []).append(result.epoch)
        for name, done in written.items():
            refresh(self.artifacts, name, done)
        if summary and written:
            from epochstore.summary import write_summary

            write_summary(self.location, storage_options=self.storage_options, family=self.family)

    def run(
        self,
        *,
        workers: int = 1,
        client: Any = None,
        executor: Executor | None = None,
        epochs: Sequence[int] | None = None,
        progress: bool | None = None,
        callback: ProgressCallback | None = None,
        recompute_stale: bool = False,
    ) -> RunReport:
        """Compute every missing (analyzer, epoch) pair.

        Parameters
        ----------
        workers
            Local processes (1: in this process). Each takes different epochs.
        client
            A ``dask.distributed.Client``: run one task per epoch on its cluster instead.
        executor
            Any :class:`~epochstore.pipeline.executors.Executor` (overrides the two above).
        epochs
            Restrict to these checkpoint epochs.
        progress
            Show progress on stderr (default: when stderr is a terminal): a live bar on a
            terminal, a plain line every ~5% otherwise (see :class:`epochstore.progress.Progress`).
        callback
            Called after each epoch with ``(result, done, total)``.
        recompute_stale
            Also recompute the stale pairs (computed by another analyzer version or params),
            each replaced atomically: readers see the old epoch or the new, never a mix.

        Returns
        -------
        RunReport
            What was written, and epochs that failed (e.g. corrupt checkpoints).
        """
        started = time.perf_counter()
        if (
            client is not None
            or workers > 1
            or (executor is not None and not isinstance(executor, SequentialExecutor))
        ):
            _check_importable(self.family, self.analyzers.values())
        _, jobs = self.jobs(epochs=epochs, recompute_stale=recompute_stale)
        if not jobs:
            return RunReport(results=(), seconds=time.perf_counter() - started)
        if executor is None:
            if client is not None:
                executor = DaskExecutor(client)
            elif workers > 1:
                executor = ProcessExecutor(workers)
            else:
                executor = SequentialExecutor()
        show = sys.stderr.isatty() if progress is None else progress
        results: list[EpochResult] = []
        # Workers (processes or Dask) return one small result per epoch: the parent counts
        # them, so there is one display however many processes compute.
        with Progress(len(jobs), f"analyze {self.location}", enabled=show) as bar:
            try:
                for result in executor.map_unordered(run_epoch_task, jobs):
                    results.append(result)
                    bar.advance()
                    if result.error:
                        bar.write(f"epoch {result.epoch}: skipped ({result.error})")
                    if callback is not None:
                        callback(result, len(results), len(jobs))
            finally:
                unfreeze()
        results.sort(key=lambda r: r.epoch)
        self.record(results)
        return RunReport(results=tuple(results), seconds=time.perf_counter() - started)


def _as_json(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``params`` as they read back from the store (to compare with stored ones)."""
    try:
        result: dict[str, Any] = json.loads(json.dumps(dict(params)))
    except (TypeError, ValueError) as exc:
        raise SchemaMismatchError(
            f"params of analyzer {name!r} must be JSON-serialisable: {exc}"
        ) from None
    return result
