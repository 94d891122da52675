"""Both auth headers as the seed splits them, the wrong one refused, organizations
isolated, unauthenticated endpoints open."""

from __future__ import annotations

import httpx

from cloudsim.testing import VOLTAGEPARK_API_KEY, voltagepark_test_simulator


async def test_bearer_endpoints(api: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    assert (await api.get("/virtual-machines/")).status_code == 200
    assert (await api.get("/locations/")).status_code == 200
    assert (await api.get("/billing/hourly-rate")).status_code == 200
    missing = await anon.get("/virtual-machines/")
    assert missing.status_code == 401
    assert missing.json() == {"detail": "Not authenticated"}
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    wrong = await anon.get("/virtual-machines/", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json() == {"detail": "Invalid API key"}
    basic = await anon.get("/locations/", headers={"Authorization": f"Basic {VOLTAGEPARK_API_KEY}"})
    assert basic.status_code == 401


async def test_x_api_token_endpoints(org: httpx.AsyncClient, api: httpx.AsyncClient,
                                     anon: httpx.AsyncClient) -> None:
    assert (await org.get("/organization/ssh-keys")).status_code == 200
    assert (await org.get("/storage/hourly-rate")).json() == {"hourly_rate_per_gb": "0.017408"}
    # Each endpoint takes only its own header.
    assert (await api.get("/organization/ssh-keys")).status_code == 401
    assert (await org.get("/virtual-machines/")).status_code == 401
    assert (await org.post("/virtual-machines/instant", json={})).status_code == 401
    bad = await anon.get("/organization/ssh-keys", headers={"x-api-token": "nope"})
    assert bad.status_code == 401 and bad.json() == {"detail": "Invalid API key"}


async def test_auth_before_validation(anon: httpx.AsyncClient) -> None:
    response = await anon.post("/virtual-machines/instant", json={"name": 1})
    assert response.status_code == 401


async def test_open_endpoints(anon: httpx.AsyncClient) -> None:
    assert (await anon.get("/instant-deploy-presets/")).status_code == 200
    body = {"type": "instant-vm", "content": {"runcmd": ["echo hi"]}}
    assert (await anon.post("/validate/cloudinit", json=body)).status_code == 200


async def test_organizations_are_isolated() -> None:
    other_org = "11111111-2222-3333-4444-555555555555"
    async with voltagepark_test_simulator(api_keys={"other": other_org}) as sim, \
            httpx.AsyncClient(base_url=sim.url, timeout=5.0) as client:
        mine = {"Authorization": f"Bearer {VOLTAGEPARK_API_KEY}"}
        theirs = {"Authorization": "Bearer other"}
        created = await client.post("/virtual-machines/instant", headers=mine, json={
            "config_id": sim.engine.presets()[0].id, "name": "a"})
        vm_id = created.json()["vm_id"]
        listed = (await client.get("/virtual-machines/", headers=theirs)).json()
        assert listed["total_result_count"] == 0
        assert (await client.get(f"/virtual-machines/{vm_id}", headers=theirs)).status_code == 404
        assert (await client.delete(f"/virtual-machines/{vm_id}", headers=theirs)).status_code == 404
        assert (await client.get(f"/virtual-machines/{vm_id}", headers=mine)).status_code == 200
