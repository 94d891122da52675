"""Fixtures: a NoKYC simulator on loopback per test and httpx clients bound to ``/v1``.

The simulator comes from :func:`cloudsim.testing.nokyc_test_simulator`: simulated time
50x faster with short lifecycle delays (a server is running ~60 ms after create), rate
limits off.  ``api`` holds the write token, ``reader`` the read token, ``biller`` the
billing token, ``anon`` none.  These fixtures shadow the Krova ones of the parent
conftest for the tests in this directory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from cloudsim import NoKycSimulator
from cloudsim.testing import (
    NOKYC_BILLING_TOKEN,
    NOKYC_READ_TOKEN,
    NOKYC_TOKEN,
    nokyc_ssh_public_key,
    nokyc_test_simulator,
    sample_server_request,
    wait_for_server_status,
)


@pytest.fixture
async def sim() -> AsyncIterator[NoKycSimulator]:
    async with nokyc_test_simulator() as simulator:
        yield simulator


def _client(sim: NoKycSimulator, token: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=sim.url, headers=headers, timeout=5.0)


@pytest.fixture
async def api(sim: NoKycSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(sim, NOKYC_TOKEN) as client:
        yield client


@pytest.fixture
async def reader(sim: NoKycSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(sim, NOKYC_READ_TOKEN) as client:
        yield client


@pytest.fixture
async def biller(sim: NoKycSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(sim, NOKYC_BILLING_TOKEN) as client:
        yield client


@pytest.fixture
async def anon(sim: NoKycSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(sim, None) as client:
        yield client


@pytest.fixture
async def admin(sim: NoKycSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.admin_url, timeout=5.0) as client:
        yield client


@pytest.fixture
async def ssh_key(api: httpx.AsyncClient) -> str:
    """The id of a registered SSH key."""
    response = await api.post("/ssh-keys", json={"name": "dev", "public_key": nokyc_ssh_public_key()})
    assert response.status_code == 201, response.text
    key_id: str = response.json()["id"]
    return key_id


MakeServer = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def make_server(api: httpx.AsyncClient, ssh_key: str) -> MakeServer:
    """``await make_server(wait="running", **overrides)``: create a server (the seed's
    example body) and wait until it has ``wait`` (None: do not wait)."""

    async def make(wait: str | None = "running", **overrides: Any) -> dict[str, Any]:
        response = await api.post("/servers", json=sample_server_request(ssh_key, **overrides))
        assert response.status_code == 201, response.text
        server: dict[str, Any] = response.json()
        if wait is None:
            return server
        return await wait_for_server_status(api, server["id"], wait)

    return make
