"""The per-key minute and hour windows, their headers and 429s, and the usage logs."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from cloudsim import CyberPanelSimulator
from cloudsim.testing import CYBERPANEL_API_KEY, cyberpanel_test_simulator, sample_vps_request

from .conftest import assert_error, bearer, data_of


@pytest.fixture
async def limited() -> AsyncIterator[CyberPanelSimulator]:
    # 60x: a simulated minute is one real second, an hour one real minute.
    async with cyberpanel_test_simulator(time_scale=60.0, rate_limit=60) as simulator:
        yield simulator


async def _set_limits(sim: CyberPanelSimulator, key_id: int, **limits: int) -> None:
    async with httpx.AsyncClient(base_url=sim.admin_url, timeout=5.0) as admin:
        response = await admin.patch(f"/keys/{key_id}", json=limits)
        assert response.status_code == 200, response.text


def _window_headers(response: httpx.Response) -> tuple[int, int, int]:
    h = response.headers
    return int(h["X-RateLimit-Limit"]), int(h["X-RateLimit-Remaining"]), \
        int(h["X-RateLimit-Reset"])


async def test_default_headers_on_every_answer(limited: CyberPanelSimulator) -> None:
    async with bearer(limited, CYBERPANEL_API_KEY) as api:
        ok = await api.get("/vps")
        limit, remaining, reset = _window_headers(ok)
        assert (limit, remaining) == (60, 59)
        # A unix timestamp, at most a (real) window ahead.
        assert time.time() - 1 <= reset <= time.time() + 2
        error = await api.get("/vps/999")  # error answers carry them too
        assert error.status_code == 404 and _window_headers(error)[1] == 58
        refused = await api.post("/vps/create", json={})
        assert refused.status_code == 400 and _window_headers(refused)[1] == 57
    async with bearer(limited, None) as anon:
        assert "X-RateLimit-Limit" not in (await anon.get("/health")).headers
        assert "X-RateLimit-Limit" not in (await anon.get("/vps")).headers  # 401


async def test_minute_window(limited: CyberPanelSimulator) -> None:
    await _set_limits(limited, 1, rate_limit_per_minute=3)
    async with bearer(limited, CYBERPANEL_API_KEY) as api:
        remaining = [_window_headers(await api.get("/vps"))[1] for _ in range(3)]
        assert remaining == [2, 1, 0]
        refused = await api.get("/vps")
        body = assert_error(refused, 429, "RATE_LIMIT_EXCEEDED")
        retry = int(refused.headers["Retry-After"])
        assert retry == 1  # the window is one real second
        assert body["error"] == "Rate limit exceeded"
        assert body["message"] == ("You have exceeded the per minute rate limit. Please "
                                   f"retry after {retry} seconds.")
        assert _window_headers(refused)[:2] == (3, 0)
        # Rejected requests consume nothing: retrying at once changes nothing...
        for _ in range(3):
            assert (await api.post("/vps/create", json=sample_vps_request())).status_code == 429
        await asyncio.sleep(retry + 0.05)
        # ... so after Retry-After the full budget is back.
        assert (await api.get("/vps")).status_code == 200
        used = data_of(await api.get("/account/api-keys"))["api_keys"][0]
        assert used["request_count"] == 5 and used["rate_limit_per_minute"] == 3


async def test_hour_window(limited: CyberPanelSimulator) -> None:
    async with httpx.AsyncClient(base_url=limited.admin_url, timeout=5.0) as admin:
        created = (await admin.post("/keys", json={
            "scopes": ["vps:read"], "rate_limit_per_minute": 10,
            "rate_limit_per_hour": 4})).json()
    async with bearer(limited, created["api_key"]) as reader:
        first = await reader.get("/vps")
        # The hour window has fewer left (3 < 9): its numbers are reported.
        limit, remaining, reset = _window_headers(first)
        assert (limit, remaining) == (4, 3)
        assert time.time() + 50 <= reset <= time.time() + 62  # an hour = 60 real s
        # A request failing the scope check still counts.
        assert_error(await reader.post("/vps/create", json=sample_vps_request()), 403,
                     "INSUFFICIENT_SCOPE")
        assert (await reader.get("/vps")).status_code == 200
        assert (await reader.get("/vps")).status_code == 200
        refused = await reader.get("/vps")
        body = assert_error(refused, 429, "RATE_LIMIT_EXCEEDED")
        retry = int(refused.headers["Retry-After"])
        assert 55 <= retry <= 61
        assert body["message"] == ("You have exceeded the per hour rate limit. Please retry "
                                   f"after {retry} seconds.")
        assert _window_headers(refused)[:2] == (4, 0)
    # After Retry-After it succeeds: speed the clock up so the hour passes quickly.
    async with httpx.AsyncClient(base_url=limited.admin_url, timeout=5.0) as admin:
        await admin.put("/config", json={"time_scale": 3600.0})
    async with bearer(limited, created["api_key"]) as reader:
        await asyncio.sleep(math.ceil(retry / 60) + 0.1)
        assert (await reader.get("/vps")).status_code == 200


async def test_limits_off_and_admin_reset(limited: CyberPanelSimulator) -> None:
    await _set_limits(limited, 1, rate_limit_per_minute=1)
    async with bearer(limited, CYBERPANEL_API_KEY) as api, \
            httpx.AsyncClient(base_url=limited.admin_url, timeout=5.0) as admin:
        assert (await api.get("/vps")).status_code == 200
        assert (await api.get("/vps")).status_code == 429
        assert (await admin.delete("/ratelimit")).status_code == 200
        assert (await api.get("/vps")).status_code == 200
        await admin.put("/config", json={"rate_limit": 0})
        for _ in range(5):
            free = await api.get("/vps")
            assert free.status_code == 200 and "X-RateLimit-Limit" not in free.headers
        await admin.put("/config", json={"rate_limit": 60})
        # A key limit of 0 turns that window off for the key.
        await _set_limits(limited, 1, rate_limit_per_minute=0, rate_limit_per_hour=2)
        await admin.delete("/ratelimit")
        assert _window_headers(await api.get("/vps"))[:2] == (2, 1)
        bad = await admin.patch("/keys/1", json={"rate_limit_per_minute": -1})
        assert bad.status_code == 400


async def test_usage_logs(limited: CyberPanelSimulator) -> None:
    async with bearer(limited, CYBERPANEL_API_KEY) as api:
        for i in range(7):
            await api.get(f"/vps/{i + 1000}")
        await api.post("/vps/create", json={})
        page = data_of(await api.get("/account/api-keys/1/usage", params={"limit": 3}))
        assert page["key_id"] == 1 and page["key_name"] == "API Key 1"
        assert page["pagination"] == {"limit": 3, "offset": 0, "total": 8, "has_more": True}
        newest = page["usage_logs"][0]
        assert set(newest) == {"endpoint", "method", "ip_address", "response_status",
                               "response_time_ms", "created_at"}
        assert newest["endpoint"] == "/api/v1/vps/create" and newest["method"] == "POST"
        assert newest["response_status"] == 400 and newest["ip_address"] == "127.0.0.1"
        assert isinstance(newest["response_time_ms"], int) and newest["created_at"].endswith("Z")
        assert page["usage_logs"][1]["endpoint"] == "/api/v1/vps/1006"
        assert page["usage_logs"][1]["response_status"] == 404
        rest = data_of(await api.get("/account/api-keys/1/usage",
                                     params={"limit": 100, "offset": 3}))
        # 8 earlier + the first usage call itself.
        assert rest["pagination"] == {"limit": 100, "offset": 3, "total": 9, "has_more": False}
        assert len(rest["usage_logs"]) == 6
        capped = data_of(await api.get("/account/api-keys/1/usage", params={"limit": 1000}))
        assert capped["pagination"]["limit"] == 100
        assert_error(await api.get("/account/api-keys/99/usage"), 404, "KEY_NOT_FOUND")
        assert_error(await api.get("/account/api-keys/abc/usage"), 404, "KEY_NOT_FOUND")
        assert_error(await api.get("/account/api-keys/1/usage", params={"offset": "x"}), 400,
                     "INVALID_PARAMETER")
