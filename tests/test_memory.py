"""The process-memory helpers the pipeline reports with."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from epochstore._memory import peak_rss_bytes, release_freed_memory, reset_peak_rss, status_kb

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@linux_only
def test_peak_rss_is_this_process_high_water_mark() -> None:
    assert reset_peak_rss()
    before = peak_rss_bytes()
    block = np.ones(64 * 2**20, dtype=np.uint8)  # 64 MiB, touched
    after = peak_rss_bytes()
    del block
    assert after - before >= 60 * 2**20
    current = status_kb("VmRSS")
    assert current is not None
    assert current * 1024 <= after


@linux_only
def test_release_freed_memory_returns_heap_pages() -> None:
    # Many small allocations land on the heap (below the mmap threshold), and glibc keeps
    # them after free; malloc_trim hands them back.
    chunks = [bytearray(4096) for _ in range(40_000)]
    del chunks
    rss_before = status_kb("VmRSS")
    released = release_freed_memory()
    rss_after = status_kb("VmRSS")
    assert rss_before is not None
    assert rss_after is not None
    assert released
    assert rss_after <= rss_before


@linux_only
def test_fixed_mmap_threshold_returns_large_blocks_on_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from epochstore._memory import fix_mmap_threshold

    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert fix_mmap_threshold()
    # Free a large block, then allocate one a little smaller: with glibc's dynamic threshold
    # the second would come from the heap and stay resident after free; fixed, it is unmapped.
    big = np.ones(40 * 2**20, dtype=np.uint8)
    del big
    smaller = np.ones(30 * 2**20, dtype=np.uint8)
    before = status_kb("VmRSS")
    del smaller
    after = status_kb("VmRSS")
    assert before is not None
    assert after is not None
    assert before - after >= 25 * 1024  # kB: the 30 MiB went back to the kernel at once


def test_the_user_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    from epochstore._memory import fix_mmap_threshold

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert not fix_mmap_threshold()
