"""One epoch task, as run by any executor: load, forward once, analyze, write, free.

Everything a task needs travels in a small picklable :class:`TaskContext`; heavy per-process
objects (store handles, the probe, the checkpoint manager) are cached per process.
"""

from __future__ import annotations

import functools
import gc
import json
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from epochstore._memory import fix_mmap_threshold, peak_rss_bytes, release_freed_memory
from epochstore.errors import (
    CheckpointFormatError,
    CheckpointNotFoundError,
    CorruptCheckpointError,
    EpochExistsError,
    SchemaMismatchError,
)
from epochstore.interface import EpochContext
from epochstore.pipeline.plan import EpochResult, EpochTask
from epochstore.store.codecs import DEFAULT_CODEC, Codec
from epochstore.store.freshness import EPOCH_VERSION_KEY

if TYPE_CHECKING:
    from epochstore.checkpoints import CheckpointManager
    from epochstore.interface import Analyzer, ModelFamily
    from epochstore.store import ArtifactStore

__all__ = ["TaskContext", "conform_outputs", "peak_rss_bytes", "run_epoch_task", "unfreeze"]


@dataclass(frozen=True)
class TaskContext:
    """What every task of one run shares (pickled once per task; small)."""

    location: str
    checkpoint_dir: str
    storage_options: Mapping[str, Any] | None
    family: ModelFamily
    analyzers: Mapping[str, Analyzer]
    params: Mapping[str, Mapping[str, Any]]
    config: Mapping[str, Any]
    device: str
    codec: Codec = DEFAULT_CODEC

    def key(self) -> str:
        """Identity of the run for per-process caches."""
        return json.dumps(
            [
                self.location,
                self.checkpoint_dir,
                self.family.name,
                dict(self.config),
                self.device,
                self.codec.to_dict(),
            ],
            sort_keys=True,
            default=str,
        )


_STORES: dict[str, ArtifactStore] = {}
_FROZEN = False
_MANAGERS: dict[str, CheckpointManager] = {}
_PROBES: dict[str, Any] = {}
_STATES: dict[str, Mapping[str, Any]] = {}


def _artifacts(ctx: TaskContext) -> ArtifactStore:
    from epochstore.store import ArtifactStore

    key = ctx.key()
    if key not in _STORES:
        _STORES[key] = ArtifactStore(
            ctx.location, storage_options=ctx.storage_options, codec=ctx.codec
        )
    return _STORES[key]


def _manager(ctx: TaskContext) -> CheckpointManager:
    from epochstore.checkpoints import CheckpointManager

    key = ctx.key()
    if key not in _MANAGERS:
        _MANAGERS[key] = CheckpointManager(
            checkpoint_dir=ctx.checkpoint_dir,
            storage_options=ctx.storage_options,
            read_only=True,
        )
    return _MANAGERS[key]


def _state_dict(ctx: TaskContext, epoch: int) -> Mapping[str, Any]:
    """The model weights of another checkpoint of the run (the last two kept per process)."""
    key = f"{ctx.key()}|{epoch}"
    if key not in _STATES:
        checkpoint = _manager(ctx).load(epoch, map_location=ctx.device, include_optimizer=False)
        while len(_STATES) >= 2:
            _STATES.pop(next(iter(_STATES)))
        _STATES[key] = checkpoint["model"]
    return _STATES[key]


def _run_with_cache(ctx: TaskContext, task: EpochTask, model: Any, probe: Any) -> dict[str, Any]:
    """The family's forward pass, plus the outputs of the modules the analyzers capture."""
    wanted = (getattr(ctx.analyzers[name], "captures", ()) for name in task.analyzers)
    captures = sorted({module for modules in wanted for module in modules})
    if not captures:
        return dict(ctx.family.run_with_cache(model, probe))
    from epochstore.pipeline.hooks import record_outputs

    with record_outputs(model, captures) as recorded:
        cache = dict(ctx.family.run_with_cache(model, probe))
    silent = [name for name in captures if name not in recorded]
    if silent:
        raise SchemaMismatchError(
            f"modules {silent} produced no tensor in the forward pass of family "
            f"{ctx.family.name!r} on its probe; capture modules that run on the probe"
        )
    return {**recorded, **cache}


def _probe(ctx: TaskContext) -> Any:
    key = ctx.key()
    if key not in _PROBES:
        _PROBES[key] = ctx.family.make_probe(ctx.config, device=ctx.device)
    return _PROBES[key]


def _freeze_long_lived_objects() -> None:
    """Move the objects alive after the first task (modules, caches) out of gc's reach.

    A full ``gc.collect()`` then only scans what one epoch created, instead of every object of
    torch, xarray and dask (hundreds of ms per epoch otherwise). Undone by :func:`unfreeze`.
    """
    global _FROZEN
    if not _FROZEN:
        gc.freeze()
        _FROZEN = True


def unfreeze() -> None:
    """Undo :func:`_freeze_long_lived_objects` (the pipeline calls it when a run ends)."""
    global _FROZEN
    if _FROZEN:
        gc.unfreeze()
        _FROZEN = False


def conform_outputs(analyzer: Analyzer, outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Check an analyzer's outputs against its declared fields; cast to the declared dtypes.

    Raises
    ------
    SchemaMismatchError
        If fields are missing or extra, or an array's rank differs from its dims.
    """
    declared = analyzer.fields
    if set(outputs) != set(declared):
        raise SchemaMismatchError(
            f"analyzer {analyzer.name!r} returned fields {sorted(outputs)} but declares "
            f"{sorted(declared)}; fix its compute() or its fields"
        )
    result = {}
    for name, spec in declared.items():
        value = outputs[name]
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        array = np.asarray(value, dtype=np.dtype(spec.dtype))
        if array.ndim != len(spec.dims):
            raise SchemaMismatchError(
                f"field {name!r} of analyzer {analyzer.name!r} has {array.ndim} dimensions, "
                f"but its dims are {spec.dims}"
            )
        result[name] = array
    return result


def run_epoch_task(job: tuple[TaskContext, EpochTask]) -> EpochResult:
    """Analyze one checkpoint: every missing analyzer, each result written at once.

    A checkpoint that is missing, corrupt or not a safetensors file is reported in the result
    (``error``) and skipped; the other epochs go on.
    """
    import torch

    ctx, task = job
    started = time.perf_counter()
    fix_mmap_threshold()  # one mallopt call: large blocks are mapped, unmapped on free
    try:
        checkpoint = _manager(ctx).load(
            task.epoch, map_location=ctx.device, include_optimizer=False
        )
    except (CorruptCheckpointError, CheckpointFormatError, CheckpointNotFoundError) as exc:
        return EpochResult(epoch=task.epoch, error=f"{type(exc).__name__}: {exc}")
    model = ctx.family.build_model(ctx.config)
    model.load_state_dict(checkpoint["model"])
    model.to(ctx.device).eval()
    probe = _probe(ctx)
    store = _artifacts(ctx)
    written: list[str] = []
    already: list[str] = []
    with torch.no_grad():
        cache = _run_with_cache(ctx, task, model, probe)
        missing = []
        for name in task.analyzers:
            if name not in task.overwrite and store.has_epoch(name, task.epoch):
                already.append(name)  # another worker or run got there first
            else:
                missing.append(name)
        # Each result is written by one background thread while the next analyzer computes: a
        # write mostly waits on fsync, which releases the GIL. Only that thread uses the store
        # from here on and it writes in order; after a failed write it writes nothing more (as
        # sequential writes would) and the task raises that error once every write has ended.
        failed: list[BaseException] = []

        def write(name: str, analyzer: Analyzer, outputs: dict[str, np.ndarray]) -> bool | None:
            """Write one result: True if written, False if already there, None if skipped."""
            if failed:
                return None
            try:
                store.write_epoch(
                    name,
                    task.epoch,
                    outputs,
                    dims={field: spec.dims for field, spec in analyzer.fields.items()},
                    overwrite=name in task.overwrite,  # a stale epoch, replaced atomically
                    attrs={EPOCH_VERSION_KEY: analyzer.version},
                )
            except EpochExistsError:
                return False
            except BaseException as exc:
                failed.append(exc)
                raise
            return True

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="epochstore-write") as writer:
            writes = []
            for name in missing:
                if failed:
                    break  # raised below
                analyzer = ctx.analyzers[name]
                context = EpochContext(
                    epoch=task.epoch,
                    metrics=dict(checkpoint.get("metrics") or {}),
                    config=ctx.config,
                    params=ctx.params.get(name, {}),
                    device=ctx.device,
                    load_state_dict=functools.partial(_state_dict, ctx),
                )
                outputs = conform_outputs(analyzer, analyzer.compute(model, cache, probe, context))
                writes.append((name, writer.submit(write, name, analyzer, outputs)))
                del outputs
        for name, result in writes:
            if result.result():  # the failed write's error, if any
                written.append(name)
            else:
                already.append(name)
    del model, cache, checkpoint
    gc.collect()
    _freeze_long_lived_objects()  # after the first collect: only long-lived objects remain
    release_freed_memory()
    if ctx.device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
    return EpochResult(
        epoch=task.epoch,
        written=tuple(written),
        already_done=tuple(already),
        seconds=time.perf_counter() - started,
        peak_rss_bytes=peak_rss_bytes(),
    )
