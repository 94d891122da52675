"""Locations, host nodes, presets, the VM lifecycle, power status and billing, delete,
paging, capacity exhaustion, tags and organization SSH keys."""

from __future__ import annotations

from decimal import Decimal

import httpx

from cloudsim import VoltageParkSimulator
from cloudsim.testing import wait_for_voltagepark_status
from cloudsim.voltagepark import LOCATIONS, PRESETS

from .conftest import PRESET_8X, MakeVm, vm_body

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3mHc2l9n0b6rYc0b4l8uYbq1o1J4p2iZ0cW5v9Xk8 me"


async def test_locations_and_hostnodes(api: httpx.AsyncClient) -> None:
    page = (await api.get("/locations/")).json()
    assert page["total_result_count"] == len(LOCATIONS) == 2
    assert page["has_previous"] is False and page["has_next"] is False
    location = page["results"][0]
    assert set(location) == {"id", "city", "region", "country", "hostnodes"}
    node = location["hostnodes"][0]
    assert node["available_resources"] == {"gpus": {"h100-sxm5-80gb": {"count": 8}},
                                           "ram_gb": 960, "storage_gb": 14000,
                                           "vcpu_count": 208}
    assert node["pricing"]["per_gpu_hr"] == {"h100-sxm5-80gb": "3.500000"}
    assert len(node["available_ports"]) == 100
    one = (await api.get("/locations/", params={"limit": 1, "offset": 1})).json()
    assert one["has_previous"] is True and one["has_next"] is False
    assert (await api.get(f"/locations/{location['id']}")).json() == location
    assert (await api.get(f"/hostnodes/{node['id']}")).json() == node
    # the slash-less list alias answers the same
    assert (await api.get("/locations")).json() == page


async def test_presets_and_available_filter(anon: httpx.AsyncClient,
                                            admin: httpx.AsyncClient) -> None:
    presets = (await anon.get("/instant-deploy-presets/")).json()
    assert [p["id"] for p in presets] == [p.id for p in PRESETS]
    first = presets[0]
    assert set(first) == {"id", "resources", "operating_system", "compute_rate_hourly",
                          "storage_rate_hourly", "location_ids_with_availability"}
    assert first["resources"]["gpus"] == {"h100-sxm5-80gb": {"count": 1}}
    assert first["compute_rate_hourly"] == "3.500136"  # 3.5 + 4*0.00003 + 16*0.000001
    assert first["storage_rate_hourly"] == "0.000040"
    assert len(first["location_ids_with_availability"]) == 2
    single = (await anon.get(f"/instant-deploy-presets/{first['id']}")).json()
    assert single == first
    # Leave 4 GPUs in one location, none in the other: 8x presets are unavailable.
    await admin.put(f"/locations/{LOCATIONS[0].id}/capacity", json={"gpus": 4})
    await admin.put(f"/locations/{LOCATIONS[1].id}/capacity", json={"gpus": 0})
    available = (await anon.get("/instant-deploy-presets/", params={"available": "true"})).json()
    assert [p["resources"]["gpus"]["h100-sxm5-80gb"]["count"] for p in available] == [1, 2, 4]
    assert available[0]["location_ids_with_availability"] == [LOCATIONS[0].id]
    unavailable = (await anon.get("/instant-deploy-presets/",
                                  params={"available": "false"})).json()
    assert [p["id"] for p in unavailable] == [PRESET_8X]


async def test_create_provisioning_then_running(api: httpx.AsyncClient,
                                                make_vm: MakeVm) -> None:
    vm_id = await make_vm(wait=None, name="web", tags=["cube-operator-uid:abc", "x"])
    vm = (await api.get(f"/virtual-machines/{vm_id}")).json()
    assert vm["status"] == "Provisioning"
    assert vm["public_ip"] is None and vm["port_forwards"] == []
    assert vm["type"] == "ondem" and vm["name"] == "web"
    assert vm["tags"] == ["cube-operator-uid:abc", "x"]
    assert vm["timestamp_creation"].endswith("Z")
    assert vm["resources"] == {"gpus": {"h100-sxm5-80gb": {"count": 1}}, "vcpu_count": 4,
                               "ram_gb": 16, "storage_gb": 40}
    running = await wait_for_voltagepark_status(api, vm_id, "Running")
    assert running["public_ip"].startswith("147.185.")
    [forward] = running["port_forwards"]
    assert forward["internal_port"] == 22 and 20000 <= forward["external_port"] < 22000
    node = (await api.get(f"/hostnodes/{running['hostnode_id']}")).json()
    assert node["available_resources"]["gpus"]["h100-sxm5-80gb"]["count"] == 7
    assert forward["external_port"] not in node["available_ports"]
    assert running["pricing"] == {
        "gpus_per_hr": "3.500000", "vcpus_per_hr": "0.000120", "ram_per_hr": "0.000016",
        "storage_per_hr": "0.000040", "total_associated_per_hr": "3.500176",
        "total_disassociated_per_hr": "0.000040"}


async def test_power_status_and_billing(api: httpx.AsyncClient, make_vm: MakeVm) -> None:
    vm_id = await make_vm()
    rate = (await api.get("/billing/hourly-rate")).json()
    assert rate == {"rate_hourly": "3.500176"}
    power = f"/virtual-machines/{vm_id}/power-status"
    stopped = await api.put(power, json={"status": "stopped"})
    assert stopped.status_code == 200 and stopped.json() == {"status": "stopped"}
    assert (await api.get(f"/virtual-machines/{vm_id}")).json()["status"] == "Stopping"
    vm = await wait_for_voltagepark_status(api, vm_id, "Stopped")
    assert vm["port_forwards"]  # a stopped VM keeps its host node and port
    assert (await api.get("/billing/hourly-rate")).json() == {"rate_hourly": "3.500176"}
    assert (await api.put(power, json={"status": "started"})).status_code == 200
    await wait_for_voltagepark_status(api, vm_id, "Running")
    assert (await api.put(power, json={"status": "stopped_disassociated"})).json() == {
        "status": "stopped_disassociated"}
    vm = await wait_for_voltagepark_status(api, vm_id, "StoppedDisassociated")
    assert vm["public_ip"] is None and vm["port_forwards"] == []
    assert (await api.get("/billing/hourly-rate")).json() == {"rate_hourly": "0.000040"}
    node = (await api.get(f"/hostnodes/{vm['hostnode_id']}")).json()
    assert node["available_resources"]["gpus"]["h100-sxm5-80gb"]["count"] == 8
    assert (await api.put(power, json={"status": "stopped"})).status_code == 200  # no-op
    assert (await api.put(power, json={"status": "started"})).status_code == 200
    vm = await wait_for_voltagepark_status(api, vm_id, "Running")
    assert vm["port_forwards"] and Decimal(
        (await api.get("/billing/hourly-rate")).json()["rate_hourly"]) == Decimal("3.500176")


async def test_disassociated_start_relocates_or_fails(
    api: httpx.AsyncClient, admin: httpx.AsyncClient, make_vm: MakeVm,
) -> None:
    vm_id = await make_vm()
    power = f"/virtual-machines/{vm_id}/power-status"
    await api.put(power, json={"status": "stopped_disassociated"})
    before = await wait_for_voltagepark_status(api, vm_id, "StoppedDisassociated")
    for loc in LOCATIONS:
        await admin.put(f"/locations/{loc.id}/capacity", json={"gpus": 0})
    refused = await api.put(power, json={"status": "started"})
    assert refused.status_code == 400 and "capacity" in refused.json()["detail"]
    await admin.put(f"/locations/{LOCATIONS[1].id}/capacity", json={"gpus": 8})
    assert (await api.put(power, json={"status": "started"})).status_code == 200
    assert (await api.get(f"/virtual-machines/{vm_id}")).json()["status"] == "Relocating"
    after = await wait_for_voltagepark_status(api, vm_id, "Running")
    assert after["hostnode_id"] != before["hostnode_id"]
    assert after["public_ip"] and after["port_forwards"]


async def test_power_refused_while_provisioning_or_terminating(
    api: httpx.AsyncClient, make_vm: MakeVm,
) -> None:
    vm_id = await make_vm(wait=None)
    power = f"/virtual-machines/{vm_id}/power-status"
    assert (await api.put(power, json={"status": "stopped"})).status_code == 400
    assert (await api.put(power, json={"status": "started"})).status_code == 200  # no-op
    await api.delete(f"/virtual-machines/{vm_id}")
    assert (await api.put(power, json={"status": "started"})).status_code == 400


async def test_delete_then_gone(api: httpx.AsyncClient, make_vm: MakeVm) -> None:
    vm_id = await make_vm()
    response = await api.delete(f"/virtual-machines/{vm_id}")
    assert response.status_code == 202 and response.json() is None
    listed = (await api.get("/virtual-machines/")).json()
    assert [v["status"] for v in listed["results"]] == ["Terminating"]
    assert (await api.delete(f"/virtual-machines/{vm_id}")).status_code == 202
    await wait_for_voltagepark_status(api, vm_id, "gone")
    listed = (await api.get("/virtual-machines/")).json()
    assert listed == {"results": [], "total_result_count": 0, "has_previous": False,
                      "has_next": False}
    assert (await api.delete(f"/virtual-machines/{vm_id}")).status_code == 404
    assert (await api.get("/billing/hourly-rate")).json() == {"rate_hourly": "0.000000"}


async def test_paging(api: httpx.AsyncClient, make_vm: MakeVm) -> None:
    ids = [await make_vm(wait=None, name=f"vm-{i}") for i in range(5)]
    default = (await api.get("/virtual-machines/")).json()
    assert [v["id"] for v in default["results"]] == ids
    assert default["total_result_count"] == 5
    assert default["has_next"] is False and default["has_previous"] is False
    first = (await api.get("/virtual-machines/", params={"limit": 2})).json()
    assert [v["id"] for v in first["results"]] == ids[:2]
    assert first["has_next"] is True and first["has_previous"] is False
    middle = (await api.get("/virtual-machines/", params={"limit": 2, "offset": 2})).json()
    assert [v["id"] for v in middle["results"]] == ids[2:4]
    assert middle["has_next"] is True and middle["has_previous"] is True
    last = (await api.get("/virtual-machines", params={"limit": 2, "offset": 4})).json()
    assert [v["id"] for v in last["results"]] == ids[4:]
    assert last["has_next"] is False and last["has_previous"] is True
    assert last["total_result_count"] == 5
    past = (await api.get("/virtual-machines/", params={"offset": 10})).json()
    assert past["results"] == [] and past["total_result_count"] == 5
    assert (await api.get("/virtual-machines/", params={"limit": 100})).status_code == 200


async def test_capacity_exhaustion_and_recovery(
    api: httpx.AsyncClient, admin: httpx.AsyncClient, make_vm: MakeVm,
) -> None:
    # 4 host nodes of 8 GPUs: four 8x VMs fill the fleet.
    for i in range(4):
        await make_vm(wait=None, config_id=PRESET_8X, name=f"big-{i}")
    full = await api.post("/virtual-machines/instant", json=vm_body(name="one-more"))
    assert full.status_code == 400 and "capacity" in full.json()["detail"]
    locations = (await admin.get("/locations")).json()["locations"]
    assert [loc["gpus"] for loc in locations] == [0, 0]
    await admin.put(f"/locations/{LOCATIONS[1].id}/capacity", json={"gpus": 1})
    vm_id = await make_vm(wait="Running", name="fits")
    vm = (await api.get(f"/virtual-machines/{vm_id}")).json()
    assert vm["hostnode_id"] in LOCATIONS[1].hostnodes
    assert (await api.post("/virtual-machines/instant", json=vm_body())).status_code == 400
    # Terminating a VM gives its GPUs back once it is Terminated.
    listed = (await api.get("/virtual-machines/")).json()["results"]
    await api.delete(f"/virtual-machines/{listed[0]['id']}")
    await wait_for_voltagepark_status(api, listed[0]["id"], "gone")
    assert (await api.post("/virtual-machines/instant", json=vm_body())).status_code == 201


async def test_tags_create_list_patch(api: httpx.AsyncClient, make_vm: MakeVm) -> None:
    uid_tag = "cube-operator-uid:0f1e2d3c"
    vm_id = await make_vm(wait=None, tags=[uid_tag])
    await make_vm(wait=None, name="other")
    listed = (await api.get("/virtual-machines/")).json()["results"]
    found = [v for v in listed if uid_tag in v["tags"]]
    assert [v["id"] for v in found] == [vm_id]
    patched = await api.patch(f"/virtual-machines/{vm_id}",
                              json={"tags": [uid_tag, "env:test"]})
    assert patched.status_code == 200
    assert patched.json() == {"name": "vm-1", "tags": [uid_tag, "env:test"]}
    renamed = await api.patch(f"/virtual-machines/{vm_id}", json={"name": "renamed",
                                                                  "tags": None})
    assert renamed.json() == {"name": "renamed", "tags": [uid_tag, "env:test"]}
    vm = (await api.get(f"/virtual-machines/{vm_id}")).json()
    assert vm["name"] == "renamed" and vm["tags"] == [uid_tag, "env:test"]
    cleared = await api.patch(f"/virtual-machines/{vm_id}", json={"tags": []})
    assert cleared.json()["tags"] == []


async def test_org_ssh_keys(org: httpx.AsyncClient, api: httpx.AsyncClient,
                            admin: httpx.AsyncClient) -> None:
    created = await org.post("/organization/ssh-keys", json={"name": "My-SSH-Key 1",
                                                             "content": SSH_KEY})
    assert created.status_code == 201
    key = created.json()
    assert set(key) == {"id", "name", "content"} and key["content"] == SSH_KEY
    second = (await org.post("/organization/ssh-keys", json={
        "name": "second", "content": SSH_KEY.replace(" me", " two")})).json()
    dup = await org.post("/organization/ssh-keys", json={"name": "second",
                                                         "content": SSH_KEY})
    assert dup.status_code == 400
    assert (await org.post("/organization/ssh-keys", json={
        "name": "bad", "content": "not a key"})).status_code == 400
    short = await org.post("/organization/ssh-keys", json={"name": "ab", "content": SSH_KEY})
    assert short.status_code == 422 and short.json()["detail"][0]["type"] == "string_too_short"
    pattern = await org.post("/organization/ssh-keys", json={"name": "a_b!",
                                                             "content": SSH_KEY})
    assert pattern.json()["detail"][0]["type"] == "string_pattern_mismatch"
    page = (await org.get("/organization/ssh-keys")).json()
    assert page["total_result_count"] == 2 and page["has_next"] is False
    limited = (await org.get("/organization/ssh-keys", params={"limit": 1})).json()
    assert limited["has_next"] is True and len(limited["results"]) == 1
    # modes all / selective / none reach the VM
    for mode, expected in [({"mode": "all"}, 2), ({"mode": "none"}, 0),
                           ({"mode": "selective", "ssh_key_ids": [second["id"]]}, 1)]:
        response = await api.post("/virtual-machines/instant", json=vm_body(
            organization_ssh_keys=mode, ssh_keys=["ssh-rsa AAAAB3Nza extra"]))
        assert response.status_code == 201
    vms = (await admin.get("/vms")).json()["vms"]
    assert [len(v["ssh_keys"]) for v in vms] == [3, 1, 2]
    unknown = await api.post("/virtual-machines/instant", json=vm_body(
        organization_ssh_keys={"mode": "selective",
                               "ssh_key_ids": ["123e4567-e89b-12d3-a456-426614174000"]}))
    assert unknown.status_code == 400
    assert (await org.delete(f"/organization/ssh-keys/{key['id']}")).status_code == 204
    assert (await org.delete(f"/organization/ssh-keys/{key['id']}")).status_code == 404
    assert (await org.get("/organization/ssh-keys")).json()["total_result_count"] == 1


async def test_forced_statuses_and_outbid_knob(
    api: httpx.AsyncClient, admin: httpx.AsyncClient, make_vm: MakeVm,
    sim: VoltageParkSimulator,
) -> None:
    vm_id = await make_vm()
    forced = await admin.post(f"/vms/{vm_id}/status", json={"status": "Relocating"})
    assert forced.status_code == 200 and forced.json()["vm"]["status"] == "Relocating"
    assert (await api.get(f"/virtual-machines/{vm_id}")).json()["status"] == "Relocating"
    outbid = await admin.post(f"/vms/{vm_id}/status", json={"status": "Outbid"})
    assert outbid.json()["allocated"] is False
    assert (await api.get("/billing/hourly-rate")).json() == {"rate_hourly": "0.000040"}
    await api.put(f"/virtual-machines/{vm_id}/power-status", json={"status": "started"})
    await wait_for_voltagepark_status(api, vm_id, "Running")
    assert (await admin.post(f"/vms/{vm_id}/status", json={"status": "Nope"})).status_code == 400
    assert (await admin.post("/vms/unknown/status", json={"status": "Running"})).status_code \
        == 404
    await admin.put("/config", json={"outbid_after": 1})
    await wait_for_voltagepark_status(api, vm_id, "Outbid")
    assert sim.engine.settings.outbid_after == 1
    await admin.post(f"/vms/{vm_id}/status", json={"status": "Terminated"})
    assert (await api.get(f"/virtual-machines/{vm_id}")).status_code == 404
