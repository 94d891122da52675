"""Cube CRUD, validation, pagination, lifecycle (provision, sleep/wake, restart,
delete), cost per hour and the failure knobs."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from cloudsim.testing import (
    create_cube,
    krova_test_simulator,
    sample_cube_request,
    wait_for,
    wait_for_cube_state,
)

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": 42}, "name"),
        ({"resources": None}, "resources"),
        ({"resources": {"vcpu": 0, "ramGb": 4, "diskGb": 30}}, "resources.vcpu"),
        ({"resources": {"vcpu": 1.5, "ramGb": 4, "diskGb": 30}}, "resources.vcpu"),
        ({"resources": {"vcpu": True, "ramGb": 4, "diskGb": 30}}, "resources.vcpu"),
        ({"resources": {"vcpu": 2, "ramGb": 0, "diskGb": 30}}, "resources.ramGb"),
        ({"resources": {"vcpu": 2, "ramGb": "4", "diskGb": 30}}, "resources.ramGb"),
        ({"resources": {"vcpu": 2, "ramGb": 4, "diskGb": -1}}, "resources.diskGb"),
        ({"resources": {"vcpu": 2, "ramGb": 4}}, "resources.diskGb"),
        ({"image": "windows-11"}, "image"),
        ({"image": None}, "image"),
        ({"region": "mars-1"}, "region"),
        ({"sshPublicKey": None}, "sshPublicKey"),
        ({"sshPublicKey": "ssh-foo AAAAB3NzaC1yc2E"}, "sshPublicKey"),
        ({"sshPublicKey": "ssh-ed25519"}, "sshPublicKey"),
        ({"userData": "x" * (16 * 1024 + 1)}, "userData"),
        ({"userData": 7}, "userData"),
    ],
)
async def test_create_validation_names_the_field(
    api: httpx.AsyncClient, overrides: dict[str, Any], field: str
) -> None:
    response = await api.post("/cubes", json=sample_cube_request(**overrides))
    assert response.status_code == 400
    assert field in response.json()["error"]
    assert (await api.get("/cubes")).json()["pagination"]["total"] == 0


@pytest.mark.parametrize(
    "key",
    [
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ user@host",
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY=",
        "ssh-dss AAAAB3NzaC1kc3MAAACBA",
        "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t",
        "sk-ecdsa-sha2-nistp256@openssh.com AAAAInNrLWVjZHNh",
    ],
)
async def test_all_documented_key_types_are_accepted(api: httpx.AsyncClient, key: str) -> None:
    response = await api.post("/cubes", json=sample_cube_request(sshPublicKey=key))
    assert response.status_code == 201, response.text


async def test_create_shape_and_provisioning(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    # Long enough phases (0.2 s each) that polling cannot miss one on a busy machine.
    await admin.put("/config", json={"provision_delay": 10, "boot_delay": 10})
    response = await api.post(
        "/cubes", json=sample_cube_request(userData="#cloud-config\n", region=None)
    )
    assert response.status_code == 201
    cube = response.json()["cube"]
    assert cube["id"].startswith("cube_")
    assert cube["state"] == "pending"
    assert cube["publicIpv4"] is None
    assert cube["resources"] == {"vcpu": 2, "ramGb": 4, "diskGb": 30}
    assert cube["sshUser"] == "ubuntu"
    assert cube["terminationProtection"] is False
    assert cube["costPerHour"] == 0.0135  # the seed's example
    assert ISO_MS.match(cube["createdAt"]) and ISO_MS.match(cube["updatedAt"])
    assert "serverDomain" not in cube

    seen: list[str] = []

    async def running() -> dict[str, Any] | None:
        got = (await api.get(f"/cubes/{cube['id']}")).json()["cube"]
        if not seen or seen[-1] != got["state"]:
            seen.append(got["state"])
        return got if got["state"] == "running" else None

    final = await wait_for(running, interval=0.01)
    assert seen == ["pending", "booting", "running"]
    assert final["publicIpv4"] and final["publicIpv4"].startswith("203.0.113.")
    assert final["serverDomain"] == "sv1.eu-nuremberg.krova.cloud"  # first region default
    listed = (await api.get("/cubes")).json()["cubes"]
    assert listed[0]["id"] == cube["id"] and "serverDomain" not in listed[0]


async def test_unknown_cube_is_404(api: httpx.AsyncClient) -> None:
    for method, path in [("GET", "/cubes/cube_nope"), ("DELETE", "/cubes/cube_nope"),
                         ("POST", "/cubes/cube_nope/sleep"), ("POST", "/cubes/cube_nope/wake")]:
        response = await api.request(method, path)
        assert response.status_code == 404, (method, path)
        assert response.json() == {"error": "Cube not found"}


async def test_pagination(api: httpx.AsyncClient) -> None:
    ids = [
        (await api.post("/cubes", json=sample_cube_request(name=f"c{i}"))).json()["cube"]["id"]
        for i in range(13)
    ]
    first = (await api.get("/cubes")).json()
    assert first["pagination"] == {"page": 1, "limit": 10, "total": 13, "totalPages": 2}
    assert [c["id"] for c in first["cubes"]] == ids[:10]
    second = (await api.get("/cubes", params={"page": 2})).json()
    assert [c["id"] for c in second["cubes"]] == ids[10:]
    small = (await api.get("/cubes", params={"page": 3, "limit": 5})).json()
    assert [c["id"] for c in small["cubes"]] == ids[10:]
    assert small["pagination"]["totalPages"] == 3
    beyond = (await api.get("/cubes", params={"page": 9})).json()
    assert beyond["cubes"] == [] and beyond["pagination"]["total"] == 13
    capped = (await api.get("/cubes", params={"limit": 500})).json()
    assert capped["pagination"]["limit"] == 100 and len(capped["cubes"]) == 13
    for bad in ({"page": 0}, {"limit": "ten"}, {"limit": -1}):
        response = await api.get("/cubes", params=bad)
        assert response.status_code == 400, bad


async def test_delete_is_asynchronous_and_repeatable(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    cube = await create_cube(api)
    await admin.put("/config", json={"delete_delay": 25})  # 0.5 s in "stopping"
    mappings = (await api.get(f"/cubes/{cube['id']}/tcp-mappings")).json()["tcpMappings"]
    assert len(mappings) == 1
    response = await api.delete(f"/cubes/{cube['id']}")
    assert response.status_code == 200 and response.json() == {"success": True}
    state = (await api.get(f"/cubes/{cube['id']}")).json()["cube"]["state"]
    assert state == "stopping"
    again = await api.delete(f"/cubes/{cube['id']}")
    assert again.status_code == 200 and again.json() == {"success": True}
    await wait_for_cube_state(api, cube["id"], "deleted")

    async def gone() -> bool:
        return (await api.get(f"/cubes/{cube['id']}")).status_code == 404

    await wait_for(gone)
    assert (await api.delete(f"/cubes/{cube['id']}")).status_code == 404
    assert (await api.get("/cubes")).json()["pagination"]["total"] == 0


async def test_delete_during_provisioning(api: httpx.AsyncClient) -> None:
    cube = await create_cube(api, wait=None)
    assert (await api.delete(f"/cubes/{cube['id']}")).status_code == 200
    final = await wait_for_cube_state(api, cube["id"], "deleted")
    assert final["costPerHour"] == 0


async def test_sleep_wake_and_wrong_states(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    await admin.put("/config", json={"provision_delay": 25})  # 0.5 s in "pending"
    cube = await create_cube(api, wait=None)
    early = await api.post(f"/cubes/{cube['id']}/sleep")
    assert early.status_code == 422 and "pending" in early.json()["error"]
    await wait_for_cube_state(api, cube["id"], "running")
    assert (await api.post(f"/cubes/{cube['id']}/wake")).status_code == 422

    slept = await api.post(f"/cubes/{cube['id']}/sleep")
    assert slept.status_code == 200 and slept.json() == {"success": True}
    # Compute billing stops at once, while the Cube is still stopping.
    assert (await api.get(f"/cubes/{cube['id']}")).json()["cube"]["costPerHour"] == 0.0015
    stopped = await wait_for_cube_state(api, cube["id"], "stopped")
    assert stopped["costPerHour"] == 0.0015  # disk only: 30 GB x 0.00005
    assert (await api.post(f"/cubes/{cube['id']}/sleep")).status_code == 422

    await admin.put("/config", json={"boot_delay": 25})
    woke = await api.post(f"/cubes/{cube['id']}/wake")
    assert woke.status_code == 200 and woke.json() == {"success": True}
    assert (await api.get(f"/cubes/{cube['id']}")).json()["cube"]["state"] == "booting"
    running = await wait_for_cube_state(api, cube["id"], "running")
    assert running["publicIpv4"] == stopped["publicIpv4"]


async def test_power_off_is_sleep(api: httpx.AsyncClient) -> None:
    cube = await create_cube(api)
    assert (await api.post(f"/cubes/{cube['id']}/power-off")).status_code == 200
    await wait_for_cube_state(api, cube["id"], "stopped")
    assert (await api.post(f"/cubes/{cube['id']}/power-off")).status_code == 422


async def test_restart_only_when_running(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    cube = await create_cube(api)
    await admin.put("/config", json={"stop_delay": 25})
    assert (await api.post(f"/cubes/{cube['id']}/restart")).status_code == 200
    again = await api.post(f"/cubes/{cube['id']}/restart")
    assert again.status_code == 409
    await admin.put("/config", json={"stop_delay": 1})
    await wait_for_cube_state(api, cube["id"], "running")
    await api.post(f"/cubes/{cube['id']}/sleep")
    await wait_for_cube_state(api, cube["id"], "stopped")
    assert (await api.post(f"/cubes/{cube['id']}/restart")).status_code == 409


@pytest.mark.parametrize(
    ("resources", "running", "stopped"),
    [
        # (vcpu*0.001 + ram*0.0025 + disk*0.00005) * tier multiplier; stopped: disk part.
        ({"vcpu": 1, "ramGb": 1, "diskGb": 10}, 0.004, 0.0005),
        ({"vcpu": 4, "ramGb": 8, "diskGb": 80}, 0.0266, 0.0038),
        ({"vcpu": 8, "ramGb": 16, "diskGb": 160}, 0.0476, 0.0068),
        ({"vcpu": 16, "ramGb": 0.5, "diskGb": 100}, 0.0178, 0.004),
    ],
)
async def test_cost_per_hour_follows_tiers(
    api: httpx.AsyncClient, resources: dict[str, Any], running: float, stopped: float
) -> None:
    cube = await create_cube(api, resources=resources)
    assert cube["costPerHour"] == pytest.approx(running, abs=1e-9)
    await api.post(f"/cubes/{cube['id']}/sleep")
    slept = await wait_for_cube_state(api, cube["id"], "stopped")
    assert slept["costPerHour"] == pytest.approx(stopped, abs=1e-9)


async def test_termination_protection(api: httpx.AsyncClient) -> None:
    cube = await create_cube(api, wait=None, terminationProtection=True)
    assert cube["terminationProtection"] is True
    assert cube["terminationProtectionChangedAt"] is not None
    refused = await api.delete(f"/cubes/{cube['id']}")
    assert refused.status_code == 422 and "termination protection" in refused.json()["error"]
    bad = await api.patch(f"/cubes/{cube['id']}", json={"terminationProtection": "no"})
    assert bad.status_code == 400
    patched = await api.patch(f"/cubes/{cube['id']}", json={"terminationProtection": False})
    assert patched.status_code == 200
    assert patched.json()["cube"]["terminationProtection"] is False
    assert (await api.delete(f"/cubes/{cube['id']}")).status_code == 200


async def test_boot_failure_knob_puts_cube_in_error(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    assert (await admin.put("/config", json={"fail_next_boots": 1})).status_code == 200
    failed = await create_cube(api, wait="error")
    assert failed["costPerHour"] == 0.0015  # no compute in error
    ok = await create_cube(api)
    assert ok["state"] == "running"
    # An error Cube can still be deleted.
    assert (await api.delete(f"/cubes/{failed['id']}")).status_code == 200


async def test_forced_state_from_admin(api: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    cube = await create_cube(api)
    forced = await admin.post(f"/cubes/{cube['id']}/state", json={"state": "error"})
    assert forced.status_code == 200 and forced.json()["cube"]["state"] == "error"
    assert (await api.get(f"/cubes/{cube['id']}")).json()["cube"]["state"] == "error"
    assert (await admin.post(f"/cubes/{cube['id']}/state", json={"state": "zzz"})).status_code == 400
    assert (await admin.post("/cubes/cube_nope/state", json={"state": "error"})).status_code == 404
    await admin.post(f"/cubes/{cube['id']}/state", json={"state": "deleted"})
    assert (await api.get(f"/cubes/{cube['id']}")).status_code == 404


async def test_insufficient_credits(api: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    cube = await create_cube(api)
    await api.post(f"/cubes/{cube['id']}/sleep")
    await wait_for_cube_state(api, cube["id"], "stopped")
    await admin.put("/config", json={"insufficient_credits": True})
    wake = await api.post(f"/cubes/{cube['id']}/wake")
    assert wake.status_code == 422 and "credits" in wake.json()["error"]
    assert (await api.post("/cubes", json=sample_cube_request())).status_code == 422


async def test_time_scale_slows_provisioning() -> None:
    # At real speed a Cube stays pending for 2 s; at 50x it is running within 0.5 s.
    async with krova_test_simulator(time_scale=1.0) as slow, httpx.AsyncClient(
        base_url=f"{slow.url}/spaces/sp_test", headers={"X-API-KEY": "kro_test_key"}
    ) as client:
        cube = await create_cube(client, wait=None)
        await asyncio.sleep(0.3)
        state = (await client.get(f"/cubes/{cube['id']}")).json()["cube"]["state"]
        assert state == "pending"
