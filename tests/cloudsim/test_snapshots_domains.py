"""Snapshots (one in progress per Cube), restore rules and flow, custom domains."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cloudsim.testing import create_cube, wait_for, wait_for_cube_state


async def _snapshot_complete(api: httpx.AsyncClient, cube_id: str, snap_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        rows = (await api.get(f"/cubes/{cube_id}/snapshots")).json()["snapshots"]
        snap = next(s for s in rows if s["id"] == snap_id)
        return snap if snap["status"] == "complete" else None

    return await wait_for(probe)


async def test_snapshot_lifecycle(api: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    await admin.put("/config", json={"snapshot_delay": 25})
    cube = await create_cube(api)
    base = f"/cubes/{cube['id']}/snapshots"
    created = await api.post(base, json={"name": "before-upgrade"})
    assert created.status_code == 201
    snap = created.json()["snapshot"]
    assert snap["name"] == "before-upgrade" and snap["status"] == "pending"
    assert snap["sizeBytes"] is None and snap["completedAt"] is None
    assert snap["cubeId"] == cube["id"] and snap["spaceId"] == "sp_test"
    assert snap["kind"] == "manual"

    second = await api.post(base)
    assert second.status_code == 409 and "in progress" in second.json()["error"]

    done = await _snapshot_complete(api, cube["id"], snap["id"])
    assert done["sizeBytes"] > 0 and done["completedAt"]

    auto = await api.post(base)  # no body: name is generated
    assert auto.status_code == 201
    assert auto.json()["snapshot"]["name"].startswith(cube["name"])
    assert (await api.post(base, json={"name": 5})).status_code == 400

    deleted = await api.delete(f"{base}/{snap['id']}")
    assert deleted.status_code == 200 and deleted.json() == {"success": True}
    assert (await api.delete(f"{base}/{snap['id']}")).status_code == 404
    names = [s["name"] for s in (await api.get(base)).json()["snapshots"]]
    assert "before-upgrade" not in names and len(names) == 1


async def test_snapshot_needs_a_booted_cube(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    await admin.put("/config", json={"provision_delay": 100})
    cube = await create_cube(api, wait=None)
    response = await api.post(f"/cubes/{cube['id']}/snapshots")
    assert response.status_code == 422


async def test_restore_rules_and_flow(api: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    cube = await create_cube(api)
    other = await create_cube(api, name="other")
    snap = (await api.post(f"/cubes/{cube['id']}/snapshots")).json()["snapshot"]
    foreign = (await api.post(f"/cubes/{other['id']}/snapshots")).json()["snapshot"]
    restore = f"/cubes/{cube['id']}/restore"

    assert (await api.post(restore, json={})).status_code == 400
    unknown = await api.post(restore, json={"snapshotId": "snap_nope"})
    assert unknown.status_code == 404
    pending = await api.post(restore, json={"snapshotId": snap["id"]})
    assert pending.status_code == 422 and "complete" in pending.json()["error"]
    await _snapshot_complete(api, other["id"], foreign["id"])
    wrong_cube = await api.post(restore, json={"snapshotId": foreign["id"]})
    assert wrong_cube.status_code == 422 and "another Cube" in wrong_cube.json()["error"]

    await _snapshot_complete(api, cube["id"], snap["id"])
    await admin.put("/config", json={"restore_delay": 25})
    ok = await api.post(restore, json={"snapshotId": snap["id"]})
    assert ok.status_code == 200 and ok.json() == {"success": True}
    assert (await api.get(f"/cubes/{cube['id']}")).json()["cube"]["state"] == "stopping"
    busy = await api.post(restore, json={"snapshotId": snap["id"]})
    assert busy.status_code == 422
    await wait_for_cube_state(api, cube["id"], "booting")
    await wait_for_cube_state(api, cube["id"], "running")


async def test_deleting_a_cube_removes_its_snapshots_and_children(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    cube = await create_cube(api)
    snap = (await api.post(f"/cubes/{cube['id']}/snapshots")).json()["snapshot"]
    await _snapshot_complete(api, cube["id"], snap["id"])
    await api.post(f"/cubes/{cube['id']}/domains", json={"domain": "a.example.com", "port": 80})
    await admin.put("/config", json={"delete_delay": 25})
    await api.delete(f"/cubes/{cube['id']}")
    blocked = await api.post(f"/cubes/{cube['id']}/tcp-mappings", json={"cubePort": 80})
    assert blocked.status_code == 422
    deleted = await wait_for_cube_state(api, cube["id"], "deleted")
    assert deleted["state"] == "deleted"
    assert (await api.get(f"/cubes/{cube['id']}/snapshots")).json()["snapshots"] == []
    assert (await api.get(f"/cubes/{cube['id']}/tcp-mappings")).json()["tcpMappings"] == []
    # The domain is free again for another Cube.
    again = await create_cube(api, name="again")
    reuse = await api.post(
        f"/cubes/{again['id']}/domains", json={"domain": "a.example.com", "port": 80}
    )
    assert reuse.status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"port": 80}, "domain"),
        ({"domain": "localhost", "port": 80}, "domain"),
        ({"domain": "bad_name.example.com", "port": 80}, "domain"),
        ({"domain": "-a.example.com", "port": 80}, "domain"),
        ({"domain": "1.2.3.4", "port": 80}, "domain"),
        ({"domain": "a" * 64 + ".example.com", "port": 80}, "domain"),
        ({"domain": "api.example.com"}, "port"),
        ({"domain": "api.example.com", "port": 0}, "port"),
        ({"domain": "api.example.com", "port": 65536}, "port"),
        ({"domain": "api.example.com", "port": 80, "securityHeadersMode": "x"},
         "securityHeadersMode"),
    ],
)
async def test_domain_validation(api: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    cube = await create_cube(api, wait=None)
    response = await api.post(f"/cubes/{cube['id']}/domains", json=body)
    assert response.status_code == 400
    assert field in response.json()["error"]


async def test_domain_lifecycle(api: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    await admin.put("/config", json={"domain_delay": 25})
    cube = await create_cube(api)
    base = f"/cubes/{cube['id']}/domains"
    created = await api.post(base, json={"domain": "API.Example.com", "port": 8080})
    assert created.status_code == 201
    domain = created.json()["domain"]
    assert domain["domain"] == "api.example.com" and domain["port"] == 8080
    assert domain["status"] == "pending" and domain["cubeId"] == cube["id"]
    records = created.json()["records"]
    assert records[0]["type"] == "CNAME" and records[0]["value"] == "dns.krova.cloud"
    assert (await api.post(base, json={"domain": "api.example.com", "port": 1})).status_code == 409

    check = (await api.get(f"{base}/{domain['id']}/records")).json()
    assert check["summary"] == {"found": 0, "total": 1, "complete": False}

    async def active() -> bool:
        rows = (await api.get(base)).json()["domains"]
        return rows[0]["status"] == "active"

    await wait_for(active)
    check = (await api.get(f"{base}/{domain['id']}/records")).json()
    assert check["summary"]["complete"] is True and check["records"][0]["state"] == "found"

    wildcard = await api.post(base, json={"domain": "*.apps.example.com", "port": 80})
    assert wildcard.status_code == 201
    assert wildcard.json()["domain"]["isWildcard"] is True
    assert len(wildcard.json()["records"]) == 3

    removed = await api.delete(f"{base}/{domain['id']}")
    assert removed.status_code == 200 and removed.json() == {"success": True}
    assert (await api.delete(f"{base}/{domain['id']}")).status_code == 404
    assert [d["domain"] for d in (await api.get(base)).json()["domains"]] == ["*.apps.example.com"]
