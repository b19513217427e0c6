"""An xarray backend: ``xr.open_dataset(run, engine="epochstore", group="neuron_activations")``.

Registered through the ``xarray.backends`` entry point, the convention xarray users know. It
returns the same lazily stacked dataset as :meth:`ArtifactLoader.load_epochs` (xarray's own
``chunks=`` argument then decides about dask).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import xarray as xr
from xarray.backends import BackendEntrypoint

from epochstore.run import ARTIFACTS_DIR

__all__ = ["EpochstoreBackendEntrypoint"]


class EpochstoreBackendEntrypoint(BackendEntrypoint):
    """Open one analyzer of an epochstore run as a dataset stacked over epochs.

    Parameters of ``open_dataset``
    ------------------------------
    filename_or_obj
        The run directory (or URL).
    group
        The analyzer's name (required).
    epochs
        Which epochs to stack (default: all committed).
    epoch
        Open a single epoch instead (no ``epoch`` dimension).
    path
        The artifact root below the run (default ``"artifacts"``).
    storage_options
        fsspec options for URLs.
    """

    description = "Open an epochstore analyzer (per-epoch Zarr v3 nodes) stacked over epochs"
    url = "https://github.com/epochstore/epochstore"
    open_dataset_parameters: ClassVar[tuple[str, ...]] = (
        "filename_or_obj",
        "drop_variables",
        "group",
        "epochs",
        "epoch",
        "path",
        "storage_options",
    )

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike[str],
        *,
        drop_variables: str | Iterable[str] | None = None,
        group: str | None = None,
        epochs: Sequence[int] | None = None,
        epoch: int | None = None,
        path: str = ARTIFACTS_DIR,
        storage_options: dict[str, Any] | None = None,
    ) -> xr.Dataset:
        from epochstore.store.reader import ArtifactLoader

        if group is None:
            raise ValueError(
                "engine='epochstore' needs group=<analyzer name>, e.g. "
                "xr.open_dataset(run, engine='epochstore', group='neuron_activations')"
            )
        loader = ArtifactLoader(filename_or_obj, path=path, storage_options=storage_options)
        if epoch is not None:
            ds = loader.load_epoch(group, epoch)
        else:
            ds = loader.load_epochs(group, epochs, chunks=None)
        if drop_variables is not None:
            names = [drop_variables] if isinstance(drop_variables, str) else list(drop_variables)
            ds = ds.drop_vars(names, errors="ignore")
        return ds

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        try:
            root = Path(os.fspath(filename_or_obj), ARTIFACTS_DIR, "zarr.json")
        except TypeError:
            return False
        return root.is_file() and b"epochstore_format" in root.read_bytes()
