"""Rate limit: 10 mutating requests per (scaled) 60 s per client IP."""

from __future__ import annotations

import asyncio
import time

import httpx

from cloudsim.testing import krova_test_simulator, sample_cube_request


async def test_limit_429_retry_after_and_recovery() -> None:
    # time_scale 30: the 60 s window lasts two real seconds.
    async with krova_test_simulator(time_scale=30.0, rate_limit=10) as sim, httpx.AsyncClient(
        base_url=f"{sim.url}/spaces/sp_test", headers={"X-API-KEY": "kro_test_key"}
    ) as api:
        started = time.monotonic()
        remaining = []
        for i in range(10):
            response = await api.post("/cubes", json=sample_cube_request(name=f"c{i}"))
            assert response.status_code == 201
            assert response.headers["X-RateLimit-Limit"] == "10"
            remaining.append(int(response.headers["X-RateLimit-Remaining"]))
            assert int(response.headers["X-RateLimit-Reset"]) >= 1
        assert remaining == list(range(9, -1, -1))

        limited = await api.post("/cubes", json=sample_cube_request())
        assert limited.status_code == 429
        assert limited.json()["error"]
        retry_after = limited.headers["Retry-After"]
        assert retry_after.isdigit() and int(retry_after) >= 1
        assert limited.headers["X-RateLimit-Remaining"] == "0"
        # DELETE and PUT are mutating too; GETs are never limited.
        assert (await api.delete("/cubes/cube_x")).status_code == 429
        assert (await api.put("/cubes/cube_x/ssh-port", json={"cubePort": 2})).status_code == 429
        for _ in range(15):
            assert (await api.get("/cubes")).status_code == 200

        # Recovery once the (scaled) window has passed.
        await asyncio.sleep(max(0.0, started + 2.1 - time.monotonic()))
        recovered = await api.post("/cubes", json=sample_cube_request(name="after"))
        assert recovered.status_code == 201
        assert (await api.get("/cubes")).json()["pagination"]["total"] == 11


async def test_replays_count_and_limit_is_a_knob() -> None:
    async with krova_test_simulator(rate_limit=3) as sim, httpx.AsyncClient(
        base_url=sim.url, timeout=5.0
    ) as root:
        api = {"X-API-KEY": "kro_test_key"}
        path = "/spaces/sp_test/cubes"
        key = {"Idempotency-Key": "same", **api}
        for _ in range(3):
            assert (await root.post(path, json=sample_cube_request(), headers=key)).is_success
        assert (await root.post(path, json=sample_cube_request(), headers=key)).status_code == 429
        # Raise the limit at runtime through the admin API.
        config = await root.put(f"{sim.admin_url}/config", json={"rate_limit": 5})
        assert config.json()["rate_limit"] == 5
        assert (await root.post(path, json=sample_cube_request(), headers=api)).status_code == 201
        assert (await root.put(f"{sim.admin_url}/config", json={"rate_limit": -1})).status_code == 400
        # Forgetting the windows resets the budget.
        await root.delete(f"{sim.admin_url}/ratelimit")
        response = await root.post(path, json=sample_cube_request(), headers=api)
        assert response.headers["X-RateLimit-Remaining"] == "4"
