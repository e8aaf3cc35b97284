"""Keep glibc from handing big tensor buffers back to the kernel after every step.

glibc serves allocations above 32 MB (its largest mmap threshold) with fresh mmap calls and
unmaps them on free, so each training step of 128×128 crops re-faults and zeroes hundreds
of MB of pages: on a 2-core machine that doubled the step time, most of it in the kernel.
Serving everything from the heap and never trimming it keeps those pages mapped; the cost
is that the process keeps its peak memory until it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameter numbers from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Ask glibc to reuse freed memory instead of returning it; False where not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
