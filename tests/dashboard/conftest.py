"""Runs under a dashboard root, and a service whose loaders count every read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from zarr.storage import LocalStore

from epochstore import ArtifactLoader
from epochstore.dashboard.service import DashboardService
from epochstore.store.instrumented import CountingStore
from epochstore.testing.synthetic_modadd import write_synthetic_run

P, D_MLP = 11, 24
EPOCHS_A = (0, 100, 200, 300, 400)
EPOCHS_B = (0, 150, 300, 450)


def write_root(root: Path) -> Path:
    """``root/modadd/a`` and ``root/modadd/b``: two variants with different schedules."""
    # 4-neuron chunks: a heatmap must read 1 of the 6 chunks of an epoch's activations.
    chunks = {"neuron_activations": {"activations": (4, P, P)}}
    write_synthetic_run(root / "modadd" / "a", EPOCHS_A, p=P, d_mlp=D_MLP,
                        key_frequencies=(2, 5), chunks=chunks)
    write_synthetic_run(root / "modadd" / "b", EPOCHS_B, p=P, d_mlp=D_MLP,
                        key_frequencies=(3,), chunks=chunks, seed=1)
    return root


@pytest.fixture(scope="session")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only root shared by the tests that do not change runs."""
    return write_root(tmp_path_factory.mktemp("dash") / "runs")


class Counting:
    """A :class:`DashboardService` whose loaders read through :class:`CountingStore` s."""

    def __init__(self, root: Path, **kwargs: int) -> None:
        self.stores: dict[str, CountingStore] = {}
        self.service = DashboardService(root, loader_factory=self._loader, **kwargs)

    def _loader(self, run: str) -> ArtifactLoader:
        store = CountingStore(LocalStore(run, read_only=True))
        self.stores[run] = store
        return ArtifactLoader(store)

    def chunk_keys(self) -> list[str]:
        return [key for store in self.stores.values() for key in store.chunk_reads]

    def bytes_read(self) -> int:
        return sum(store.bytes_read for store in self.stores.values())

    def reset(self) -> None:
        for store in self.stores.values():
            store.reset()


@pytest.fixture
def counting() -> Callable[..., Counting]:
    return Counting


def write_sweep(root: Path, *, analyse: bool = True) -> list[str]:
    """A toy sweep under ``root``: lr x seed (4 variants, 3 epochs), trained (and analysed)."""
    from epochstore import AnalysisPipeline, sweep
    from epochstore.testing.toy import ToyFamily

    report = sweep(root, ToyFamily(), {"lr": [0.05, 0.2], "seed": [1, 2]},
                   overrides={"epochs": [0, 2, 4]}, threads=1, progress=False)
    for run in report.runs if analyse else ():
        AnalysisPipeline(run).run(progress=False)
    return list(report.runs)


@pytest.fixture(scope="session")
def sweep_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only toy sweep shared by the tests that do not change it."""
    root = tmp_path_factory.mktemp("sweep") / "runs"
    write_sweep(root)
    return root
