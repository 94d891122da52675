"""Per-token token buckets: burst 10 refilling 1/s, and the provisioning bucket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from cloudsim import NoKycSimulator
from cloudsim.testing import (
    NOKYC_BILLING_TOKEN,
    NOKYC_TOKEN,
    nokyc_ssh_public_key,
    nokyc_test_simulator,
    sample_server_request,
)

from .test_nokyc_auth import assert_envelope


@pytest.fixture
async def limited() -> AsyncIterator[NoKycSimulator]:
    # time_scale 0.2: the bucket refills one token per 5 real seconds, so the counts
    # below are exact even on a slow machine.
    async with nokyc_test_simulator(time_scale=0.2, rate_limit=60) as simulator:
        yield simulator


def _client(sim: NoKycSimulator, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=sim.url, headers={"Authorization": f"Bearer {token}"},
                             timeout=5.0)


async def test_burst_then_429(limited: NoKycSimulator) -> None:
    async with _client(limited, NOKYC_TOKEN) as api, _client(limited, NOKYC_BILLING_TOKEN) as other:
        remaining = []
        for _ in range(10):
            response = await api.get("/servers")  # GETs count too
            assert response.status_code == 200
            assert response.headers["X-RateLimit-Limit"] == "60"
            remaining.append(int(response.headers["X-RateLimit-Remaining"]))
            reset = int(response.headers["X-RateLimit-Reset"])
            # A unix epoch: when the bucket is full again (at most 10 tokens x 5 s away).
            assert time.time() - 1 <= reset <= time.time() + 51
        assert remaining == list(range(9, -1, -1))

        limited_response = await api.get("/servers")
        error = assert_envelope(limited_response, 429, "rate_limited")
        assert "Retry-After" in limited_response.headers
        retry = int(limited_response.headers["Retry-After"])
        assert 1 <= retry <= 5
        assert limited_response.headers["X-RateLimit-Remaining"] == "0"
        assert error["errors"] == []
        # Mutations share the bucket; rejected requests do not reach the API.
        assert (await api.post("/ssh-keys", json={})).status_code == 429
        assert (await api.delete("/servers/srv_00000000")).status_code == 429
        # Another token has its own bucket.
        assert (await other.get("/servers")).status_code == 200


async def test_provisioning_has_its_own_bucket(limited: NoKycSimulator) -> None:
    async with _client(limited, NOKYC_TOKEN) as api, _client(limited, NOKYC_BILLING_TOKEN) as other:
        key = await other.post("/ssh-keys", json={"name": "k",
                                                  "public_key": nokyc_ssh_public_key()})
        body = sample_server_request(key.json()["id"])
        while (await api.get("/plans")).status_code != 429:
            pass
        created = await api.post("/servers", json=body)
        assert created.status_code == 201
        assert created.headers["X-RateLimit-Limit"] == "200"
        assert created.headers["X-RateLimit-Remaining"] == "199"
        for expected in range(198, 188, -1):
            response = await api.post("/servers", json=body)
            assert response.status_code == 201
            assert int(response.headers["X-RateLimit-Remaining"]) == expected
        # ... while everything else is still limited.
        assert (await api.get(f"/servers/{created.json()['id']}")).status_code == 429


async def test_provisioning_bucket_runs_out(admin_limited: httpx.AsyncClient,
                                            limited: NoKycSimulator) -> None:
    await admin_limited.put("/config", json={"provisioning_rate_burst": 2})
    async with _client(limited, NOKYC_TOKEN) as api:
        statuses = [(await api.post("/servers", json={})).status_code for _ in range(3)]
    assert statuses == [400, 400, 429]


@pytest.fixture
async def admin_limited(limited: NoKycSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=limited.admin_url, timeout=5.0) as client:
        yield client


async def test_refill_and_knobs(limited: NoKycSimulator, admin_limited: httpx.AsyncClient) -> None:
    async with _client(limited, NOKYC_TOKEN) as api:
        while (await api.get("/plans")).status_code != 429:
            pass
        # Speed simulated time up: 1 token/s simulated is 100/s real at 100x.
        await admin_limited.put("/config", json={"time_scale": 100})
        await asyncio.sleep(0.15)
        assert (await api.get("/plans")).status_code == 200
        await admin_limited.put("/config", json={"time_scale": 0.2})

        while (await api.get("/plans")).status_code != 429:
            pass
        assert (await admin_limited.delete("/ratelimit")).status_code == 200
        response = await api.get("/plans")
        assert response.status_code == 200 and response.headers["X-RateLimit-Remaining"] == "9"

        # rate_limit 0 turns every limit off (benchmarks); no headers then.
        config = (await admin_limited.put("/config", json={"rate_limit": 0})).json()
        assert config["rate_limit"] == 0
        for _ in range(30):
            response = await api.get("/plans")
            assert response.status_code == 200 and "X-RateLimit-Limit" not in response.headers
        assert (await admin_limited.put("/config", json={"rate_burst": -1})).status_code == 400
        # A bigger burst.
        await admin_limited.put("/config", json={"rate_limit": 60, "rate_burst": 20})
        await admin_limited.delete("/ratelimit")
        response = await api.get("/plans")
        assert response.headers["X-RateLimit-Remaining"] == "19"


async def test_unauthenticated_requests_do_not_drain_buckets(limited: NoKycSimulator) -> None:
    async with httpx.AsyncClient(base_url=limited.url) as anon, _client(limited, NOKYC_TOKEN) as api:
        for _ in range(15):
            assert (await anon.get("/servers")).status_code == 401
        response = await api.get("/servers")
        assert response.headers["X-RateLimit-Remaining"] == "9"
