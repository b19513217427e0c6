"""Out of space and I/O errors mid-write: a clear error, nothing partial, existing epochs intact."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zarr

from epochstore import ArtifactLoader, ArtifactStore, StoreWriteError
from epochstore.testing.faults import FailingStore

SHAPE = (64, 32, 32)  # 256 KiB of float32 per epoch


def _data(epoch: int) -> np.ndarray:
    # Random data: incompressible, so the bytes on disk are predictable.
    return np.random.default_rng(epoch).standard_normal(SHAPE).astype(np.float32)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB tmpfs (needs root, as on the project's machines and CI)."""
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _assert_intact(loader: ArtifactLoader, epochs: list[int]) -> None:
    assert loader.get_epochs("acts") == epochs
    for epoch in epochs:
        np.testing.assert_array_equal(loader.load_epoch("acts", epoch)["x"].values, _data(epoch))


def test_disk_full_on_a_real_filesystem(small_fs: Path) -> None:
    store = ArtifactStore(small_fs)
    written: list[int] = []

    def fill() -> None:
        for epoch in range(10):
            store.write_epoch("acts", epoch, {"x": _data(epoch)})
            written.append(epoch)

    with pytest.raises(StoreWriteError, match=r"acts/epoch_\d{5}.*No partial epoch") as info:
        fill()
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.__cause__.errno == errno.ENOSPC
    assert 0 < len(written) < 10
    _assert_intact(ArtifactLoader(small_fs), written)
    assert not list(small_fs.rglob(".tmp-*"))
    # Freeing space makes writing work again.
    store.delete_epoch("acts", written[0])
    store.write_epoch("acts", 99, {"x": _data(99)})
    _assert_intact(ArtifactLoader(small_fs), [*written[1:], 99])


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
@pytest.mark.parametrize("budget_fraction", [0.1, 0.5, 0.95])
def test_write_failures_on_a_store_without_rename(code: int, budget_fraction: float) -> None:
    memory = zarr.storage.MemoryStore()
    ArtifactStore(memory).write_epoch("acts", 0, {"x": _data(0)})
    used = sum(len(v) for v in memory._store_dict.values())
    failing = FailingStore(memory, budget=int(budget_fraction * used), code=code)
    with pytest.raises(StoreWriteError, match="acts/epoch_00001"):
        ArtifactStore(failing).write_epoch("acts", 1, {"x": _data(1)})
    assert failing.failures == 1
    _assert_intact(ArtifactLoader(memory), [0])
    # No key of the failed epoch is left behind.
    assert not [k for k in memory._store_dict if "epoch_00001" in k]


@pytest.mark.parametrize("budget_fraction", [0.1, 0.5, 0.95])
def test_a_failed_overwrite_without_rename_keeps_the_old_epoch(budget_fraction: float) -> None:
    """An overwrite that fails part way (disk full on the object store's side) loses nothing."""
    memory = zarr.storage.MemoryStore()
    ArtifactStore(memory).write_epoch("acts", 0, {"x": _data(0)})
    before = dict(memory._store_dict)
    epoch_bytes = sum(len(v) for k, v in before.items() if "epoch_00000" in k)
    failing = FailingStore(memory, budget=int(budget_fraction * epoch_bytes), code=errno.ENOSPC)
    with pytest.raises(StoreWriteError, match="acts/epoch_00000"):
        ArtifactStore(failing).write_epoch("acts", 0, {"x": _data(7)}, overwrite=True)
    assert failing.failures == 1
    _assert_intact(ArtifactLoader(memory), [0])  # the old values, readable throughout
    # Nothing of the failed generation is left, and the old epoch's keys are untouched.
    assert not [k for k in memory._store_dict if "epoch_00000.g" in k]
    assert {k: v for k, v in memory._store_dict.items() if "epoch_00000" in k} == {
        k: v for k, v in before.items() if "epoch_00000" in k
    }
