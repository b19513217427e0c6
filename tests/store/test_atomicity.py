"""Atomic epochs: a writer killed at any moment, or read while it runs, never shows a partial epoch.

The default run does a modest number of seeded trials; ``-m soak`` runs many more.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from epochstore import ArtifactLoader, ArtifactStore, EpochChangedError

SCRIPT = Path(__file__).with_name("writer_process.py")
sys.path.insert(0, str(SCRIPT.parent))
from writer_process import expected  # noqa: E402


def _start(run: Path, mode: str, n: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(run), mode, str(n)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _check_every_listed_epoch(run: Path) -> list[int]:
    loader = ArtifactLoader(run)
    if "acts" not in loader.get_available_analyzers():
        return []
    epochs = loader.get_epochs("acts")
    for epoch in epochs:
        ds = loader.load_epoch("acts", epoch).load()
        np.testing.assert_array_equal(ds["activations"].values, expected(epoch))
        assert int(ds["seed"]) == epoch
    return epochs


def _kill_trials(tmp_path: Path, trials: int, seed: int) -> None:
    rng = random.Random(seed)
    for trial in range(trials):
        run = tmp_path / f"trial{trial}"
        run.mkdir()
        n = 12
        proc = _start(run, "epochs", n)
        time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _check_every_listed_epoch(run)
        ArtifactStore(run).cleanup(stale_after=0)
        leftovers = [*run.rglob(".tmp-*"), *run.rglob("*.partial")]
        assert leftovers == []
        # Writing again completes the set.
        proc = _start(run, "epochs", n)
        assert proc.wait(timeout=120) == 0
        assert _check_every_listed_epoch(run) == list(range(n))


def test_sigkill_at_random_moments_never_leaves_a_partial_epoch(tmp_path: Path) -> None:
    _kill_trials(tmp_path, trials=8, seed=1)


@pytest.mark.soak
def test_sigkill_soak(tmp_path: Path) -> None:
    _kill_trials(tmp_path, trials=200, seed=2)


def test_reader_polling_during_writes_sees_only_whole_epochs(tmp_path: Path) -> None:
    proc = _start(tmp_path, "epochs", 30)
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        seen.update(_check_every_listed_epoch(tmp_path))
    assert proc.wait(timeout=120) == 0
    seen.update(_check_every_listed_epoch(tmp_path))
    assert seen == set(range(30))


def test_reader_never_sees_a_mix_of_two_overwrites(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    store.write_epoch(
        "acts", 0, {"activations": np.zeros((32, 64, 64), np.float32), "seed": np.int64(0)},
        dims={"activations": ("neuron", "a", "b")}, chunks={"activations": (4, 64, 64)},
    )
    proc = _start(tmp_path, "overwrite", 40)
    loader = ArtifactLoader(tmp_path)
    reads = retries = 0
    while proc.poll() is None:
        try:
            ds = loader.load_epoch("acts", 0).load()
        except EpochChangedError:
            retries += 1
            continue  # overwritten between opening and reading: the reader is told, retries
        values = ds["activations"].values
        assert np.unique(values).size == 1, "an overwrite was seen half-applied"
        assert int(ds["seed"]) == int(values.flat[0]), "fields of two writes were mixed"
        reads += 1
    assert proc.wait(timeout=120) == 0
    assert reads > 0
    names = {p.name for p in (tmp_path / "artifacts" / "acts").iterdir()}
    assert names == {"zarr.json", "epoch_00000"}


def test_cleanup_removes_zarrs_partial_metadata_at_the_run_root(tmp_path: Path) -> None:
    # zarr's LocalStore writes "zarr.json" through "zarr.<hex>.partial" (Path.with_suffix); a
    # writer killed in between leaves that file next to the artifacts directory.
    store = ArtifactStore(tmp_path)
    store.write_epoch("acts", 0, {"x": np.zeros(3, np.float32)})
    leftover = tmp_path / "zarr.1f81d3f8081848f49702841d3b7c4236.partial"
    leftover.write_text("{")
    assert leftover.name in store.cleanup(stale_after=0)
    assert not leftover.exists()
    assert ArtifactLoader(tmp_path).get_epochs("acts") == [0]


def test_cleanup_keeps_a_live_writers_leftovers_and_warns_on_the_old_name(tmp_path: Path) -> None:
    # A fresh temporary node may belong to a writer still running: the default age
    # (epochstore.location.STALE_AFTER) keeps it; older_than= still works, with a warning.
    store = ArtifactStore(tmp_path)
    store.write_epoch("acts", 0, {"x": np.zeros(3, np.float32)})
    leftover = tmp_path / "zarr.1f81d3f8081848f49702841d3b7c4236.partial"
    leftover.write_text("{")
    assert store.cleanup() == []
    assert leftover.exists()
    with pytest.warns(DeprecationWarning, match="stale_after"):
        assert leftover.name in store.cleanup(older_than=0)
    assert not leftover.exists()


CREATE = (
    "import sys, time\n"
    "from epochstore import ArtifactStore\n"
    "store = ArtifactStore(sys.argv[1])\n"
    "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
    "store.create_analyzer(sys.argv[3], version='1')\n"
)


def test_processes_creating_one_store_at_once_all_succeed(tmp_path: Path) -> None:
    """The store's root group is created exclusively: the losers of the race read it.

    (zarr's ``open_group(mode="a")`` checks, then creates, and raised ``ContainsGroupError`` in
    a concurrent analyzer that lost that race.)
    """
    for round_ in range(3):
        root = tmp_path / f"round{round_}"
        start = time.time() + 3.0  # every process imported and waiting by then
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", CREATE, str(root), str(start), f"a{i % 2}"],
                stderr=subprocess.PIPE, text=True,
            )
            for i in range(8)
        ]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 8, "\n".join(errors)
        assert ArtifactStore(root).get_available_analyzers() == ["a0", "a1"]
