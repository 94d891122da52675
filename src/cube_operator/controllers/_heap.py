"""Give the C heap's free pages back to the system every few seconds (glibc ``malloc_trim``).

Bodies, responses and status patches of thousands of Cubes come and go while they are
created; what is freed between long-lived objects stays in the process (glibc trims only
the top of its heap) and counts in its RSS until ``malloc_trim`` releases it.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable

TRIM_INTERVAL_SECONDS = 10.0


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


async def trim_heap_forever(interval: float = TRIM_INTERVAL_SECONDS) -> None:
    trim = malloc_trim()
    if trim is None:
        return
    while True:
        await asyncio.sleep(interval)
        trim(0)
