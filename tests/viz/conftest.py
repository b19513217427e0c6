"""A small synthetic modadd run shared by the renderer tests (written once per session)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dask
import pytest

from epochstore.testing.synthetic_modadd import write_synthetic_run

P, D_MLP, EPOCHS, KEYS = 11, 20, (0, 100, 200, 300), (2, 4)


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with every modadd analyzer at 4 epochs; activations chunked 4 neurons at a time."""
    return write_synthetic_run(
        tmp_path_factory.mktemp("viz") / "run", EPOCHS, p=P, d_mlp=D_MLP, key_frequencies=KEYS,
        chunks={"neuron_activations": {"activations": (4, P, P)}},
    )


@pytest.fixture(autouse=True)
def _dask_in_this_process() -> Iterator[None]:
    """Compute dask-backed datasets here: the read counts are taken in this process.

    (A ``distributed.Client`` still alive from another test module would otherwise run them
    on its workers, where the counting store's counts are lost.)
    """
    with dask.config.set(scheduler="synchronous"):
        yield
