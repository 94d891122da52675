"""Idempotency-Key: replay without re-running, header, scope, bounds, expiry."""

from __future__ import annotations

import asyncio

import httpx

from cloudsim.testing import (
    OTHER_API_KEY,
    OTHER_SPACE_ID,
    create_cube,
    krova_test_simulator,
    sample_cube_request,
)


async def test_replay_returns_original_without_rerunning(api: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "create-web-1"}
    first = await api.post("/cubes", json=sample_cube_request(), headers=headers)
    assert first.status_code == 201
    assert "Idempotency-Replayed" not in first.headers
    await asyncio.sleep(0.15)  # the Cube moves on; the replay must not
    second = await api.post("/cubes", json=sample_cube_request(), headers=headers)
    assert second.status_code == 201
    assert second.headers["Idempotency-Replayed"] == "true"
    assert second.content == first.content
    assert second.json()["cube"]["state"] == "pending"
    assert (await api.get("/cubes")).json()["pagination"]["total"] == 1
    # A different key creates a second Cube.
    third = await api.post("/cubes", json=sample_cube_request(), headers={"Idempotency-Key": "b"})
    assert third.status_code == 201 and "Idempotency-Replayed" not in third.headers
    assert (await api.get("/cubes")).json()["pagination"]["total"] == 2


async def test_key_length_bounds(api: httpx.AsyncClient) -> None:
    ok = await api.post("/cubes", json=sample_cube_request(), headers={"Idempotency-Key": "k" * 255})
    assert ok.status_code == 201
    too_long = await api.post(
        "/cubes", json=sample_cube_request(), headers={"Idempotency-Key": "k" * 256}
    )
    assert too_long.status_code == 400 and "Idempotency-Key" in too_long.json()["error"]
    assert (await api.get("/cubes")).json()["pagination"]["total"] == 1


async def test_keys_are_scoped_per_space(sim: object, api: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "shared-key"}
    mine = await api.post("/cubes", json=sample_cube_request(), headers=headers)
    other_url = str(api.base_url).replace("sp_test", OTHER_SPACE_ID)
    async with httpx.AsyncClient(
        base_url=other_url, headers={"X-API-KEY": OTHER_API_KEY}
    ) as other:
        theirs = await other.post("/cubes", json=sample_cube_request(), headers=headers)
        assert theirs.status_code == 201
        assert "Idempotency-Replayed" not in theirs.headers
        assert theirs.json()["cube"]["id"] != mine.json()["cube"]["id"]


async def test_errors_are_not_stored(api: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "fix-and-retry"}
    bad = await api.post("/cubes", json=sample_cube_request(image="nope"), headers=headers)
    assert bad.status_code == 400
    good = await api.post("/cubes", json=sample_cube_request(), headers=headers)
    assert good.status_code == 201 and "Idempotency-Replayed" not in good.headers


async def test_children_creates_replay(api: httpx.AsyncClient) -> None:
    cube = await create_cube(api)
    base = f"/cubes/{cube['id']}"
    for path, body in [
        ("/tcp-mappings", {"cubePort": 5432}),
        ("/domains", {"domain": "api.example.com", "port": 8080}),
        ("/snapshots", {"name": "before-upgrade"}),
    ]:
        headers = {"Idempotency-Key": f"key{path}"}
        first = await api.post(base + path, json=body, headers=headers)
        assert first.status_code == 201, (path, first.text)
        second = await api.post(base + path, json=body, headers=headers)
        assert second.status_code == 201, path
        assert second.headers["Idempotency-Replayed"] == "true"
        assert second.content == first.content
    mappings = (await api.get(base + "/tcp-mappings")).json()["tcpMappings"]
    assert [m["cubePort"] for m in mappings] == [22, 5432]
    assert len((await api.get(base + "/domains")).json()["domains"]) == 1
    assert len((await api.get(base + "/snapshots")).json()["snapshots"]) == 1


async def test_keys_expire_after_24_simulated_hours() -> None:
    # 24 h at 200000x is 0.43 s.
    async with krova_test_simulator(time_scale=200_000.0) as sim, httpx.AsyncClient(
        base_url=f"{sim.url}/spaces/sp_test", headers={"X-API-KEY": "kro_test_key"}
    ) as api:
        headers = {"Idempotency-Key": "expiring"}
        first = await api.post("/cubes", json=sample_cube_request(), headers=headers)
        replay = await api.post("/cubes", json=sample_cube_request(), headers=headers)
        assert replay.headers.get("Idempotency-Replayed") == "true"
        await asyncio.sleep(0.6)
        fresh = await api.post("/cubes", json=sample_cube_request(), headers=headers)
        assert fresh.status_code == 201 and "Idempotency-Replayed" not in fresh.headers
        assert fresh.json()["cube"]["id"] != first.json()["cube"]["id"]
