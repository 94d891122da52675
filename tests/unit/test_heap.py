"""The heap trimmer (controllers/_heap.py)."""
from __future__ import annotations

import asyncio
import platform

import pytest

from cube_operator.controllers import _heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_glibc_malloc_trim_is_found_and_runs() -> None:
    trim = _heap.malloc_trim()
    assert trim is not None
    assert trim(0) in (0, 1)  # 1: memory was released


async def test_the_trimmer_runs_until_cancelled() -> None:
    task = asyncio.create_task(_heap.trim_heap_forever(interval=0.01))
    await asyncio.sleep(0.05)
    assert not task.done()  # it trims, and keeps going
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
