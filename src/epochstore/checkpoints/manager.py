"""``CheckpointManager``: save, retain, load, verify and promote training checkpoints.

Save = atomic file, then atomic ``manifest.json`` (the commit), then retention; see
"Crash-safety protocol" in ``docs/checkpoints.md``.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch

from epochstore.checkpoints.fileformat import read_header, write_safetensors
from epochstore.checkpoints.layout import (
    Checkpoint,
    MapLocation,
    foreign_file,
    load_verified,
    pack,
)
from epochstore.checkpoints.manifest import (
    MANIFEST_NAME,
    BestState,
    CheckpointRecord,
    Manifest,
    Mode,
)
from epochstore.checkpoints.retention import (
    AnyOf,
    KeepAll,
    KeepBest,
    KeepEpochs,
    KeepEvery,
    KeepLast,
    RetentionPolicy,
    best_record,
    check_mode,
    check_positive,
    rank_records,
    select_for_deletion,
)
from epochstore.checkpoints.state import (
    HasStateDict,
    capture_rng_state,
    normalise_metrics,
    state_dict_of,
)
from epochstore.checkpoints.verification import VerificationReport, verify
from epochstore.errors import (
    CheckpointFormatError,
    CheckpointNotFoundError,
    CorruptCheckpointError,
    EpochExistsError,
    EpochstoreWarning,
    PromotionError,
    ReadOnlyError,
)
from epochstore.location import STALE_AFTER, open_filesystem
from epochstore.naming import (
    checkpoint_name,
    describe_epochs,
    parse_checkpoint_name,
    validate_epoch,
)
from epochstore.provenance import collect_metadata
from epochstore.registry import Promotions, Registry

if TYPE_CHECKING:
    from collections.abc import Sequence


__all__ = ["CheckpointManager"]

class CheckpointManager(Promotions):
    """Save and load training checkpoints as safetensors files, safely.

    Each checkpoint is ``checkpoint_epoch_NNNNN.safetensors`` in ``checkpoint_dir``, holding the
    model, optimizer, optional scheduler and RNG state, metrics, config and provenance metadata;
    nothing is pickled. ``manifest.json`` is the commit record. One writing manager per
    directory at a time; any number of readers.

    Parameters
    ----------
    checkpoint_dir
        A local directory or an fsspec URL (``s3://bucket/run/checkpoints``).
    max_checkpoints
        Keep at most this many newest checkpoints, plus the kept best, every ``keep_every``-th
        and promoted ones. ``None`` (the default) keeps every checkpoint.
    keep_best
        Never delete the best checkpoint by ``metric_for_best`` / ``mode``.
    metric_for_best
        The metric that ranks checkpoints; NaN and inf values rank worst.
    mode
        ``"min"`` if lower values of the metric are better, ``"max"`` if higher are.
    keep_every
        Also keep every checkpoint whose epoch is a multiple of this.
    registry_dir
        Where ``validated/`` and ``production/`` live; by default the parent of
        ``checkpoint_dir`` (the run directory).
    read_only
        Open for reading only: no directory creation, no cleanup, and writes raise
        :class:`~epochstore.errors.ReadOnlyError`.
    storage_options
        Options for the fsspec filesystem of a URL.
    stale_after
        Seconds after its last change when a temporary file of an interrupted write is taken
        for a dead writer's and removed by a writable manager opening the directory (default
        :data:`epochstore.location.STALE_AFTER`, one hour).

    Examples
    --------
    The "Quick start" of ``docs/checkpoints.md``.
    """

    def __init__(
        self,
        checkpoint_dir: str | os.PathLike[str],
        max_checkpoints: int | None = None,
        keep_best: bool = True,
        metric_for_best: str = "loss",
        mode: Mode = "min",
        keep_every: int | None = None,
        *,
        registry_dir: str | os.PathLike[str] | None = None,
        read_only: bool = False,
        storage_options: Mapping[str, Any] | None = None,
        stale_after: float = STALE_AFTER,
    ) -> None:
        if not isinstance(metric_for_best, str) or not metric_for_best:
            raise ValueError(f"metric_for_best must be a non-empty str, got {metric_for_best!r}")
        if not isinstance(keep_best, bool):
            raise TypeError(f"keep_best must be a bool, got {keep_best!r}")
        self.max_checkpoints = (
            None if max_checkpoints is None else check_positive(max_checkpoints, "max_checkpoints")
        )
        self.keep_every = None if keep_every is None else check_positive(keep_every, "keep_every")
        self.keep_best = keep_best
        self.metric_for_best = metric_for_best
        self.mode: Mode = check_mode(mode)
        self.read_only = bool(read_only)
        self.stale_after = float(stale_after)
        self._fs, self._dir = open_filesystem(checkpoint_dir, storage_options)
        if registry_dir is None:
            self._registry_fs, self._registry_root = self._fs, self._fs.parent(self._dir)
        else:
            self._registry_fs, self._registry_root = open_filesystem(registry_dir, storage_options)
        if not self.read_only:
            self._fs.makedirs(self._dir)
            self._recover()

    def __repr__(self) -> str:
        return (
            f"CheckpointManager({self._dir!r}, max_checkpoints={self.max_checkpoints}, "
            f"keep_best={self.keep_best}, metric_for_best={self.metric_for_best!r}, "
            f"mode={self.mode!r}, keep_every={self.keep_every}, read_only={self.read_only})"
        )

    # --- paths, manifest, registry ------------------------------------------------------------

    @property
    def checkpoint_dir(self) -> str:
        """The checkpoint directory (a local absolute path, or the path within the fsspec URL)."""
        return self._dir

    @property
    def retention(self) -> RetentionPolicy:
        """The retention policy of this manager (promoted checkpoints are always kept too)."""
        if self.max_checkpoints is None:
            return KeepAll()
        policies: list[RetentionPolicy] = [KeepLast(self.max_checkpoints)]
        if self.keep_best:
            policies.append(KeepBest(self.metric_for_best, self.mode))
        if self.keep_every is not None:
            policies.append(KeepEvery(self.keep_every))
        return AnyOf(tuple(policies))

    def path(self, epoch: int) -> str:
        """Return the path of the checkpoint file of ``epoch`` (committed or not)."""
        return self._fs.join(self._dir, checkpoint_name(epoch))

    @property
    def _manifest_path(self) -> str:
        return self._fs.join(self._dir, MANIFEST_NAME)

    def _read_manifest(self) -> Manifest | None:
        path = self._manifest_path
        try:
            data = self._fs.read_bytes(path)
        except FileNotFoundError:
            return None
        return Manifest.from_bytes(data, path)

    def _manifest(self) -> Manifest:
        """Return the current manifest (an empty one for a read-only view of no manifest)."""
        return self._read_manifest() or Manifest(store_id="")

    def _write_manifest(self, manifest: Manifest) -> None:
        """Write ``manifest`` with its best record recomputed and deleted files unretired."""
        files = {record.file for record in manifest.checkpoints}
        retired = tuple(
            name
            for name in manifest.retired
            if name not in files and self._fs.exists(self._fs.join(self._dir, name))
        )
        best = best_record(manifest.checkpoints, self.metric_for_best, self.mode)
        best_state = None if best is None else BestState(
            self.metric_for_best, self.mode, best.epoch, best.metrics[self.metric_for_best]
        )
        manifest = replace(manifest, retired=retired, best=best_state)
        self._fs.write_bytes(self._manifest_path, manifest.to_bytes())

    def _registry(self, manifest: Manifest) -> Registry:
        return Registry(self._registry_fs, self._registry_root, manifest.store_id)

    def _check_writable(self, action: str) -> None:
        if self.read_only:
            raise ReadOnlyError(
                f"cannot {action}: this CheckpointManager of {self._dir} was opened with "
                f"read_only=True"
            )

    # --- opening: recovery of interrupted writes ----------------------------------------------

    def _recover(self) -> None:
        manifest = self._read_manifest()
        if manifest is None:
            manifest = Manifest.new()
            self._fs.write_bytes(self._manifest_path, manifest.to_bytes())
        self._fs.remove_stale(self._dir, _is_checkpoint_target, self.stale_after)
        self._registry(manifest).remove_stale(self.stale_after)
        if manifest.retired:
            files = {record.file for record in manifest.checkpoints}
            for name in manifest.retired:
                if name not in files and parse_checkpoint_name(name) is not None:
                    self._fs.remove(self._fs.join(self._dir, name))
            self._write_manifest(manifest)

    # --- saving -------------------------------------------------------------------------------

    def save(
        self,
        model: torch.nn.Module | Mapping[str, torch.Tensor],
        optimizer: torch.optim.Optimizer | Mapping[str, Any] | None = None,
        *,
        epoch: int,
        metrics: Mapping[str, float] | None = None,
        config: Any = None,
        scheduler: HasStateDict | Mapping[str, Any] | None = None,
        rng_state: bool = False,
        overwrite: bool = False,
    ) -> CheckpointRecord:
        """Save and commit the checkpoint of ``epoch``, then apply retention.

        Parameters
        ----------
        model
            The model, or its state dict.
        optimizer
            The optimizer, or its state dict. Its tensors are stored as
            ``optimizer.state.<i>.<name>``; ``param_groups`` and Python scalars as JSON.
        epoch
            The epoch, 0..99999.
        metrics
            Metric name -> number (NaN and inf allowed; they rank worst).
        config
            JSON-able training configuration (dicts, lists, tuples, numbers, strings).
        scheduler
            An LR scheduler (anything with ``state_dict()``), or its state dict.
        rng_state
            Also store the Python, NumPy and torch RNG states (restore them with
            :func:`~epochstore.checkpoints.restore_rng_state`).
        overwrite
            Replace an existing committed checkpoint of ``epoch``.

        Returns
        -------
        CheckpointRecord
            The committed record (file size, sha256, metrics, metadata).

        Raises
        ------
        EpochExistsError
            If ``epoch`` is committed and ``overwrite`` is false, or a file not written by
            this manager has the checkpoint's name.
        PromotionError
            If ``overwrite`` would replace a promoted checkpoint.
        TypeError
            If a state holds something that cannot be stored without pickle.
        ReadOnlyError
            If the manager is read-only.
        """
        self._check_writable("save")
        epoch = validate_epoch(epoch)
        metric_values = normalise_metrics(metrics)
        metadata = collect_metadata()
        tensors, header = pack(
            model_state=state_dict_of(model, "model"),
            optimizer_state=None if optimizer is None else state_dict_of(optimizer, "optimizer"),
            scheduler_state=None if scheduler is None else state_dict_of(scheduler, "scheduler"),
            rng_state=capture_rng_state() if rng_state else None,
            epoch=epoch,
            metrics=metric_values,
            config=config,
            metadata=metadata,
            store_id=(manifest := self._read_manifest() or Manifest.new()).store_id,
        )
        path = self.path(epoch)
        if manifest.get(epoch) is not None:
            if not overwrite:
                raise EpochExistsError(
                    f"epoch {epoch} already has a committed checkpoint in {self._dir}; pass "
                    f"overwrite=True to replace it"
                )
            if epoch in self._registry(manifest).promoted_epochs():
                raise PromotionError(
                    f"epoch {epoch} was promoted; its checkpoint cannot be overwritten: save "
                    f"these weights under another epoch"
                )
        elif foreign_file(self._fs, path, manifest.store_id):
            raise EpochExistsError(
                f"{path} exists but was not written by this manager (it is not in "
                f"{MANIFEST_NAME}); it is never overwritten: move it away"
            )
        with self._fs.atomic_write(path) as handle:
            digest = write_safetensors(handle, tensors, header)
        del tensors
        record = CheckpointRecord(
            epoch=epoch,
            file=checkpoint_name(epoch),
            digest=digest,
            metrics=metric_values,
            metadata=metadata,
        )
        manifest = manifest.with_record(record)
        self._write_manifest(manifest)
        self._apply_retention(manifest, epoch)
        return record

    def _apply_retention(self, manifest: Manifest, saved: int) -> None:
        if self.max_checkpoints is None:
            return
        # The epoch just saved survives its own save even when it is not among the newest
        # (an older epoch saved again); the next save's retention decides about it.
        promoted = self._registry(manifest).promoted_epochs()
        policy = AnyOf((self.retention, KeepEpochs(promoted | {saved})))
        doomed = select_for_deletion(manifest.checkpoints, policy)
        if not doomed:
            return
        self._write_manifest(manifest.without({record.epoch for record in doomed}))
        for record in doomed:
            try:
                self._fs.remove(self._fs.join(self._dir, record.file))
            except OSError as exc:
                warnings.warn(
                    f"retention could not delete {record.file} ({exc}); it stays retired in "
                    f"{MANIFEST_NAME} and is deleted when a writable manager next opens",
                    EpochstoreWarning,
                    stacklevel=3,
                )

    def delete(self, epoch: int) -> None:
        """Delete the committed checkpoint of ``epoch``.

        Raises
        ------
        CheckpointNotFoundError
            If ``epoch`` is not committed.
        PromotionError
            If the checkpoint was promoted (promoted checkpoints are never deleted).
        """
        self._check_writable("delete a checkpoint")
        epoch = validate_epoch(epoch)
        manifest = self._manifest()
        record = manifest.get(epoch)
        if record is None:
            raise CheckpointNotFoundError(
                f"no committed checkpoint of epoch {epoch} in {self._dir} to delete; committed "
                f"epochs: {describe_epochs(manifest.epochs())}"
            )
        if epoch in self._registry(manifest).promoted_epochs():
            raise PromotionError(
                f"refusing to delete the checkpoint of epoch {epoch}: it was promoted "
                f"(validated versions keep a record of their source)"
            )
        self._write_manifest(manifest.without({epoch}))
        self._fs.remove(self._fs.join(self._dir, record.file))

    # --- listing and loading ------------------------------------------------------------------

    def epochs(self) -> list[int]:
        """Return the committed epochs, sorted. Uncommitted files are ignored."""
        return self._manifest().epochs()

    def records(self) -> tuple[CheckpointRecord, ...]:
        """Return the manifest records of the committed checkpoints, sorted by epoch."""
        return self._manifest().checkpoints

    def _load_record(
        self, record: CheckpointRecord, include_optimizer: bool, map_location: MapLocation
    ) -> Checkpoint:
        return load_verified(
            self._fs,
            self._fs.join(self._dir, record.file),
            record.digest,
            record.epoch,
            include_optimizer=include_optimizer,
            map_location=map_location,
        )

    def load(
        self,
        epoch: int,
        *,
        map_location: MapLocation = "cpu",
        include_optimizer: bool = True,
    ) -> Checkpoint:
        """Load the committed checkpoint of ``epoch``, verified against the manifest.

        Parameters
        ----------
        epoch
            The epoch.
        map_location
            Device for the tensors (``"cpu"``, ``"cuda:0"``, a ``torch.device``).
        include_optimizer
            Also read the optimizer, scheduler and RNG state. With ``False`` only the header
            and the model's tensors are read (and verified); those keys are ``None``.

        Returns
        -------
        Checkpoint
            A dict with ``model``, ``optimizer``, ``scheduler``, ``rng_state``, ``epoch``,
            ``metrics``, ``config`` and ``metadata``.

        Raises
        ------
        CheckpointNotFoundError
            If ``epoch`` has no committed checkpoint.
        CheckpointFormatError
            If an uncommitted file of that name is not a safetensors file (never unpickled).
        CorruptCheckpointError
            If the file does not match its recorded size or sha256.
        """
        epoch = validate_epoch(epoch)
        manifest = self._manifest()
        record = manifest.get(epoch)
        if record is None:
            path = self.path(epoch)
            if self._fs.exists(path):
                with self._fs.open_read(path) as handle:
                    read_header(handle, self._fs.size(path), path)  # refuses non-safetensors
                raise CheckpointNotFoundError(
                    f"{path} exists but is not committed (not in {MANIFEST_NAME}: an "
                    f"interrupted save, or not written by this manager); it is not loaded"
                )
            raise CheckpointNotFoundError(
                f"no committed checkpoint of epoch {epoch} in {self._dir}; committed "
                f"epochs: {describe_epochs(manifest.epochs())}"
            )
        return self._load_record(record, include_optimizer, map_location)

    def _first_good(
        self,
        records: Sequence[CheckpointRecord],
        include_optimizer: bool,
        map_location: MapLocation,
        what: str,
    ) -> Checkpoint:
        for record in records:
            try:
                return self._load_record(record, include_optimizer, map_location)
            except CorruptCheckpointError as exc:
                warnings.warn(
                    f"skipping the checkpoint of epoch {record.epoch}: {exc}",
                    EpochstoreWarning,
                    stacklevel=3,
                )
        skipped = f" ({len(records)} failed verification)" if records else ""
        raise CheckpointNotFoundError(f"no {what} checkpoint in {self._dir}{skipped}")

    def load_latest(
        self, *, map_location: MapLocation = "cpu", include_optimizer: bool = True
    ) -> Checkpoint:
        """Load the newest committed checkpoint that verifies.

        A newer checkpoint that fails verification is skipped with an
        :class:`~epochstore.errors.EpochstoreWarning`. See :meth:`load` for the parameters.

        Raises
        ------
        CheckpointNotFoundError
            If no committed checkpoint verifies.
        """
        records = self._manifest().checkpoints[::-1]
        return self._first_good(records, include_optimizer, map_location, "committed")

    def load_best(
        self,
        metric: str | None = None,
        mode: Mode | None = None,
        *,
        map_location: MapLocation = "cpu",
        include_optimizer: bool = True,
    ) -> Checkpoint:
        """Load the checkpoint with the best finite value of ``metric`` that verifies.

        Parameters
        ----------
        metric, mode
            Default to ``metric_for_best`` and ``mode`` of the manager. NaN and inf rank
            worst and are never loaded as best; ties go to the earliest epoch.
        map_location, include_optimizer
            See :meth:`load`.

        Raises
        ------
        CheckpointNotFoundError
            If no committed checkpoint has a finite value of ``metric`` and verifies.
        """
        metric = self.metric_for_best if metric is None else metric
        mode = check_mode(self.mode if mode is None else mode)
        ranked = rank_records(self._manifest().checkpoints, metric, mode)
        return self._first_good(
            ranked, include_optimizer, map_location, f"{mode}-{metric!r} (with a finite value)"
        )

    def load_model_state(
        self, epoch: int | None = None, *, map_location: MapLocation = "cpu"
    ) -> dict[str, torch.Tensor]:
        """Return the model state dict of ``epoch`` (default: the latest), reading nothing else.

        Only the header and the model's tensors are read and verified: the cheap path for
        analysis that loads one epoch after another.
        """
        if epoch is None:
            return self.load_latest(map_location=map_location, include_optimizer=False)["model"]
        return self.load(epoch, map_location=map_location, include_optimizer=False)["model"]

    def load_into(
        self,
        model: torch.nn.Module,
        epoch: int | None = None,
        *,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        map_location: MapLocation = None,
        strict: bool = True,
    ) -> Checkpoint:
        """Load a checkpoint into ``model`` (and ``optimizer`` / ``scheduler`` if given).

        Parameters
        ----------
        model
            The module to load into.
        epoch
            The epoch, or ``None`` for the latest that verifies.
        optimizer, scheduler
            Also restore these. Without them no optimizer or scheduler bytes are read.
        map_location
            Device of the loaded tensors; by default the device of ``model``.
        strict
            Passed to ``model.load_state_dict``.

        Returns
        -------
        Checkpoint
            The loaded checkpoint.
        """
        if map_location is None:  # the model's device
            tensor = next(itertools.chain(model.parameters(), model.buffers()), None)
            map_location = "cpu" if tensor is None else tensor.device
        include = optimizer is not None or scheduler is not None
        checkpoint = (
            self.load_latest(map_location=map_location, include_optimizer=include)
            if epoch is None
            else self.load(epoch, map_location=map_location, include_optimizer=include)
        )
        model.load_state_dict(checkpoint["model"], strict=strict)
        for target, state, key in (
            (optimizer, checkpoint["optimizer"], "optimizer"),
            (scheduler, checkpoint["scheduler"], "scheduler"),
        ):
            if target is None:
                continue
            if state is None:
                raise CheckpointFormatError(
                    f"the checkpoint of epoch {checkpoint['epoch']} has no {key} state"
                )
            target.load_state_dict(state)
        return checkpoint

    # --- verification -------------------------------------------------------------------------

    def verify(self) -> VerificationReport:
        """Check every recorded file against its size and sha256.

        Covers the committed checkpoints, the validated versions and the production copy,
        and lists uncommitted files named like checkpoints. Nothing is loaded or changed.

        Returns
        -------
        VerificationReport
            ``report.ok`` is true when every recorded file verified.
        """
        manifest = self._manifest()
        return verify(self._fs, self._dir, manifest, self._registry(manifest).verify())


def _is_checkpoint_target(name: str) -> bool:
    return name == MANIFEST_NAME or parse_checkpoint_name(name) is not None
