"""Helpers the provider contract tests share: poll until a condition holds, call a
simulator's admin API."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from cloudsim.testing import RunningSimulator


async def until(probe: Any, accept: Any, timeout: float = 30.0) -> Any:
    """``await probe()`` until ``accept`` takes its value (which is returned)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if accept(value):
            return value
        assert time.monotonic() < deadline, value
        await asyncio.sleep(0.05)


async def admin(sim: RunningSimulator, method: str, path: str, **kw: Any) -> httpx.Response:
    """One call to the simulator's ``/_sim`` API; raises on an error status."""
    async with httpx.AsyncClient(base_url=sim.admin_url) as http:
        response = await http.request(method, path, **kw)
        response.raise_for_status()
        return response
