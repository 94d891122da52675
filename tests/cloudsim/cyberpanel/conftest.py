"""Fixtures: a CyberPanel simulator on loopback per test and httpx clients bound to
``/api/v1``: ``api`` (:data:`CYBERPANEL_API_KEY`, scopes ``all``), ``anon`` (no auth)
and ``admin`` (``/_sim``); ``key_client`` registers a key with given scopes / limits
through the admin API and returns a client holding it; ``make_vps`` creates a VPS.

The simulator comes from :func:`cloudsim.testing.cyberpanel_test_simulator`: time 50x
faster, rate limits off, deployment 5 s and power actions 1 s simulated (100 / 20 ms
real).  These fixtures shadow the Krova ones of the parent conftest for this directory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from cloudsim import CyberPanelSimulator
from cloudsim.testing import (
    CYBERPANEL_API_KEY,
    cyberpanel_test_simulator,
    sample_vps_request,
    wait_for_cyberpanel_status,
)

MakeVps = Callable[..., Awaitable[int]]
KeyClient = Callable[..., Awaitable[httpx.AsyncClient]]


def bearer(sim: CyberPanelSimulator, key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(base_url=sim.url, headers=headers, timeout=5.0)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The seed's error envelope, exactly its four keys, with ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"success", "error", "error_code", "message"}, body
    assert body["success"] is False and body["error_code"] == code, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str) and body["message"]
    return body


def data_of(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is True, body
    data: dict[str, Any] = body["data"]
    return data


@pytest.fixture
async def sim() -> AsyncIterator[CyberPanelSimulator]:
    async with cyberpanel_test_simulator() as simulator:
        yield simulator


@pytest.fixture
async def api(sim: CyberPanelSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with bearer(sim, CYBERPANEL_API_KEY) as client:
        yield client


@pytest.fixture
async def anon(sim: CyberPanelSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with bearer(sim, None) as client:
        yield client


@pytest.fixture
async def admin(sim: CyberPanelSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.admin_url, timeout=5.0) as client:
        yield client


@pytest.fixture
async def key_client(sim: CyberPanelSimulator,
                     admin: httpx.AsyncClient) -> AsyncIterator[KeyClient]:
    """``await key_client(scopes=[...], **fields)``: a fresh key registered through
    ``POST /_sim/keys`` and a client using it (``client.key_id`` holds its id)."""
    async with AsyncExitStack() as stack:

        async def make(**fields: Any) -> httpx.AsyncClient:
            response = await admin.post("/keys", json=fields)
            assert response.status_code == 201, response.text
            created = response.json()
            client = await stack.enter_async_context(bearer(sim, created["api_key"]))
            client.key_id = created["key"]["id"]  # type: ignore[attr-defined]
            return client

        yield make


@pytest.fixture
def make_vps(api: httpx.AsyncClient) -> MakeVps:
    """``await make_vps(wait="running", **body)``: create a VPS (the seed's example
    body unless overridden) and wait until it has status ``wait`` (None: do not wait);
    returns its id."""

    async def make(wait: str | None = "running", **overrides: Any) -> int:
        response = await api.post("/vps/create", json=sample_vps_request(**overrides))
        vps_id: int = data_of(response, 201)["vps_id"]
        if wait is not None:
            await wait_for_cyberpanel_status(api, vps_id, wait)
        return vps_id

    return make
