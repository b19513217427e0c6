"""Helpers of the many-variants tests: compare runs bit for bit."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


def checkpoint_state(run: str | os.PathLike[str]) -> dict[int, dict[str, Any]]:
    """Every checkpoint's model tensors (as numpy) and metrics, by epoch."""
    from epochstore.checkpoints import CheckpointManager

    manager = CheckpointManager(checkpoint_dir=Path(run, "checkpoints"), read_only=True)
    state = {}
    for record in manager.records():
        loaded = manager.load(record.epoch, include_optimizer=True)
        tensors = {f"model.{k}": v.numpy() for k, v in loaded["model"].items()}
        state[record.epoch] = {"tensors": tensors, "metrics": dict(record.metrics)}
    return state


def artifact_state(run: str | os.PathLike[str], **options: Any) -> dict[str, Any]:
    """Every analyzer's version, params and stored arrays, by (analyzer, epoch, field)."""
    from epochstore import ArtifactLoader

    loader = ArtifactLoader(run, **options)
    state: dict[str, Any] = {}
    for name in loader.get_available_analyzers():
        manifest = loader.manifest(name)
        state[name] = {"version": manifest.version, "params": dict(manifest.params),
                       "superseded": manifest.superseded, "epochs": manifest.epochs}
        for epoch in manifest.epochs:
            for field, array in loader.load_epoch(name, epoch).load().items():
                state[f"{name}/{epoch}/{field}"] = array.values
    return state


def assert_bitwise_equal(a: Any, b: Any, where: str = "") -> None:
    """Assert two nested states are equal, arrays bit for bit (NaN equal to NaN)."""
    if isinstance(a, dict):
        assert isinstance(b, dict), where
        assert a.keys() == b.keys(), where
        for key in a:
            assert_bitwise_equal(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, where
        assert a.shape == b.shape, where
        assert a.tobytes() == b.tobytes(), f"{where} differs"
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float), where
        assert np.isnan(b), where
    else:
        assert a == b, where
