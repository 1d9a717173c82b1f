"""glibc's allocator and the model: keep freed memory for the next forward pass, and give it back
on purpose when a long job would otherwise hold it.

A Cnn14 forward pass allocates and frees tensors of hundreds of MB; by default glibc serves
each with a fresh mmap and returns it to the kernel on free, so every pass pays page faults
and zeroing again (about a quarter of a CPU forward pass; see the performance docs).
``keep_freed_memory`` raises the mmap and trim thresholds (what ``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_`` and ``MALLOC_TOP_PAD_`` would do in the environment) when a model
is loaded, so every process that runs the model gets it: the CLI, Prefect and Dask workers,
``serve``. The price: a process keeps up to about 1 GiB of freed heap instead of returning it
at once.

Where glibc is not the allocator (macOS, musl), both functions do nothing.
"""

from __future__ import annotations

import ctypes
import threading

# mallopt parameters (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
#: Allocations below this come from the heap, and freed heap below this is not trimmed (bytes):
#: above any single tensor of a batch-8 forward pass (glibc 2.36 accepts it; mallopt says so).
KEEP_BYTES = 1 << 30
#: Heap grown ahead of need, so growth does not happen in small steps (bytes).
TOP_PAD_BYTES = 512 << 20

try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6")
    _LIBC.mallopt  # noqa: B018 (raises AttributeError where glibc is not)
    _LIBC.malloc_trim  # noqa: B018
except (OSError, AttributeError):
    _LIBC = None

_applied = False
_lock = threading.Lock()


def keep_freed_memory() -> bool:
    """Raise glibc's mmap, trim and top-pad thresholds for this process (once); whether they
    are in effect (False where glibc is not the allocator)."""
    global _applied
    with _lock:
        if not _applied and _LIBC is not None:
            _applied = all(
                _LIBC.mallopt(parameter, value) == 1
                for parameter, value in (
                    (_M_MMAP_THRESHOLD, KEEP_BYTES),
                    (_M_TRIM_THRESHOLD, KEEP_BYTES),
                    (_M_TOP_PAD, TOP_PAD_BYTES),
                )
            )
        return _applied


def give_back_freed_memory() -> None:
    """Return freed heap pages to the kernel now (glibc's malloc_trim)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
