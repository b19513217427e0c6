"""Cheap data sources for cross-epoch figures that need no artifact: checkpoint metrics."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from epochstore.checkpoints import CheckpointManager
from epochstore.location import join
from epochstore.run import CHECKPOINTS_DIR

__all__ = ["checkpoint_metrics"]


def checkpoint_metrics(
    run: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None
) -> xr.Dataset | None:
    """Return the metrics recorded with each checkpoint, stacked along ``epoch``.

    Reads the checkpoint manifest only (one small JSON file): no checkpoint, no artifact.
    Useful for loss curves of a run that is not analysed yet.

    Parameters
    ----------
    run
        The run directory (or URL).
    storage_options
        fsspec options for a URL.

    Returns
    -------
    xarray.Dataset or None
        One float variable per metric (NaN where a checkpoint lacks it), coordinate
        ``epoch``; ``None`` when the run has no committed checkpoint with metrics.
    """
    try:
        manager = CheckpointManager(join(run, CHECKPOINTS_DIR), read_only=True,
                                    storage_options=storage_options)
        records = manager.records()
    except FileNotFoundError:
        return None
    records = tuple(r for r in records if r.metrics)
    if not records:
        return None
    names = sorted({name for r in records for name in r.metrics})
    epochs = np.asarray([r.epoch for r in records], dtype=np.int64)
    variables = {
        name: ("epoch", np.asarray([r.metrics.get(name, np.nan) for r in records], np.float64))
        for name in names
    }
    return xr.Dataset(variables, coords={"epoch": epochs}, attrs={"source": "checkpoints"})
