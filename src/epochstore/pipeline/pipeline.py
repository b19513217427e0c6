"""AnalysisPipeline: compute exactly the missing (analyzer, epoch) pairs of a run."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from epochstore._memory import fix_mmap_threshold
from epochstore.errors import EpochstoreError, FamilyNotFoundError, SchemaMismatchError
from epochstore.interface import Analyzer, ModelFamily, RunContext, check_analyzer
from epochstore.pipeline.executors import (
    DaskExecutor,
    Executor,
    ProcessExecutor,
    SequentialExecutor,
)
from epochstore.pipeline.plan import EpochResult, EpochTask, Plan, RunReport
from epochstore.pipeline.worker import TaskContext, run_epoch_task, unfreeze
from epochstore.plugins import get_family
from epochstore.run import CHECKPOINTS_DIR, join, read_variant
from epochstore.store.codecs import DEFAULT_CODEC, Codec

if TYPE_CHECKING:
    import torch

    from epochstore.checkpoints import CheckpointManager
    from epochstore.store import ArtifactStore

__all__ = ["AnalysisPipeline", "ProgressCallback"]

#: Called after each finished task with ``(result, tasks_done, tasks_total)``.
ProgressCallback = Callable[[EpochResult, int, int], None]

#: Temporary nodes older than this are a killed writer's and removed at the start of a run.
STALE_AFTER_SECONDS = 3600.0


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
    run_dir
        The run directory (local path or fsspec URL) holding ``variant.json``,
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
        fsspec options when ``run_dir`` is a URL.
    codec
        Compression of analyzers this pipeline creates (a :class:`~epochstore.Codec` or a
        name for :meth:`~epochstore.Codec.parse`: ``"default"`` = LZ4, ``"archival"`` = zstd
        level 1, ...). An analyzer already in the store keeps the codec it was created with.

    Examples
    --------
    >>> pipeline = AnalysisPipeline("runs/modadd/demo")  # doctest: +SKIP
    >>> pipeline.plan().summary()  # doctest: +SKIP
    '240 missing (analyzer, epoch) pairs over 48 of 48 checkpoints, ...'
    >>> pipeline.run(workers=2)  # doctest: +SKIP
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        *,
        family: ModelFamily | str | None = None,
        analyzers: Sequence[Analyzer | str] | None = None,
        config: Mapping[str, Any] | None = None,
        device: str = "cpu",
        storage_options: Mapping[str, Any] | None = None,
        codec: Codec | str | None = None,
    ) -> None:
        self.run_dir = os.fspath(run_dir)
        if isinstance(codec, str):
            codec = Codec.parse(codec)
        self.codec: Codec = DEFAULT_CODEC if codec is None else codec
        self.storage_options = dict(storage_options) if storage_options else None
        variant = None
        if family is None or config is None:
            try:
                variant = read_variant(self.run_dir, storage_options=self.storage_options)
            except FileNotFoundError:
                raise EpochstoreError(
                    f"{join(self.run_dir, 'variant.json')} not found: is {self.run_dir!r} a "
                    "run directory? Train one with `epochstore train`, or pass family= and "
                    "config= explicitly"
                ) from None
        if family is None:
            assert variant is not None
            family = variant.family
        resolved = get_family(family) if isinstance(family, str) else family
        bind = getattr(resolved, "for_run", None)  # optional: a family keeping files in the run
        self.family: ModelFamily = (
            resolved if bind is None else bind(self.run_dir, self.storage_options)
        )
        self.config: Mapping[str, Any] = (
            dict(config) if config is not None else dict(variant.params if variant else {})
        )
        self.analyzers: dict[str, Analyzer] = self._resolve_analyzers(analyzers)
        self.device = device
        self.checkpoint_dir = join(self.run_dir, CHECKPOINTS_DIR)
        self._store: ArtifactStore | None = None
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
                raise ValueError(f"analyzer {analyzer.name!r} is listed twice")
            result[analyzer.name] = analyzer
        return result

    # --- components -----------------------------------------------------------------------------

    @property
    def store(self) -> ArtifactStore:
        """The run's artifact store."""
        if self._store is None:
            from epochstore.store import ArtifactStore

            self._store = ArtifactStore(
                self.run_dir, storage_options=self.storage_options, codec=self.codec
            )
        return self._store

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
        present = set(self.store.get_available_analyzers())
        done = {
            name: set(self.store.get_epochs(name)) if name in present else set()
            for name in self.analyzers
        }
        tasks = []
        for epoch in committed:
            missing = tuple(name for name in self.analyzers if epoch not in done[name])
            if missing:
                tasks.append(EpochTask(epoch=epoch, analyzers=missing))
        return Plan(tasks=tuple(tasks), epochs=tuple(committed), analyzers=tuple(self.analyzers))

    # --- running --------------------------------------------------------------------------------

    def _load_model(self, epoch: int) -> torch.nn.Module:
        checkpoint = self.checkpoints.load(epoch, map_location=self.device, include_optimizer=False)
        model = self.family.build_model(self.config)
        model.load_state_dict(checkpoint["model"])
        return model.to(self.device).eval()

    def _prepare(self, plan: Plan) -> dict[str, Mapping[str, Any]]:
        """Create each pending analyzer's group once, with its run-level params."""
        pending = {name for task in plan.tasks for name in task.analyzers}
        present = set(self.store.get_available_analyzers())
        params: dict[str, Mapping[str, Any]] = {}
        # Run-level params (e.g. from the final checkpoint) come from the whole run, never
        # from the subset of epochs this call was asked to analyze.
        run = RunContext(
            run_dir=self.run_dir,
            family=self.family,
            config=self.config,
            epochs=tuple(self.checkpoints.epochs()),
            load_model=self._load_model,
            device=self.device,
        )
        for name in pending:
            analyzer = self.analyzers[name]
            if name in present:
                manifest = self.store.manifest(name)
                if manifest.version != analyzer.version:
                    raise SchemaMismatchError(
                        f"analyzer {name!r} in {self.run_dir} was computed by version "
                        f"{manifest.version!r}, this is version {analyzer.version!r}; delete it "
                        f"(ArtifactStore(run).delete_analyzer({name!r})) to recompute every epoch"
                    )
                params[name] = manifest.params  # reuse: stay consistent with stored epochs
                continue
            params[name] = dict(analyzer.prepare(run))
            self.store.create_analyzer(name, version=analyzer.version, params=params[name])
        return params

    def run(
        self,
        *,
        workers: int = 1,
        client: Any = None,
        executor: Executor | None = None,
        epochs: Sequence[int] | None = None,
        progress: bool | None = None,
        callback: ProgressCallback | None = None,
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
            Show a progress bar (default: when stderr is a terminal).
        callback
            Called after each epoch with ``(result, done, total)``.

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
        plan = self.plan(epochs)
        if not plan.tasks:
            return RunReport(results=(), seconds=time.perf_counter() - started)
        if self.store.supports_rename:
            self.store.cleanup(older_than=STALE_AFTER_SECONDS)
        fix_mmap_threshold()  # before prepare(), which loads and analyses a checkpoint too
        params = self._prepare(plan)
        ctx = TaskContext(
            run=self.run_dir,
            checkpoint_dir=self.checkpoint_dir,
            storage_options=self.storage_options,
            family=self.family,
            analyzers={name: self.analyzers[name] for name in plan.analyzers},
            params=params,
            config=self.config,
            device=self.device,
            codec=self.codec,
        )
        if executor is None:
            if client is not None:
                executor = DaskExecutor(client)
            elif workers > 1:
                executor = ProcessExecutor(workers)
            else:
                executor = SequentialExecutor()
        show = sys.stderr.isatty() if progress is None else progress
        results: list[EpochResult] = []
        with contextlib.ExitStack() as stack:
            bar = None
            if show:
                from tqdm import tqdm

                bar = stack.enter_context(
                    tqdm(total=len(plan.tasks), unit="epoch", desc=f"analyze {self.run_dir}")
                )
            stack.callback(unfreeze)
            jobs = [(ctx, task) for task in plan.tasks]
            for result in executor.map_unordered(run_epoch_task, jobs):
                results.append(result)
                if bar is not None:
                    bar.update(1)
                    if result.error:
                        bar.write(f"epoch {result.epoch}: skipped ({result.error})")
                if callback is not None:
                    callback(result, len(results), len(plan.tasks))
        results.sort(key=lambda r: r.epoch)
        return RunReport(results=tuple(results), seconds=time.perf_counter() - started)
