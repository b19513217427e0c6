"""Process memory: the one place that reads the kernel's RSS counters and trims the heap.

``VmHWM``/``VmRSS`` come from ``/proc/self/status`` on Linux; elsewhere the peak falls back to
``getrusage``. ``ru_maxrss`` alone is not enough on Linux, because a spawned worker inherits
its parent's figure. :func:`release_freed_memory` hands memory that Python and torch freed
back to the kernel (glibc keeps freed heap pages otherwise, and the peak creeps up epoch after
epoch although nothing is held).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import resource
import sys
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "MMAP_THRESHOLD",
    "fix_mmap_threshold",
    "peak_rss_bytes",
    "release_freed_memory",
    "reset_peak_rss",
    "status_kb",
]

#: Allocations of at least this many bytes get their own mapping, returned to the kernel on
#: free. glibc's default threshold starts at 128 KiB and *rises* to the largest block freed so
#: far (up to 32 MiB), after which the 20-80 MB arrays of each epoch come from the heap, which
#: fragments: the peak RSS of analysis then crept up by ~1 MB per epoch (measured in
#: ``benchmarks/bench_pipeline.py``). A fixed threshold keeps it flat.
MMAP_THRESHOLD = 1 << 20
_M_MMAP_THRESHOLD = -3  # mallopt parameter number, from glibc's malloc.h


def status_kb(field: str) -> int | None:
    """Return a ``kB`` line of ``/proc/self/status`` (``VmHWM``, ``VmRSS``), or None."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+)", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def peak_rss_bytes() -> int:
    """Return this process's own peak resident set size in bytes (``VmHWM`` on Linux)."""
    hwm = status_kb("VmHWM")
    if hwm is not None:
        return hwm * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def reset_peak_rss() -> bool:
    """Reset this process's peak-RSS mark (``VmHWM``) to its current RSS.

    Returns
    -------
    bool
        False where the kernel does not allow it (not Linux, or no ``/proc``).
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return status_kb("VmHWM") is not None


@cache
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl and other libcs have no malloc_trim
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc


def fix_mmap_threshold(nbytes: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``nbytes`` for this process (see :data:`MMAP_THRESHOLD`).

    Does nothing when the user set ``MALLOC_MMAP_THRESHOLD_`` in the environment, or off glibc.

    Returns
    -------
    bool
        Whether the threshold was set.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    libc = _libc()
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, nbytes)) if libc is not None else False


def release_freed_memory() -> bool:
    """Return freed heap memory to the kernel (glibc ``malloc_trim(0)``).

    Returns
    -------
    bool
        True if memory was released; False if nothing was or the C library cannot.
    """
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
