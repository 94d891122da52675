"""Images: the public catalogue, snapshots as images becoming active asynchronously,
booting and reimaging from them, image/delete; plans and regions."""

from __future__ import annotations

from typing import Any

import httpx

from cloudsim.testing import wait_for, wait_for_vm_status

Call = Any
MakeVm = Any
VmInfo = Any


async def _image_status(ok: Call, image_id: str) -> str:
    status: str = (await ok("image", "details", {"image_id": image_id}))["details"]["status"]
    return status


async def test_image_list_and_details(call: Call, ok: Call) -> None:
    images = (await ok("image", "list"))["images"]
    assert images and all(set(i) == {"image_id", "name", "status", "size", "region"}
                          for i in images)
    assert all(i["status"] == "active" and i["image_id"].isdigit() and i["size"].isdigit()
               for i in images)
    names = {i["name"] for i in images}
    assert "Ubuntu 24.04 64-bit (template)" in names
    assert any(n.endswith(" (ISO)") for n in names)
    assert all(n.endswith((" (template)", " (ISO)")) for n in names)
    assert {i["region"] for i in images} == {"toronto", "montreal", "roubaix"}
    toronto = (await ok("image", "list", {"region": "toronto"}))["images"]
    assert toronto and {i["region"] for i in toronto} == {"toronto"}
    # The same template has one id per region.
    ubuntu = [i["image_id"] for i in images if i["name"] == "Ubuntu 22.04 64-bit (template)"]
    assert len(ubuntu) == len(set(ubuntu)) == 3 and "630902" in ubuntu
    details = (await ok("image", "details", {"image_id": "630902"}))["details"]
    assert details["name"] == "Ubuntu 22.04 64-bit (template)" and details["region"] == "toronto"
    assert (await call("image", "delete", {"image_id": "630902"}))["error"] == (
        "cannot delete a public image")


async def test_plans_and_regions(ok: Call) -> None:
    plans = (await ok("plan", "list"))["plans"]
    fields = {"plan_id", "name", "vcpu", "price", "ram", "storage", "bandwidth"}
    assert all(fields <= set(p) for p in plans)
    assert all(isinstance(p[f], str) for p in plans for f in fields)
    small = next(p for p in plans if p["name"] == "m.1s")
    assert small["ram"] == "1024" and small["storage"] == "15" and small["vcpu"] == "1"
    assert small["price"] == "3.5" and small["price_monthly_nice"] == "$3.5"
    assert abs(float(small["price_hourly"]) * 730 - 3.5) < 0.05
    regions = (await ok("region", "list"))["regions"]
    assert regions == {"toronto": "Toronto", "montreal": "Montreal", "roubaix": "Roubaix"}


async def test_snapshot_becomes_an_active_image(
    call: Call, ok: Call, api: httpx.AsyncClient, make_vm: MakeVm, vm_info: VmInfo,
) -> None:
    vm_id = await make_vm()
    image_id = (await ok("vm", "snapshot", {"vm_id": vm_id, "name": "nightly-1"}))["image_id"]
    assert image_id.isdigit()
    assert await _image_status(ok, image_id) in ("queued", "saving")
    assert (await call("vm", "snapshot", {"vm_id": vm_id, "name": "again"}))["error"] == (
        "a snapshot of this vm is already in progress")
    # The VM keeps running while the snapshot is taken.
    assert (await vm_info(vm_id))["status_nohtml"] == "Online"

    async def active() -> bool:
        return await _image_status(ok, image_id) == "active"

    await wait_for(active)
    listed = [i for i in (await ok("image", "list"))["images"] if i["image_id"] == image_id]
    assert listed == [{"image_id": image_id, "name": "nightly-1", "status": "active",
                       "size": listed[0]["size"], "region": "toronto"}]
    assert int(listed[0]["size"]) > 0
    details = (await ok("image", "details", {"image_id": image_id}))["details"]
    assert details["source_vm_id"] == vm_id
    # Boot a new VM from the snapshot; reimage the first one with a template and back.
    clone = await make_vm(image_id=image_id, hostname="clone")
    assert (await vm_info(clone))["os"] == "nightly-1"
    await ok("vm", "reimage", {"vm_id": vm_id, "image_id": "702761"})
    assert (await vm_info(vm_id))["status_nohtml"] == "Rebuilding"
    rebuilt = await wait_for_vm_status(api, vm_id, "Online")
    assert rebuilt["info"]["os"] == "Ubuntu 24.04 64-bit (template)"
    assert (await call("vm", "reimage", {"vm_id": vm_id, "image_id": "630903"}))["error"] == (
        "image is not in region toronto")
    # Snapshots only of settled VMs.
    await ok("vm", "reboot", {"vm_id": vm_id})
    assert (await call("vm", "snapshot", {"vm_id": vm_id, "name": "x"}))["error"] == (
        "cannot snapshot vm while it is Rebooting")
    await ok("image", "delete", {"image_id": image_id})
    assert (await call("image", "details", {"image_id": image_id}))["error"] == "invalid image"


async def test_snapshot_failures_and_pending_images(
    call: Call, ok: Call, admin: httpx.AsyncClient, make_vm: MakeVm,
) -> None:
    vm_id = await make_vm()
    await admin.put("/config", json={"fail_next_snapshots": 1, "snapshot_delay": 0.5})
    broken = (await ok("vm", "snapshot", {"vm_id": vm_id, "name": "bad"}))["image_id"]

    async def killed() -> bool:
        return await _image_status(ok, broken) == "killed"

    await wait_for(killed)
    await admin.put("/config", json={"snapshot_delay": 10_000})
    pending = (await ok("vm", "snapshot", {"vm_id": vm_id, "name": "slow"}))["image_id"]
    assert (await call("vm", "create", {"hostname": "x", "plan_id": "87",
                                        "image_id": pending}))["error"] == "image is not active"
    forced = await admin.post(f"/images/{pending}/status", json={"status": "active"})
    assert forced.status_code == 200 and forced.json()["image"]["status"] == "active"
    assert (await call("vm", "create", {"hostname": "x", "plan_id": "87",
                                        "image_id": pending}))["success"] == "yes"
    assert (await admin.post("/images/630902/status", json={"status": "killed"})).status_code == (
        404)
    assert (await admin.post(f"/images/{pending}/status",
                             json={"status": "nope"})).status_code == 400


async def test_deleting_the_vm_kills_a_saving_snapshot(
    ok: Call, api: httpx.AsyncClient, admin: httpx.AsyncClient, make_vm: MakeVm,
) -> None:
    vm_id = await make_vm()
    await admin.put("/config", json={"snapshot_delay": 10_000})
    image_id = (await ok("vm", "snapshot", {"vm_id": vm_id, "name": "n"}))["image_id"]
    await ok("vm", "delete", {"vm_id": vm_id})
    await wait_for_vm_status(api, vm_id, "gone")
    assert await _image_status(ok, image_id) == "killed"
