"""glibc's allocator, set for a network's large, short-lived tensors (the command line does this).

By default glibc hands out every block over its mmap threshold (128 KB, raised as such blocks are
freed, to at most 32 MB) as fresh pages from the kernel, and gives them back on free: each time a
tensor is made, its pages fault in again, zero-filled. Four faces' first activations are 12-25
MB, so a folder of faces paid for ~0.5 M page faults (224 LFW faces, `aecodec compress`: 0.54-0.60
M faults and 5.5-6.2 s; with these settings 0.10 M and 4.9-5.0 s). Blocks up to ``MMAP_THRESHOLD``
now come from the heap, and up to ``TRIM_THRESHOLD`` of freed heap is kept for the next tensor
rather than given back. Larger blocks (a big photo's planes) are mapped and unmapped as before;
after a large image's tiles the codec calls ``release()``, so its peak does not grow (a 24 MP
compress: 1.45 GB against 1.57-1.61 untuned; benchmarks/allocator.md).

Only on glibc, and not where the user set the allocator through its environment variables.
A library does not change a process's allocator behind its caller's back: ``aecodec``'s
functions leave it as it is; a program may call ``tune()`` itself.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["tune", "release", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

MMAP_THRESHOLD = 32 << 20  # glibc's largest (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 64 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # malloc.h
_USER_SET = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


_tuned = False


def tune() -> bool:
    """Set glibc's mmap and trim thresholds for this process; True if both were set."""
    if not sys.platform.startswith("linux") or any(k in os.environ for k in _USER_SET):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc's own: musl's mallopt does nothing
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # the mmap threshold first: setting the trim threshold alone stops glibc raising the mmap
    # threshold, and every block over 128 KB would be mapped afresh (2.1 M faults on the faces)
    global _tuned
    _tuned = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return _tuned


def release() -> None:
    """In a tuned process, give the kernel back the free memory the heap keeps (``malloc_trim``):
    after a large image's tiles, whose blocks would otherwise stay, scattered, through its packing."""
    if _tuned:
        ctypes.CDLL(None).malloc_trim(0)
