"""VMs: create/list/info shapes, the time-scaled lifecycle, state conflicts, the other
vm/* actions and the admin status override."""

from __future__ import annotations

import asyncio
import html
from typing import Any

import httpx

from cloudsim import LunaNodeSimulator
from cloudsim.testing import wait_for_vm_status

Call = Any
MakeVm = Any
VmInfo = Any

ROW_FIELDS = {"vm_id", "name", "region", "hostname", "primaryip", "privateip", "plan_id", "ram",
              "vcpu", "storage", "bandwidth"}


async def test_create_list_info(call: Call, ok: Call, api: httpx.AsyncClient) -> None:
    created = await ok("vm", "create", {"hostname": "web-1", "plan_id": "87",
                                        "image_id": "630902", "region": "toronto"})
    vm_id = created["vm_id"]
    assert set(created) == {"success", "vm_id"} and vm_id.isdigit()
    building = await ok("vm", "info", {"vm_id": vm_id})
    assert building["info"]["status_nohtml"] == "Building"
    assert building["info"]["status_raw"] == "build"
    assert building["info"]["ip"] == "" and building["extra"]["primaryip"] == ""
    assert building["info"]["privateip"].startswith("10.10.")
    online = await wait_for_vm_status(api, vm_id, "Online")
    info, extra = online["info"], online["extra"]
    assert info["status_raw"] == "active" and info["status_color"] == "green"
    assert html.unescape(info["status"]) == '<font color="green"><b>Online</b></font>'
    assert info["ip"].startswith("192.0.2.") and info["ip"] == extra["primaryip"]
    assert info["hostname"] == "web-1" and info["os"] == "Ubuntu 22.04 64-bit (template)"
    assert info["login_details"].startswith("username: ubuntu; password: ")
    assert info["bandwidthUsedGB"] == "0.00" and info["diskswap"] == "no"
    assert {a["addr"] for a in info["addresses"]} >= {info["ip"], info["privateip"]}
    assert extra == {"vm_id": vm_id, "name": "web-1", "region": "toronto", "hostname": "web-1",
                     "primaryip": info["ip"], "privateip": info["privateip"], "plan_id": "87",
                     "ram": "2048", "vcpu": "1", "storage": "30", "bandwidth": "2000"}
    listed = await ok("vm", "list")
    assert listed["vms"] == [extra]
    # vm/list carries no power state; vm/info does.
    assert set(listed["vms"][0]) == ROW_FIELDS


async def test_create_is_never_idempotent(ok: Call, make_vm: MakeVm) -> None:
    first = await make_vm(wait=None, hostname="cube-uid-1")
    second = await make_vm(wait=None, hostname="cube-uid-1")
    assert first != second
    rows = (await ok("vm", "list"))["vms"]
    assert [r["hostname"] for r in rows] == ["cube-uid-1", "cube-uid-1"]
    assert len({r["privateip"] for r in rows}) == 2


async def test_stop_start_reboot_delete(
    call: Call, ok: Call, api: httpx.AsyncClient, make_vm: MakeVm, vm_info: VmInfo,
) -> None:
    vm_id = await make_vm()
    ip = (await vm_info(vm_id))["ip"]
    await ok("vm", "stop", {"vm_id": vm_id})
    assert (await vm_info(vm_id))["status_nohtml"] == "Stopping"
    offline = await wait_for_vm_status(api, vm_id, "Offline")
    assert offline["info"]["status_raw"] == "shutoff" and offline["info"]["ip"] == ip
    assert await call("vm", "stop", {"vm_id": vm_id}) == {
        "success": "no", "error": "cannot stop vm while it is Offline"}
    await ok("vm", "start", {"vm_id": vm_id})
    assert (await vm_info(vm_id))["status_nohtml"] == "Starting"
    await wait_for_vm_status(api, vm_id, "Online")
    assert (await call("vm", "start", {"vm_id": vm_id}))["error"] == (
        "cannot start vm while it is Online")
    await ok("vm", "reboot", {"vm_id": vm_id})
    assert (await vm_info(vm_id))["status_nohtml"] == "Rebooting"
    assert (await call("vm", "stop", {"vm_id": vm_id}))["error"] == (
        "cannot stop vm while it is Rebooting")
    await wait_for_vm_status(api, vm_id, "Online")
    await ok("vm", "delete", {"vm_id": vm_id})
    assert (await vm_info(vm_id))["status_nohtml"] == "Deleting"
    await ok("vm", "delete", {"vm_id": vm_id})  # a repeat meanwhile is fine
    await wait_for_vm_status(api, vm_id, "gone")
    assert (await ok("vm", "list"))["vms"] == []
    assert (await call("vm", "delete", {"vm_id": vm_id}))["error"] == "invalid vm"
    # The address went back to the pool.
    again = await make_vm()
    assert (await vm_info(again))["ip"] == ip


async def test_reboot_starts_a_stopped_vm_and_delete_works_while_building(
    ok: Call, api: httpx.AsyncClient, make_vm: MakeVm, vm_info: VmInfo,
) -> None:
    vm_id = await make_vm()
    await ok("vm", "stop", {"vm_id": vm_id})
    await wait_for_vm_status(api, vm_id, "Offline")
    await ok("vm", "reboot", {"vm_id": vm_id})
    await wait_for_vm_status(api, vm_id, "Online")
    building = await make_vm(wait=None)
    await ok("vm", "delete", {"vm_id": building})
    await wait_for_vm_status(api, building, "gone")


async def test_lifecycle_follows_time_scale(
    ok: Call, api: httpx.AsyncClient, admin: httpx.AsyncClient, make_vm: MakeVm,
    vm_info: VmInfo,
) -> None:
    await admin.put("/config", json={"time_scale": 1.0, "build_delay": 0.3})
    vm_id = await make_vm(wait=None)
    await asyncio.sleep(0.1)
    assert (await vm_info(vm_id))["status_nohtml"] == "Building"
    await wait_for_vm_status(api, vm_id, "Online", timeout=3.0)
    await admin.put("/config", json={"time_scale": 1000.0, "stop_delay": 100.0})
    await ok("vm", "stop", {"vm_id": vm_id})
    await wait_for_vm_status(api, vm_id, "Offline", timeout=1.0)  # 100 s / 1000


async def test_failed_build_and_error_recovery(
    call: Call, ok: Call, api: httpx.AsyncClient, admin: httpx.AsyncClient, make_vm: MakeVm,
) -> None:
    await admin.put("/config", json={"fail_next_builds": 1})
    broken = await make_vm(wait="Error")
    info = (await ok("vm", "info", {"vm_id": broken}))["info"]
    assert info["status_raw"] == "error" and info["ip"] == ""
    assert (await call("vm", "start", {"vm_id": broken}))["error"] == (
        "cannot start vm while it is Error")
    healthy = await make_vm()
    assert healthy != broken
    await ok("vm", "reboot", {"vm_id": broken})
    await wait_for_vm_status(api, broken, "Online")


async def test_other_vm_actions(
    call: Call, ok: Call, api: httpx.AsyncClient, make_vm: MakeVm, vm_info: VmInfo,
) -> None:
    vm_id = await make_vm()
    await ok("vm", "rename", {"vm_id": vm_id, "hostname": "renamed"})
    row = (await ok("vm", "list"))["vms"][0]
    assert row["name"] == row["hostname"] == "renamed"
    ips = (await ok("vm", "iplist", {"vm_id": vm_id}))["ips"]
    assert ips == [{"ip": row["primaryip"], "private_ip": row["privateip"], "primary": "yes"}]
    vnc = await ok("vm", "vnc", {"vm_id": vm_id})
    assert vnc["vnc_url"].startswith("http") and "token=" in vnc["vnc_url"]
    await ok("vm", "diskswap", {"vm_id": vm_id})
    assert (await vm_info(vm_id))["diskswap"] == "yes"
    # resize: storage may only grow; the new plan shows once done.
    assert (await call("vm", "resize", {"vm_id": vm_id, "plan_id": "134"}))["error"] == (
        "cannot resize to a plan with less storage")
    await ok("vm", "resize", {"vm_id": vm_id, "plan_id": "m.4"})
    assert (await vm_info(vm_id))["status_nohtml"] == "Resizing"
    resized = await wait_for_vm_status(api, vm_id, "Online")
    assert resized["extra"]["plan_id"] == "88" and resized["extra"]["ram"] == "4096"
    # rescue, then a reboot leaves rescue mode.
    await ok("vm", "rescue", {"vm_id": vm_id})
    assert (await wait_for_vm_status(api, vm_id, "Rescue"))["info"]["status_raw"] == "rescue"
    await ok("vm", "reboot", {"vm_id": vm_id})
    await wait_for_vm_status(api, vm_id, "Online")
    # shelve / unshelve.
    await ok("vm", "shelve", {"vm_id": vm_id})
    await wait_for_vm_status(api, vm_id, "Shelved")
    assert (await call("vm", "start", {"vm_id": vm_id}))["error"] == (
        "cannot start vm while it is Shelved")
    assert (await call("vm", "vnc", {"vm_id": vm_id}))["error"] == (
        "cannot open the console of vm while it is Shelved")
    await ok("vm", "unshelve", {"vm_id": vm_id})
    await wait_for_vm_status(api, vm_id, "Online")


async def test_create_options_and_limits(
    call: Call, ok: Call, admin: httpx.AsyncClient, make_vm: MakeVm, vm_info: VmInfo,
) -> None:
    # m.16 is not sold in Roubaix; a Toronto image cannot boot in Montreal.
    assert (await call("vm", "create", {"hostname": "a", "plan_id": "90", "image_id": "630904",
                                        "region": "roubaix"}))["error"] == (
        "plan not available in this region")
    assert (await call("vm", "create", {"hostname": "a", "plan_id": "87", "image_id": "630902",
                                        "region": "montreal"}))["error"] == (
        "image is not in region montreal")
    montreal = await make_vm(region="montreal", image_id="630903")
    info = await vm_info(montreal)
    assert info["ip"].startswith("198.51.100.") and info["privateip"].startswith("10.20.")
    chosen = await make_vm(ip="192.0.2.77")
    assert (await vm_info(chosen))["ip"] == "192.0.2.77"
    assert (await call("vm", "create", {"hostname": "a", "plan_id": "87", "image_id": "630902",
                                        "ip": "192.0.2.77"}))["error"] == "invalid ip"
    # An image without a default user (the ISO): "password: P" only.
    iso = await make_vm(image_id="702770")
    assert (await vm_info(iso))["login_details"].startswith("password: ")
    await admin.put("/config", json={"vm_limit": 3})
    assert (await call("vm", "create", {"hostname": "a", "plan_id": "87",
                                        "image_id": "630902"}))["error"].startswith(
        "VM limit reached")


async def test_admin_forces_status(
    ok: Call, admin: httpx.AsyncClient, api: httpx.AsyncClient, make_vm: MakeVm,
    vm_info: VmInfo, sim: LunaNodeSimulator,
) -> None:
    vm_id = await make_vm()
    forced = await admin.post(f"/vms/{vm_id}/status", json={"status": "Offline"})
    assert forced.status_code == 200 and forced.json()["vm"]["status"] == "Offline"
    assert (await vm_info(vm_id))["status_nohtml"] == "Offline"
    await ok("vm", "start", {"vm_id": vm_id})
    await wait_for_vm_status(api, vm_id, "Online")
    # A forced Building stays until changed (the pending build is cancelled).
    building = await make_vm(wait=None)
    await admin.post(f"/vms/{building}/status", json={"status": "Error"})
    await asyncio.sleep(0.1)
    assert (await vm_info(building))["status_nohtml"] == "Error"
    listing = (await admin.get("/vms")).json()["vms"]
    assert [v["vm_id"] for v in listing] == [vm_id, building]
    assert listing[0]["password"] and listing[0]["row"]["vm_id"] == vm_id
    assert (await admin.post(f"/vms/{vm_id}/status", json={"status": "gone"})).status_code == 200
    await wait_for_vm_status(api, vm_id, "gone")
    bad = await admin.post(f"/vms/{building}/status", json={"status": "exploded"})
    assert bad.status_code == 400 and "Online" in bad.json()["error"]
    assert (await admin.post("/vms/1/status", json={"status": "Online"})).status_code == 404
    assert (await admin.post(f"/vms/{building}/status", json={})).status_code == 400
    assert sim.engine.vms[building].status == "Error"
