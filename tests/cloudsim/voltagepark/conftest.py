"""Fixtures: a Voltage Park simulator on loopback per test and httpx clients bound to
``/api/v1``: ``api`` (``Authorization: Bearer``), ``org`` (``x-api-token``), ``anon`` (no
auth) and ``admin`` (``/_sim``).

The simulator comes from :func:`cloudsim.testing.voltagepark_test_simulator`: time 50x
faster, provisioning 2 s and the other transitions 1 s simulated (40 / 20 ms real).
These fixtures shadow the Krova ones of the parent conftest for this directory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from cloudsim import VoltageParkSimulator
from cloudsim.testing import (
    VOLTAGEPARK_API_KEY,
    voltagepark_test_simulator,
    wait_for_voltagepark_status,
)
from cloudsim.voltagepark import PRESETS

PRESET_1X = PRESETS[0].id
PRESET_8X = PRESETS[3].id

MakeVm = Callable[..., Awaitable[str]]


@pytest.fixture
async def sim() -> AsyncIterator[VoltageParkSimulator]:
    async with voltagepark_test_simulator() as simulator:
        yield simulator


@pytest.fixture
async def api(sim: VoltageParkSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.url, timeout=5.0, headers={
            "Authorization": f"Bearer {VOLTAGEPARK_API_KEY}"}) as client:
        yield client


@pytest.fixture
async def org(sim: VoltageParkSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.url, timeout=5.0, headers={
            "x-api-token": VOLTAGEPARK_API_KEY}) as client:
        yield client


@pytest.fixture
async def anon(sim: VoltageParkSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.url, timeout=5.0) as client:
        yield client


@pytest.fixture
async def admin(sim: VoltageParkSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.admin_url, timeout=5.0) as client:
        yield client


def vm_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"config_id": PRESET_1X, "name": "vm-1",
                            "password": "super_secret_pw", "tags": []}
    body.update(overrides)
    return body


@pytest.fixture
def make_vm(api: httpx.AsyncClient) -> MakeVm:
    """``await make_vm(wait="Running", **body)``: create an instant VM (1x preset unless
    overridden) and wait for ``wait``; returns its id."""

    async def make(wait: str | None = "Running", **overrides: Any) -> str:
        response = await api.post("/virtual-machines/instant", json=vm_body(**overrides))
        assert response.status_code == 201, response.text
        vm_id: str = response.json()["vm_id"]
        if wait is not None:
            await wait_for_voltagepark_status(api, vm_id, wait)
        return vm_id

    return make
