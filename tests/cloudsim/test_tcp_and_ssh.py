"""TCP mappings (the automatic SSH row, host-port pool, whitelist) and PUT /ssh-port."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cloudsim.testing import create_cube, wait_for


async def _mappings(api: httpx.AsyncClient, cube_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/cubes/{cube_id}/tcp-mappings")
    assert response.status_code == 200
    rows: list[dict[str, Any]] = response.json()["tcpMappings"]
    return rows


async def test_ssh_row_is_created_at_first_boot(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    await admin.put("/config", json={"provision_delay": 10})
    cube = await create_cube(api, wait=None)
    assert await _mappings(api, cube["id"]) == []
    running = await wait_for(lambda: _running(api, cube["id"]))
    ssh = (await _mappings(api, cube["id"]))[0]
    assert ssh["isSsh"] is True and ssh["cubePort"] == 22 and ssh["status"] == "active"
    assert 30000 <= ssh["hostPort"] <= 32767
    assert ssh["host"] and ssh["whitelistedIps"] == []
    info = (await api.get(f"/cubes/{cube['id']}/ssh")).json()
    assert info["port"] == ssh["hostPort"] and info["user"] == running["sshUser"]
    assert info["host"] == ssh["host"]


async def _running(api: httpx.AsyncClient, cube_id: str) -> dict[str, Any] | None:
    cube: dict[str, Any] = (await api.get(f"/cubes/{cube_id}")).json()["cube"]
    return cube if cube["state"] == "running" else None


async def test_create_list_delete_mapping(api: httpx.AsyncClient) -> None:
    cube = await create_cube(api)
    response = await api.post(
        f"/cubes/{cube['id']}/tcp-mappings",
        json={"cubePort": 5432, "label": "postgres", "whitelistedIps": ["1.2.3.4/32", "10.0.0.0/8"]},
    )
    assert response.status_code == 201
    mapping = response.json()["tcpMapping"]
    assert mapping["cubePort"] == 5432 and mapping["label"] == "postgres"
    assert mapping["isSsh"] is False and mapping["udpEnabled"] is True
    assert [w["cidr"] for w in mapping["whitelistedIps"]] == ["1.2.3.4/32", "10.0.0.0/8"]
    assert all(w["id"] for w in mapping["whitelistedIps"])
    rows = await _mappings(api, cube["id"])
    assert [r["cubePort"] for r in rows] == [22, 5432]
    assert rows[1]["hostPort"] != rows[0]["hostPort"]

    duplicate = await api.post(f"/cubes/{cube['id']}/tcp-mappings", json={"cubePort": 5432})
    assert duplicate.status_code == 409
    on_ssh = await api.post(f"/cubes/{cube['id']}/tcp-mappings", json={"cubePort": 22})
    assert on_ssh.status_code == 409

    deleted = await api.delete(f"/cubes/{cube['id']}/tcp-mappings/{mapping['id']}")
    assert deleted.status_code == 200 and deleted.json() == {"success": True}
    assert [r["cubePort"] for r in await _mappings(api, cube["id"])] == [22]
    missing = await api.delete(f"/cubes/{cube['id']}/tcp-mappings/{mapping['id']}")
    assert missing.status_code == 404


async def test_ssh_row_cannot_be_deleted(api: httpx.AsyncClient) -> None:
    cube = await create_cube(api)
    ssh = (await _mappings(api, cube["id"]))[0]
    response = await api.delete(f"/cubes/{cube['id']}/tcp-mappings/{ssh['id']}")
    assert response.status_code == 400
    assert "SSH" in response.json()["error"]
    assert len(await _mappings(api, cube["id"])) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "cubePort"),
        ({"cubePort": 0}, "cubePort"),
        ({"cubePort": 65536}, "cubePort"),
        ({"cubePort": "80"}, "cubePort"),
        ({"cubePort": 80, "whitelistedIps": ["300.1.1.1/32"]}, "whitelistedIps"),
        ({"cubePort": 80, "whitelistedIps": ["10.0.0.1/8"]}, "whitelistedIps"),
        ({"cubePort": 80, "whitelistedIps": "1.2.3.4/32"}, "whitelistedIps"),
        ({"cubePort": 80, "whitelistIps": ["nope"]}, "whitelistIps"),
        ({"cubePort": 80, "whitelistedIps": [f"10.0.{i // 256}.{i % 256}/32" for i in range(501)]},
         "whitelistedIps"),
        ({"cubePort": 80, "label": "x" * 101}, "label"),
        ({"cubePort": 80, "udpEnabled": "yes"}, "udpEnabled"),
    ],
)
async def test_mapping_validation(api: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    cube = await create_cube(api)
    response = await api.post(f"/cubes/{cube['id']}/tcp-mappings", json=body)
    assert response.status_code == 400
    assert field in response.json()["error"]


async def test_whitelist_alias_limit_and_udp(api: httpx.AsyncClient) -> None:
    cube = await create_cube(api)
    full = [f"10.1.{i // 256}.{i % 256}/32" for i in range(500)]
    response = await api.post(
        f"/cubes/{cube['id']}/tcp-mappings",
        json={"cubePort": 80, "whitelistedIps": full, "udpEnabled": False},
    )
    assert response.status_code == 201
    assert len(response.json()["tcpMapping"]["whitelistedIps"]) == 500
    assert response.json()["tcpMapping"]["udpEnabled"] is False
    alias = await api.post(
        f"/cubes/{cube['id']}/tcp-mappings", json={"cubePort": 81, "whitelistIps": ["2001:db8::/32"]}
    )
    assert [w["cidr"] for w in alias.json()["tcpMapping"]["whitelistedIps"]] == ["2001:db8::/32"]
    both = await api.post(
        f"/cubes/{cube['id']}/tcp-mappings",
        json={"cubePort": 82, "whitelistedIps": ["1.1.1.1"], "whitelistIps": ["2.2.2.2/32"]},
    )
    assert [w["cidr"] for w in both.json()["tcpMapping"]["whitelistedIps"]] == ["1.1.1.1/32"]


async def test_host_port_pool_exhaustion_is_503(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    await admin.put("/config", json={"host_port_min": 31000, "host_port_max": 31002})
    cube = await create_cube(api)  # takes 31000 for SSH
    first = await api.post(f"/cubes/{cube['id']}/tcp-mappings", json={"cubePort": 80})
    second = await api.post(f"/cubes/{cube['id']}/tcp-mappings", json={"cubePort": 443})
    assert {first.json()["tcpMapping"]["hostPort"], second.json()["tcpMapping"]["hostPort"]} == {
        31001, 31002,
    }
    exhausted = await api.post(f"/cubes/{cube['id']}/tcp-mappings", json={"cubePort": 8080})
    assert exhausted.status_code == 503 and exhausted.json()["error"]
    # Freeing a mapping returns its port to the pool.
    await api.delete(f"/cubes/{cube['id']}/tcp-mappings/{first.json()['tcpMapping']['id']}")
    again = await api.post(f"/cubes/{cube['id']}/tcp-mappings", json={"cubePort": 8080})
    assert again.status_code == 201 and again.json()["tcpMapping"]["hostPort"] == 31001
    # A pool widened downwards at runtime hands out its new lowest port.
    await admin.put("/config", json={"host_port_min": 30990})
    lower = await api.post(f"/cubes/{cube['id']}/tcp-mappings", json={"cubePort": 9090})
    assert lower.status_code == 201 and lower.json()["tcpMapping"]["hostPort"] == 30990


async def test_ssh_port_change(api: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    await admin.put("/config", json={"ssh_port_delay": 25})
    cube = await create_cube(api)
    path = f"/cubes/{cube['id']}/ssh-port"
    before = (await _mappings(api, cube["id"]))[0]
    await api.post(f"/cubes/{cube['id']}/tcp-mappings", json={"cubePort": 8080})

    for body in ({}, {"cubePort": None}, {"cubePort": 0}, {"cubePort": 70000}, {"cubePort": "22"}):
        response = await api.put(path, json=body)
        assert response.status_code == 400, body
        assert "cubePort" in response.json()["error"]
    used = await api.put(path, json={"cubePort": 8080})
    assert used.status_code == 409

    changed = await api.put(path, json={"cubePort": 2222})
    assert changed.status_code == 200
    assert changed.json() == {"success": True, "cubePort": 2222}
    ssh = (await _mappings(api, cube["id"]))[0]
    assert ssh["isSsh"] and ssh["cubePort"] == 2222 and ssh["status"] == "pending"
    assert ssh["hostPort"] == before["hostPort"] and ssh["id"] == before["id"]
    assert ssh["whitelistedIps"] == before["whitelistedIps"]
    busy = await api.put(path, json={"cubePort": 2200})
    assert busy.status_code == 409 and "in progress" in busy.json()["error"]

    async def active() -> bool:
        return (await _mappings(api, cube["id"]))[0]["status"] == "active"

    await wait_for(active)
    assert (await api.put(path, json={"cubePort": 2200})).status_code == 200


async def test_ssh_port_before_first_boot(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    await admin.put("/config", json={"provision_delay": 100})
    cube = await create_cube(api, wait=None)
    response = await api.put(f"/cubes/{cube['id']}/ssh-port", json={"cubePort": 2222})
    assert response.status_code == 422
    assert (await api.get(f"/cubes/{cube['id']}/ssh")).status_code == 404
