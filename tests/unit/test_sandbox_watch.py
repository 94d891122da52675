"""The sandbox's live table (`cube-operator dev`): printed when it changes, never again while
nothing does, and not for a read that failed. Real HTTP on loopback: a stand-in for the
API server's Cube list, whose answers the test sets."""
from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from cube_operator.sandbox.runner import _watch

HEADER = re.compile(r"^\d\d:\d\d:\d\d\s*$", re.MULTILINE)


def cube(name: str, state: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "team-a", "name": name},
            "status": {"state": state, "publicIpv4": "203.0.113.10",
                       "conditions": [{"type": "Ready", "status": "True", "reason": state.title()}]}}


class CubeList:
    def __init__(self) -> None:
        self.status = 200
        self.items = [cube("web-1", "running"), cube("batch-1", "stopped")]
        self.reads = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.reads += 1
        if self.status != 200:
            return web.json_response({"kind": "Status", "status": "Failure", "code": self.status},
                                     status=self.status)
        return web.json_response({"kind": "CubeList", "items": self.items})


@pytest.fixture
async def api() -> AsyncIterator[tuple[CubeList, str]]:
    cubes = CubeList()
    app = web.Application()
    app.router.add_get("/apis/cube-operator.io/v1alpha1/cubes", cubes.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield cubes, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
def operator() -> Iterator[subprocess.Popen[bytes]]:
    """A live process where the sandbox has its operator (the table stops if it exits)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process
    process.kill()
    process.wait()


async def reads(cubes: CubeList, count: int) -> None:
    target = cubes.reads + count
    while cubes.reads < target:
        await asyncio.sleep(0.05)


async def test_table_is_printed_on_change_only(api: tuple[CubeList, str], operator: subprocess.Popen[bytes],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    cubes, url = api
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        watching = asyncio.create_task(_watch(client, operator, False, stop))
        await reads(cubes, 1)
        await asyncio.sleep(0.2)
        first = capsys.readouterr().out
        assert len(HEADER.findall(first)) == 1 and "team-a/web-1" in first
        assert "All Cubes are Running or Stopped" in first

        await reads(cubes, 3)  # settled: nothing changes, nothing is printed
        assert capsys.readouterr().out == ""

        cubes.status = 500  # a read that fails prints no (empty) table ...
        await reads(cubes, 2)
        cubes.status = 200  # ... so the same table after it is no change either
        await reads(cubes, 2)
        assert capsys.readouterr().out == ""

        cubes.items = [cube("web-1", "stopped"), cube("batch-1", "stopped")]
        await reads(cubes, 2)
        changed = capsys.readouterr().out
        assert len(HEADER.findall(changed)) == 1 and "state=stopped" in changed

        stop.set()
        assert await asyncio.wait_for(watching, timeout=5) == 0
