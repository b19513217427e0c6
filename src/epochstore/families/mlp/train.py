"""Full-batch AdamW training of the modular-addition MLP, checkpointed with CheckpointManager."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Final

import torch
from torch import nn

from epochstore.errors import EpochstoreError
from epochstore.families.mlp.config import MLPConfig
from epochstore.families.mlp.data import GridData, make_data
from epochstore.families.mlp.model import ModAddMLP, build_model
from epochstore.location import join
from epochstore.run import CHECKPOINTS_DIR, VARIANT_FILE, Variant, read_variant, write_variant

__all__ = ["FAMILY_NAME", "evaluate", "train_run"]

FAMILY_NAME: Final = "modadd_mlp"

ProgressCallback = Callable[[int, Mapping[str, float]], None]


def evaluate(model: ModAddMLP, data: GridData) -> dict[str, float]:
    """Train/test loss and accuracy of ``model`` on the grid (no gradients)."""
    with torch.no_grad():
        logits = model(data.inputs)
    metrics = {}
    for split, rows in (("train", data.train_indices), ("test", data.test_indices)):
        part, labels = logits[rows], data.labels[rows]
        metrics[f"{split}_loss"] = float(nn.functional.cross_entropy(part, labels))
        metrics[f"{split}_accuracy"] = float((part.argmax(dim=1) == labels).float().mean())
    return metrics


def _check_variant(run: str, config: MLPConfig) -> None:
    try:
        existing = read_variant(run)
    except FileNotFoundError:
        return
    if existing.family != FAMILY_NAME or MLPConfig.from_dict(existing.params) != config:
        raise EpochstoreError(
            f"{join(run, VARIANT_FILE)} describes a different run (family {existing.family!r}, "
            f"params {dict(existing.params)}); train into a new directory to change the config"
        )


def train_run(
    run_dir: str | os.PathLike[str],
    config: MLPConfig | Mapping[str, Any],
    *,
    progress: ProgressCallback | None = None,
    device: str = "cpu",
    threads: int | None = 1,
) -> list[int]:
    """Train one run into ``run_dir``, resuming from its latest checkpoint.

    Saves ``config.schedule``'s epochs with the metrics ``train_loss``, ``test_loss``,
    ``train_accuracy`` and ``test_accuracy``.

    Parameters
    ----------
    run_dir
        Local run directory (created if missing).
    config
        An :class:`MLPConfig` or its ``to_dict()`` form.
    progress
        ``progress(epoch, metrics)`` after each saved checkpoint.
    device
        Torch device.
    threads
        Torch CPU threads while training (restored after). One by default: the matrices are
        too small to gain from more, and threads that wait for a busy core cost far more than
        they give. ``None`` keeps torch's setting.

    Returns
    -------
    list of int
        The epochs this call saved.

    Raises
    ------
    EpochstoreError
        If ``run_dir`` holds a run of another family or configuration.
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _train(os.fspath(run_dir), MLPConfig.from_dict(config), progress, device)
    finally:
        torch.set_num_threads(previous)


def _train(
    run: str, cfg: MLPConfig, progress: ProgressCallback | None, device: str
) -> list[int]:
    from epochstore.checkpoints import CheckpointManager

    _check_variant(run, cfg)
    write_variant(run, Variant(family=FAMILY_NAME, params=cfg.to_dict()))
    manager = CheckpointManager(checkpoint_dir=join(run, CHECKPOINTS_DIR), max_checkpoints=None)
    model = build_model(cfg, device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(cfg.beta1, cfg.beta2)
    )
    data = make_data(cfg, device)
    inputs, labels = data.inputs[data.train_indices], data.labels[data.train_indices]
    saved = set(manager.epochs())
    start = int(manager.load_into(model, optimizer=optimizer)["epoch"]) if saved else 0
    schedule = set(cfg.schedule)
    written: list[int] = []
    model.train()
    for epoch in range(start, cfg.num_epochs):
        if epoch in schedule and epoch not in saved:
            metrics = evaluate(model, data)
            manager.save(model=model, optimizer=optimizer, epoch=epoch, metrics=metrics,
                         config=cfg.to_dict())
            written.append(epoch)
            if progress is not None:
                progress(epoch, metrics)
        if epoch == cfg.num_epochs - 1:
            break
        loss = nn.functional.cross_entropy(model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        optimizer.step()
    return written
