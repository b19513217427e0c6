"""Full-batch training of the Modulo Addition model, checkpointed on a schedule, resumable.

Epoch convention: the checkpoint of epoch ``e`` holds the parameters (and optimiser state)
after ``e`` full-batch AdamW steps, so epoch 0 is the initialisation and the final epoch
``num_epochs - 1`` follows ``num_epochs - 1`` steps. Its metrics are computed on exactly those
parameters. Resuming from the latest checkpoint therefore continues the same trajectory: the
resumed run and an uninterrupted one take the same steps (CPU kernels are not bit-reproducible
across thread counts, so compare them with a tolerance).

The loss is the cross-entropy at the ``=`` position, computed in float64 as in Nanda et al.
(float32 log-softmax rounding disturbs training once the loss is tiny).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from epochstore.errors import EpochExistsError, EpochstoreError
from epochstore.families.modadd.config import ModAddConfig
from epochstore.families.modadd.data import ModAddData, make_data
from epochstore.families.modadd.model import ModAddTransformer, build_model
from epochstore.run import CHECKPOINTS_DIR, VARIANT_FILE, Variant, read_variant, write_variant

__all__ = [
    "FAMILY_NAME",
    "METRIC_NAMES",
    "EpochState",
    "ProgressCallback",
    "TrainResult",
    "evaluate",
    "loss_fn",
    "make_optimizer",
    "train_loop",
    "train_run",
]

FAMILY_NAME = "modadd"

#: The metrics saved with every checkpoint.
METRIC_NAMES: tuple[str, ...] = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")

#: ``progress(epoch, metrics)``: called once per epoch (see :func:`train_run`).
ProgressCallback = Callable[[int, Mapping[str, float]], None]


def loss_fn(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in float64 of ``(n, p)`` logits (or ``(n, 3, p)``: last position)."""
    if logits.ndim == 3:
        logits = logits[:, -1]
    log_probs = torch.log_softmax(logits.to(torch.float64), dim=-1)
    return -log_probs.gather(-1, labels[:, None]).mean()


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    if logits.ndim == 3:
        logits = logits[:, -1]
    return float((logits.argmax(dim=-1) == labels).to(torch.float64).mean())


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: ModAddData) -> dict[str, float]:
    """Return train/test loss and accuracy of ``model`` (one forward pass over the grid)."""
    # final_logits skips the two positions no metric reads (3x less work than forward).
    final_logits = getattr(model, "final_logits", None)
    logits = final_logits(data.inputs) if final_logits is not None else model(data.inputs)[:, -1]
    train, test = data.train_indices, data.test_indices
    return {
        "train_loss": float(loss_fn(logits[train], data.labels[train])),
        "test_loss": float(loss_fn(logits[test], data.labels[test])),
        "train_accuracy": _accuracy(logits[train], data.labels[train]),
        "test_accuracy": _accuracy(logits[test], data.labels[test]),
    }


def make_optimizer(model: torch.nn.Module, config: ModAddConfig) -> torch.optim.AdamW:
    """Return the AdamW optimiser of ``config`` over all of ``model``'s parameters."""
    return torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay, betas=config.betas
    )


@dataclass(frozen=True)
class EpochState:
    """What :func:`train_loop` reports for one epoch, before that epoch's step.

    Attributes
    ----------
    epoch
        The epoch; the model holds the parameters after ``epoch`` steps.
    train_loss, train_accuracy
        On the training set, for those parameters.
    """

    epoch: int
    train_loss: float
    train_accuracy: float


def train_loop(
    model: ModAddTransformer,
    optimizer: torch.optim.Optimizer,
    data: ModAddData,
    *,
    num_epochs: int,
    start_epoch: int = 0,
) -> Iterator[EpochState]:
    """Run full-batch training, yielding each epoch's state before taking its step.

    While the consumer holds epoch ``e`` the model has the parameters after ``e`` steps: that
    is the moment to evaluate or checkpoint. The step is taken when the consumer asks for the
    next epoch; the last epoch (``num_epochs - 1``) takes no step.

    Parameters
    ----------
    model, optimizer, data
        The model, its optimiser and the data (only the training rows are used).
    num_epochs
        Epochs ``start_epoch..num_epochs-1`` are yielded.
    start_epoch
        The epoch the model and optimiser currently represent (0 for a fresh model).

    Yields
    ------
    EpochState
    """
    inputs, labels = data.train_inputs, data.train_labels
    model.train()
    for epoch in range(start_epoch, num_epochs):
        logits = model.final_logits(inputs)
        loss = loss_fn(logits, labels)
        yield EpochState(epoch, float(loss.detach()), _accuracy(logits.detach(), labels))
        if epoch == num_epochs - 1:
            break
        optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        optimizer.step()


@dataclass
class TrainResult:
    """Summary of a :func:`train_run` call.

    Attributes
    ----------
    run_dir
        The run directory.
    start_epoch
        The epoch training started from (> 0 when resumed).
    saved_epochs
        The checkpoint epochs this call saved.
    final_metrics
        The metrics of the last checkpoint this call saved (empty if none).
    seconds
        Wall time of the call.
    """

    run_dir: str
    start_epoch: int
    saved_epochs: list[int] = field(default_factory=list)
    final_metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def _check_variant(run: Path, config: ModAddConfig) -> None:
    if not (run / VARIANT_FILE).exists():
        return
    existing = read_variant(run)
    same = existing.family == FAMILY_NAME
    if same:
        try:
            same = ModAddConfig.from_dict(existing.params) == config
        except (TypeError, ValueError):
            same = False
    if not same:
        raise EpochstoreError(
            f"{run / VARIANT_FILE} describes a different run (family {existing.family!r}, "
            f"params {dict(existing.params)}); train into a new directory to change the "
            "configuration"
        )


def train_run(
    run_dir: str | os.PathLike[str],
    config: ModAddConfig | Mapping[str, Any],
    *,
    device: str = "cpu",
    progress: ProgressCallback | None = None,
    resume: bool = True,
) -> TrainResult:
    """Train one run into ``run_dir``, saving checkpoints on ``config.schedule``.

    Writes ``<run_dir>/variant.json`` (family ``"modadd"``, the config) and saves each
    scheduled epoch through ``CheckpointManager(<run_dir>/checkpoints, max_checkpoints=None)``
    with the metrics ``train_loss``, ``test_loss``, ``train_accuracy``, ``test_accuracy``
    and the config. Threads: set ``torch.set_num_threads`` before calling if you share cores.

    Parameters
    ----------
    run_dir
        Local run directory (created if missing).
    config
        A :class:`ModAddConfig` or its ``to_dict()`` form.
    device
        Torch device to train on.
    progress
        ``progress(epoch, metrics)`` is called once per epoch with ``train_loss`` and
        ``train_accuracy``; on checkpoint epochs ``metrics`` holds all four saved metrics.
    resume
        If the run already has checkpoints, continue from the latest one that verifies (a
        finished run is left as it is; newer checkpoints that fail verification are trained
        again and replaced). With ``resume=False`` an existing run is an error.

    Returns
    -------
    TrainResult

    Raises
    ------
    EpochstoreError
        If ``run_dir`` holds a run of another family or configuration.
    EpochExistsError
        If the run has checkpoints and ``resume`` is false.
    """
    from epochstore.checkpoints import CheckpointManager

    started = time.perf_counter()
    cfg = ModAddConfig.from_dict(config)
    run = Path(run_dir)
    _check_variant(run, cfg)
    manager = CheckpointManager(
        checkpoint_dir=run / CHECKPOINTS_DIR,
        max_checkpoints=None,
        metric_for_best="test_loss",
        mode="min",
    )
    model = build_model(cfg, device)
    optimizer = make_optimizer(model, cfg)
    data = make_data(cfg, device)

    start = 0
    existing = list(manager.epochs())
    if existing:
        if not resume:
            raise EpochExistsError(
                f"{run} already has checkpoints (epochs {existing[0]}..{existing[-1]}); "
                "pass resume=True to continue it or train into a new directory"
            )
        start = int(manager.load_into(model, optimizer=optimizer)["epoch"])
    # Committed epochs after the one resumed from failed verification (load_into skipped them
    # with a warning): they are trained again and replaced.
    stale = {epoch for epoch in existing if epoch > start}
    result = TrainResult(run_dir=os.fspath(run), start_epoch=start)
    write_variant(run, Variant(family=FAMILY_NAME, params=cfg.to_dict()))

    schedule = set(cfg.schedule)
    for state_ in train_loop(model, optimizer, data, num_epochs=cfg.num_epochs, start_epoch=start):
        epoch = state_.epoch
        metrics: dict[str, float] = {
            "train_loss": state_.train_loss,
            "train_accuracy": state_.train_accuracy,
        }
        if epoch in schedule and not (existing and epoch == start):
            metrics = evaluate(model, data)
            manager.save(
                model=model,
                optimizer=optimizer,
                epoch=epoch,
                metrics=metrics,
                config=cfg.to_dict(),
                overwrite=epoch in stale,
            )
            result.saved_epochs.append(epoch)
            result.final_metrics = metrics
        if progress is not None:
            progress(epoch, metrics)
    result.seconds = time.perf_counter() - started
    return result
