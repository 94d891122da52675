"""The admin API: knobs, fault injection (status, drop, timeout, delay), stats."""

from __future__ import annotations

import time

import httpx
import pytest

from cloudsim import KrovaSimulator
from cloudsim.testing import sample_cube_request


async def test_config_roundtrip_and_validation(admin: httpx.AsyncClient) -> None:
    config = (await admin.get("/config")).json()
    assert config["provider"] == "krova"
    assert config["time_scale"] == 50.0 and config["rate_limit"] == 0
    assert config["provision_delay"] == 2.0 and config["webhook_retries"] == 4
    updated = await admin.put("/config", json={"time_scale": 10, "boot_delay": 0.5})
    assert updated.status_code == 200
    assert updated.json()["time_scale"] == 10 and updated.json()["boot_delay"] == 0.5
    for bad in ({"time_scale": 0}, {"latency_ms": -1}, {"nope": 1}, {"boot_failure_rate": 2},
                {"insufficient_credits": "yes"}, {"host_port_min": 9, "host_port_max": 8},
                {"boot_delay": 3, "nope": 1}, {"boot_delay": 3, "time_scale": 0},
                {"boot_delay": 3, "webhook_retries": 1.5}):
        response = await admin.put("/config", json=bad)
        assert response.status_code == 400, bad
        assert response.json()["error"]
    # A rejected update changes nothing.
    assert (await admin.get("/config")).json()["boot_delay"] == 0.5
    assert (await admin.get("/health")).json() == {"ok": True, "provider": "krova"}


async def test_status_fault_with_count(api: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    rule = await admin.post("/faults", json={
        "method": "GET", "path": "/api/v1/spaces/*/cubes", "kind": "status", "status": 500,
        "count": 2,
    })
    assert rule.status_code == 201
    statuses = [(await api.get("/cubes")).status_code for _ in range(4)]
    assert statuses == [500, 500, 200, 200]
    failed = await api.get("/cubes/cube_x")  # other paths untouched
    assert failed.status_code == 404
    faults = (await admin.get("/faults")).json()["faults"]
    assert faults[0]["fired"] == 2 and faults[0]["count"] == 0


async def test_fault_by_route_name_and_body(api: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    await admin.post("/faults", json={
        "route": "create_cube", "status": 502, "body": "<html>Bad Gateway</html>",
        "content_type": "text/html",
    })
    response = await api.post("/cubes", json=sample_cube_request())
    assert response.status_code == 502 and response.text == "<html>Bad Gateway</html>"
    await admin.delete("/faults")
    await admin.post("/faults", json={"route": "/spaces/{spaceId}/cubes", "status": 429})
    limited = await api.get("/cubes")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert limited.json()["error"]
    cleared = await admin.delete("/faults")
    assert cleared.json() == {"success": True, "removed": 1}
    assert (await api.get("/cubes")).status_code == 200


async def test_drop_closes_without_response(api: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    rule = (await admin.post("/faults", json={"kind": "drop", "count": 1})).json()["fault"]
    with pytest.raises(httpx.RemoteProtocolError):
        await api.get("/cubes")
    assert (await api.get("/cubes")).status_code == 200
    assert (await admin.delete(f"/faults/{rule['id']}")).status_code == 200
    assert (await admin.delete(f"/faults/{rule['id']}")).status_code == 404


async def test_timeout_hangs_past_the_client_timeout(
    sim: KrovaSimulator, api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    await admin.post("/faults", json={"kind": "timeout", "method": "POST", "count": 1})
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        await api.post("/cubes", json=sample_cube_request(), timeout=0.3)
    assert time.monotonic() - started < 2
    # The hung request did not create anything.
    assert (await api.get("/cubes")).json()["pagination"]["total"] == 0


async def test_delay_and_latency(api: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    await admin.post("/faults", json={"kind": "delay", "seconds": 0.2, "count": 1})
    started = time.monotonic()
    assert (await api.get("/cubes")).status_code == 200
    assert time.monotonic() - started >= 0.2
    await admin.put("/config", json={"latency_ms": 150})
    started = time.monotonic()
    await api.get("/cubes")
    assert time.monotonic() - started >= 0.15


async def test_probability_zero_never_fires(api: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    await admin.post("/faults", json={"status": 503, "probability": 0})
    assert all([(await api.get("/cubes")).status_code == 200 for _ in range(5)])
    for bad in ({"kind": "explode"}, {"probability": 2}, {"count": 0}, {"status": 200},
                {"surprise": 1}):
        assert (await admin.post("/faults", json=bad)).status_code == 400, bad


async def test_stats_count_requests_per_route_and_status(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    await admin.delete("/stats")
    for _ in range(3):
        await api.get("/cubes")
    await api.get("/cubes/cube_nope")
    await api.post("/cubes", json=sample_cube_request())
    await admin.post("/faults", json={"kind": "drop", "count": 1})
    with pytest.raises(httpx.RemoteProtocolError):
        await api.get("/cubes")
    stats = (await admin.get("/stats")).json()
    rows = {(r["method"], r["route"], r["status"]): r["count"] for r in stats["requests"]}
    assert rows[("GET", "/api/v1/spaces/{spaceId}/cubes", 200)] == 3
    assert rows[("GET", "/api/v1/spaces/{spaceId}/cubes/{cubeId}", 404)] == 1
    assert rows[("POST", "/api/v1/spaces/{spaceId}/cubes", 201)] == 1
    assert rows[("GET", "/api/v1/spaces/{spaceId}/cubes", "drop")] == 1
    assert stats["total"] == 6  # admin calls are not counted
    recent = (await admin.get("/requests", params={"limit": 2})).json()["requests"]
    assert [r["status"] for r in recent] == [201, "drop"]
    assert all("X-API-KEY" not in str(r) and "kro_" not in str(r) for r in recent)
    await admin.delete("/stats")
    assert (await admin.get("/stats")).json()["total"] == 0



async def test_hold_commits_then_answers_late(api: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    # The window a client can die in: the provider has the cube, the client has no answer.
    assert (await admin.post("/faults", json={
        "method": "POST", "route": "create_cube", "kind": "hold", "seconds": 1.0, "count": 1,
    })).status_code == 201
    import asyncio

    started = time.monotonic()
    create = asyncio.ensure_future(api.post("/cubes", json=sample_cube_request(name="held")))
    while time.monotonic() - started < 0.9:
        listed = (await api.get("/cubes")).json()["cubes"]
        if any(c["name"] == "held" for c in listed):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the held create was not committed before its answer")
    assert not create.done()
    response = await create
    assert response.status_code == 201 and time.monotonic() - started >= 1.0
