"""The server lifecycle in simulated time: provisioning, installing, running, stop,
start, reboot, rebuild, destroy, the IPv4 pool and rdns."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import httpx

from cloudsim.testing import wait_for, wait_for_server_status

from .conftest import MakeServer
from .test_nokyc_auth import assert_envelope


async def _statuses_until(api: httpx.AsyncClient, server_id: str, final: str) -> list[str]:
    seen: list[str] = []

    async def probe() -> bool:
        server = (await api.get(f"/servers/{server_id}")).json()
        if not seen or seen[-1] != server["status"]:
            seen.append(server["status"])
            if server["status"] != "running":
                assert server["ipv4"] is None and server["ipv6"] is None
        return bool(server["status"] == final)

    await wait_for(probe, interval=0.005)
    return seen


async def test_create_installs_then_runs(
    api: httpx.AsyncClient, admin: httpx.AsyncClient, make_server: MakeServer
) -> None:
    # 10 + 10 simulated seconds: 0.2 s + 0.2 s at 50x.
    await admin.put("/config", json={"provision_delay": 10, "install_delay": 10})
    created = await make_server(wait=None)
    assert created["status"] == "provisioning"
    assert created["ipv4"] is None and created["ipv6"] is None
    assert created["id"].startswith("srv_") and created["object"] == "server"
    assert await _statuses_until(api, created["id"], "running") == [
        "provisioning", "installing", "running",
    ]
    server = (await api.get(f"/servers/{created['id']}")).json()
    assert set(server) == {
        "id", "object", "name", "status", "plan", "region", "image", "ipv4", "ipv6",
        "ssh_keys", "tags", "labels", "created_at", "updated_at",
    }
    assert server["ipv4"]["gateway"] == "198.51.100.1" and server["ipv4"]["rdns"] is None
    assert ipaddress.ip_address(server["ipv4"]["address"]) in ipaddress.ip_network(
        "198.51.100.0/25")
    prefix = ipaddress.ip_network(server["ipv6"]["prefix"])
    assert prefix.prefixlen == 64 and ipaddress.ip_address(server["ipv6"]["address"]) in prefix
    assert server["created_at"].endswith("Z") and len(server["created_at"]) == 20


async def test_stop_start_reboot(api: httpx.AsyncClient, make_server: MakeServer) -> None:
    server = await make_server()
    path = f"/servers/{server['id']}"
    assert_envelope(await api.post(f"{path}/start", json={}), 409, "conflict_state")

    stopping = await api.post(f"{path}/stop")
    assert stopping.status_code == 202 and stopping.json()["status"] == "running"
    # The stop is pending: a second power operation conflicts.
    error = assert_envelope(await api.post(f"{path}/reboot"), 409, "conflict_state")
    assert error["errors"][0]["operation"] == "stop"
    stopped = await wait_for_server_status(api, server["id"], "stopped")
    assert stopped["ipv4"] == server["ipv4"]  # addresses are kept while stopped
    assert_envelope(await api.post(f"{path}/stop"), 409, "conflict_state")
    assert_envelope(await api.post(f"{path}/reboot"), 409, "conflict_state")

    assert (await api.post(f"{path}/start", json={})).status_code == 202
    await wait_for_server_status(api, server["id"], "running")
    assert (await api.post(f"{path}/reboot", params={"hard": "true"})).status_code == 202
    assert_envelope(await api.post(f"{path}/reboot", params={"hard": "maybe"}), 400,
                    "invalid_request")
    assert_envelope(await api.post(f"{path}/stop", json={"force": True}), 400,
                    "invalid_request")


async def test_operations_need_the_right_status(
    api: httpx.AsyncClient, admin: httpx.AsyncClient, make_server: MakeServer
) -> None:
    await admin.put("/config", json={"provision_delay": 100000})
    server = await make_server(wait=None)
    path = f"/servers/{server['id']}"
    for action, body in (("stop", None), ("start", None), ("reboot", None),
                         ("rebuild", {"image": "ubuntu-24.04-cloud"}),
                         ("snapshots", {"name": "s"})):
        assert_envelope(await api.post(f"{path}/{action}", json=body), 409, "conflict_state")
    assert_envelope(await api.post("/servers/srv_00000000/stop"), 404, "not_found")


async def test_delete_destroys_then_404(api: httpx.AsyncClient, make_server: MakeServer) -> None:
    server = await make_server()
    other = await make_server(name="keep")
    deleted = await api.delete(f"/servers/{server['id']}")
    assert deleted.status_code == 202 and deleted.json()["status"] == "destroying"
    listed = (await api.get("/servers", params={"filter[status]": "destroying"})).json()["data"]
    assert [s["id"] for s in listed] == [server["id"]]
    assert_envelope(await api.delete(f"/servers/{server['id']}"), 409, "conflict_state")
    assert_envelope(await api.patch(f"/servers/{server['id']}", json={"name": "x"}), 409,
                    "conflict_state")
    await wait_for_server_status(api, server["id"], "gone")
    assert_envelope(await api.get(f"/servers/{server['id']}"), 404, "not_found")
    assert [s["id"] for s in (await api.get("/servers")).json()["data"]] == [other["id"]]
    assert_envelope(await api.delete(f"/servers/{server['id']}"), 404, "not_found")


async def test_delete_while_provisioning(
    api: httpx.AsyncClient, admin: httpx.AsyncClient, make_server: MakeServer
) -> None:
    await admin.put("/config", json={"provision_delay": 100000})
    server = await make_server(wait=None)
    assert (await api.delete(f"/servers/{server['id']}")).status_code == 202
    await wait_for_server_status(api, server["id"], "gone")


async def test_patch_updates_fields_and_updated_at(
    api: httpx.AsyncClient, make_server: MakeServer
) -> None:
    server = await make_server()
    await asyncio.sleep(1.05)  # updated_at has second resolution
    response = await api.patch(f"/servers/{server['id']}", json={
        "name": "edge-2", "tags": ["x"], "labels": {"owner": "dev", "tier": "1"}})
    assert response.status_code == 200
    patched = response.json()
    assert (patched["name"], patched["tags"], patched["labels"]) == (
        "edge-2", ["x"], {"owner": "dev", "tier": "1"})
    assert patched["updated_at"] > server["updated_at"]
    assert patched["created_at"] == server["created_at"]
    assert (await api.patch(f"/servers/{server['id']}", json={})).status_code == 200


async def test_rebuild_reinstalls(api: httpx.AsyncClient, make_server: MakeServer) -> None:
    server = await make_server()
    path = f"/servers/{server['id']}"
    rebuilt = await api.post(f"{path}/rebuild", json={"image": "ubuntu-24.04-cloud"})
    assert rebuilt.status_code == 202
    assert rebuilt.json()["status"] == "installing"
    assert rebuilt.json()["image"] == "ubuntu-24.04-cloud"
    assert rebuilt.json()["ipv4"] == server["ipv4"]
    assert_envelope(await api.post(f"{path}/rebuild", json={"image": "debian-13-minimal"}), 409,
                    "conflict_state")
    await wait_for_server_status(api, server["id"], "running")
    error = assert_envelope(await api.post(f"{path}/rebuild", json={"image": "nope"}), 400,
                            "invalid_request")
    assert error["errors"] == [{"field": "image", "issue": "not_found", "value": "nope"}]
    assert_envelope(await api.post(f"{path}/rebuild", json={}), 400, "invalid_request")
    assert_envelope(await api.post(f"{path}/rebuild", json={"image": "debian-12-minimal"}), 422,
                    "unprocessable")
    # A stopped server comes back running.
    await api.post(f"{path}/stop")
    await wait_for_server_status(api, server["id"], "stopped")
    assert (await api.post(f"{path}/rebuild", json={"image": "rocky-9-cloud"})).status_code == 202
    await wait_for_server_status(api, server["id"], "running")


async def test_time_scale_drives_the_lifecycle(
    api: httpx.AsyncClient, admin: httpx.AsyncClient, make_server: MakeServer
) -> None:
    # At 1x a 2 s install would outlast this test; at 50x it takes 40 ms.
    await admin.put("/config", json={"time_scale": 1, "install_delay": 2, "provision_delay": 0})
    server = await make_server(wait="installing")
    await asyncio.sleep(0.3)
    assert (await api.get(f"/servers/{server['id']}")).json()["status"] == "installing"
    await admin.put("/config", json={"time_scale": 500})
    await wait_for_server_status(api, server["id"], "running", timeout=3)


async def test_empty_ipv4_pool_stalls_provisioning(
    api: httpx.AsyncClient, admin: httpx.AsyncClient, make_server: MakeServer
) -> None:
    config = (await admin.put("/config", json={"ipv4_pool_remaining": {"buh": 0}})).json()
    assert config["ipv4_pool_remaining"]["buh"] == 0
    region = (await api.get("/regions/buh")).json()
    assert region["ipv4_pool_remaining"] == 0
    server = await make_server(wait=None, region="buh")
    await asyncio.sleep(0.3)
    assert (await api.get(f"/servers/{server['id']}")).json()["status"] == "provisioning"
    await admin.put("/config", json={"ipv4_pool_remaining": {"buh": 1}})
    running = await wait_for_server_status(api, server["id"], "running")
    assert running["ipv4"]["gateway"] == "203.0.113.129"
    assert (await api.get("/regions/buh")).json()["ipv4_pool_remaining"] == 0
    await api.delete(f"/servers/{server['id']}")
    await wait_for_server_status(api, server["id"], "gone")
    assert (await api.get("/regions/buh")).json()["ipv4_pool_remaining"] == 1
    bad = await admin.put("/config", json={"ipv4_pool_remaining": {"fra": 1}})
    assert bad.status_code == 400


async def test_rdns(api: httpx.AsyncClient, admin: httpx.AsyncClient,
                    make_server: MakeServer) -> None:
    server = await make_server()
    path = f"/servers/{server['id']}/rdns"
    response = await api.post(path, json={"ipv4": "edge.example.com"})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert body["ipv4"]["rdns"] == "edge.example.com" and body["ipv6"]["rdns"] is None
    both = (await api.post(path, json={"ipv4": None, "ipv6": "v6.example.com"})).json()
    assert both["ipv4"]["rdns"] is None and both["ipv6"]["rdns"] == "v6.example.com"
    for bad in ({}, {"ipv4": "not a host"}, {"ipv4": 4}, {"ptr": "x.example.com"}):
        assert_envelope(await api.post(path, json=bad), 400, "invalid_request")
    await admin.put("/config", json={"provision_delay": 100000})
    fresh = await make_server(wait=None, name="fresh")
    assert_envelope(await api.post(f"/servers/{fresh['id']}/rdns", json={"ipv4": "a.example.com"}),
                    409, "conflict_state")


async def test_admin_force_state(
    api: httpx.AsyncClient, admin: httpx.AsyncClient, make_server: MakeServer
) -> None:
    await admin.put("/config", json={"provision_delay": 100000})
    server = await make_server(wait=None)
    forced = await admin.post(f"/servers/{server['id']}/state", json={"state": "running"})
    assert forced.status_code == 200 and forced.json()["status"] == "running"
    assert forced.json()["ipv4"] is not None
    assert (await api.get(f"/servers/{server['id']}")).json()["status"] == "running"
    for state in ("stopped", "installing", "suspended"):
        await admin.post(f"/servers/{server['id']}/state", json={"state": state})
        assert (await api.get(f"/servers/{server['id']}")).json()["status"] == state
    assert (await admin.post(f"/servers/{server['id']}/state",
                             json={"state": "exploded"})).status_code == 400
    assert (await admin.post("/servers/srv_00000000/state",
                             json={"state": "running"})).status_code == 404
    await admin.post(f"/servers/{server['id']}/state", json={"state": "gone"})
    assert_envelope(await api.get(f"/servers/{server['id']}"), 404, "not_found")
