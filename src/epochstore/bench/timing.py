"""Timing, peak memory and page-cache helpers for the storage benchmarks.

Everything here is plain measurement machinery, independent of any file format:

- :func:`time_calls` and :class:`Timing`: repeated wall-clock timings, summarised by their
  median and minimum (the median is the figure to quote on a shared, loaded machine);
- :func:`interleaved`: run several cases in rounds, every case once per round, so that the
  machine's load falls on all of them alike;
- :func:`reset_peak_rss` and :func:`peak_rss_growth`: the growth of the kernel's peak resident
  set (``VmHWM``) during a call, on Linux;
- :func:`evict`, :func:`resident_fraction` and :func:`drop_caches_available`: cold-cache reads,
  by dropping the files' pages from the page cache with ``posix_fadvise(POSIX_FADV_DONTNEED)``;
- :func:`memcpy_time`, :func:`page_cache_read_time` and :func:`disk_read_time`: the physical
  limits every figure is compared against.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import mmap
import os
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from epochstore._memory import reset_peak_rss, status_kb

__all__ = [
    "Timing",
    "disk_read_time",
    "drop_caches_available",
    "evict",
    "interleaved",
    "memcpy_time",
    "page_cache_read_time",
    "peak_rss_growth",
    "reset_peak_rss",
    "resident_fraction",
    "time_calls",
]

_READ_BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True)
class Timing:
    """Wall-clock samples of one measurement, in seconds.

    Attributes
    ----------
    samples
        Every timed call, in order.
    """

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        """Median of the samples (``nan`` if there are none)."""
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def min(self) -> float:
        """Smallest sample (``nan`` if there are none)."""
        return min(self.samples) if self.samples else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable summary (median, min, max, n and the samples)."""
        return {
            "median_s": self.median,
            "min_s": self.min,
            "max_s": max(self.samples) if self.samples else float("nan"),
            "n": len(self.samples),
            "samples_s": list(self.samples),
        }

    def __add__(self, other: Timing) -> Timing:
        return Timing(self.samples + other.samples)


def time_calls(
    fn: Callable[[], object],
    repeats: int,
    *,
    warmup: int = 0,
    before: Callable[[], object] | None = None,
) -> Timing:
    """Time ``repeats`` calls of ``fn``.

    Parameters
    ----------
    fn
        The call to time.
    repeats
        Number of timed calls.
    warmup
        Untimed calls first (imports, caches, thread pools).
    before
        Called, untimed, before every timed call (e.g. :func:`evict` for a cold read).

    Returns
    -------
    Timing
        One sample per timed call.
    """
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return Timing(tuple(samples))


def interleaved(
    cases: Mapping[str, Callable[[], Timing]], rounds: int
) -> dict[str, Timing]:
    """Run every case once per round, for ``rounds`` rounds, and merge each case's samples.

    Parameters
    ----------
    cases
        Name to a callable that takes one measurement (e.g. a :func:`time_calls` closure).
    rounds
        Number of rounds.

    Returns
    -------
    dict
        Name to the samples of all rounds.
    """
    merged: dict[str, Timing] = {name: Timing(()) for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            merged[name] = merged[name] + case()
    return merged


# --- peak resident set ----------------------------------------------------------------------


def peak_rss_growth(fn: Callable[[], object]) -> tuple[float, float]:
    """Call ``fn`` once; return (seconds, growth of the peak RSS in bytes).

    The growth is ``VmHWM`` after the call minus ``VmRSS`` before it, with the peak mark reset
    just before the call. Run it in a fresh process for a figure that does not depend on what
    the process did before. ``ru_maxrss`` is no substitute in a child process: Linux carries it
    over from the parent across fork/exec.

    Returns
    -------
    tuple of float
        Wall-clock seconds of the call and the peak growth in bytes (``nan`` where the peak
        cannot be reset).
    """
    ok = reset_peak_rss()
    before = status_kb("VmRSS") if ok else None
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    after = status_kb("VmHWM") if ok else None
    if before is None or after is None:
        return seconds, float("nan")
    return seconds, float((after - before) * 1024)


# --- page cache -----------------------------------------------------------------------------


def evict(paths: Iterable[Path]) -> None:
    """Drop the page-cache pages of ``paths`` (cold-cache reads) with ``POSIX_FADV_DONTNEED``.

    Dirty pages cannot be dropped, so each file is fsynced first. Directory entries and inodes
    stay cached; so does whatever the host of a virtual machine caches below the guest.
    Where ``posix_fadvise`` does not exist this does nothing.
    """
    fadvise = getattr(os, "posix_fadvise", None)
    if fadvise is None:  # pragma: no cover - not Linux
        return
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            with contextlib.suppress(OSError):
                os.fsync(fd)
            fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name, use_errno=True) if name else None


def resident_fraction(paths: Iterable[Path]) -> float:
    """Fraction of the pages of ``paths`` that are in the page cache (``mincore``).

    Used to check that :func:`evict` worked. Returns ``nan`` where ``mincore`` is not available.
    """
    libc = _libc()
    if libc is None or not hasattr(libc, "mincore"):
        return float("nan")
    page = mmap.PAGESIZE
    total = resident = 0
    for path in paths:
        size = path.stat().st_size
        if size == 0:
            continue
        with path.open("rb") as f, mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ) as m:
            pages = (size + page - 1) // page
            vec = (ctypes.c_ubyte * pages)()
            view = np.frombuffer(m, dtype=np.uint8)
            try:
                rc = libc.mincore(ctypes.c_void_p(view.ctypes.data), ctypes.c_size_t(size), vec)
            finally:
                del view
            if rc != 0:
                return float("nan")
            total += pages
            resident += sum(v & 1 for v in vec)
    return resident / total if total else 0.0


def drop_caches_available() -> bool:
    """Whether this process may write ``/proc/sys/vm/drop_caches`` (root on Linux)."""
    return os.access("/proc/sys/vm/drop_caches", os.W_OK)


# --- physical limits ------------------------------------------------------------------------


def memcpy_time(nbytes: int, repeats: int) -> Timing:
    """Time copying ``nbytes`` between two preallocated buffers (``np.copyto``)."""
    src = np.ones(nbytes, dtype=np.uint8)
    dst = np.empty_like(src)
    return time_calls(lambda: np.copyto(dst, src), repeats, warmup=2)


def _read_whole(path: Path, buf: bytearray) -> int:
    view = memoryview(buf)
    total = 0
    with path.open("rb", buffering=0) as f:
        while True:
            n = f.readinto(view)
            if not n:
                return total
            total += n


def page_cache_read_time(path: Path, repeats: int, *, block: int = _READ_BLOCK) -> Timing:
    """Time reading ``path`` from the page cache into a reused buffer of ``block`` bytes.

    The file is read once first, so every timed read is warm. With ``block`` at least the file's
    size this is the time to get the whole file into one buffer.
    """
    buf = bytearray(block)
    return time_calls(lambda: _read_whole(path, buf), repeats, warmup=1)


def disk_read_time(path: Path, repeats: int, *, block: int = _READ_BLOCK) -> Timing:
    """Time reading ``path`` after dropping its pages from the page cache (:func:`evict`)."""
    buf = bytearray(block)
    return time_calls(lambda: _read_whole(path, buf), repeats, before=lambda: evict([path]))


def median_of(values: Sequence[float]) -> float:
    """Median of ``values``, ``nan`` when empty."""
    return statistics.median(values) if values else float("nan")
