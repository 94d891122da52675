"""Fixtures: a LunaNode simulator on loopback per test and an httpx client bound to
``/api``.

The simulator comes from :func:`cloudsim.testing.lunanode_test_simulator`: simulated
time 50x faster with short lifecycle delays (a VM is Online ~40 ms after create).
``call(category, action, params)`` posts a correctly signed request and returns the
JSON answer; ``ok(...)`` does the same and asserts ``success == "yes"``.  These fixtures
shadow the Krova ones of the parent conftest for the tests in this directory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from cloudsim import LunaNodeSimulator
from cloudsim.testing import lunanode_call, lunanode_test_simulator, wait_for_vm_status

UBUNTU_TORONTO = "630902"  # Ubuntu 22.04 64-bit (template) in toronto
PLAN = "87"  # m.2

Call = Callable[..., Awaitable[dict[str, Any]]]
MakeVm = Callable[..., Awaitable[str]]


@pytest.fixture
async def sim() -> AsyncIterator[LunaNodeSimulator]:
    async with lunanode_test_simulator() as simulator:
        yield simulator


@pytest.fixture
async def api(sim: LunaNodeSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.url, timeout=5.0) as client:
        yield client


@pytest.fixture
async def admin(sim: LunaNodeSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.admin_url, timeout=5.0) as client:
        yield client


@pytest.fixture
def call(api: httpx.AsyncClient) -> Call:
    async def run(category: str, action: str, params: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
        return await lunanode_call(api, category, action, params)

    return run


@pytest.fixture
def ok(call: Call) -> Call:
    async def run(category: str, action: str, params: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
        answer = await call(category, action, params)
        assert answer["success"] == "yes", answer
        return answer

    return run


@pytest.fixture
def make_vm(ok: Call, api: httpx.AsyncClient) -> MakeVm:
    """``await make_vm(wait="Online", **params)``: vm/create (hostname ``web-1``, plan
    m.2, Ubuntu 22.04 in toronto unless overridden) and wait for ``wait``."""

    async def make(wait: str | None = "Online", **params: Any) -> str:
        body = {"hostname": "web-1", "plan_id": PLAN, "image_id": UBUNTU_TORONTO, **params}
        vm_id: str = (await ok("vm", "create", body))["vm_id"]
        if wait is not None:
            await wait_for_vm_status(api, vm_id, wait)
        return vm_id

    return make


@pytest.fixture
def vm_info(ok: Call) -> Callable[[str], Awaitable[dict[str, Any]]]:
    """``await vm_info(vm_id)``: vm/info's ``info`` object."""

    async def run(vm_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = (await ok("vm", "info", {"vm_id": vm_id}))["info"]
        return answer

    return run
