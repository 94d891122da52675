"""Catalogue, listing (paging, filters), details, summary, live status and console."""

from __future__ import annotations

import httpx

from cloudsim.cyberpanel import TEMPLATES
from cloudsim.testing import wait_for_cyberpanel_status

from .conftest import MakeVps, assert_error, data_of


async def test_catalogue(api: httpx.AsyncClient) -> None:
    plans = data_of(await api.get("/vps/plans"))["plans"]
    assert plans[:2] == [
        {"id": 1, "name": "Starter", "cpu_cores": 1, "ram_mb": 1024, "disk_gb": 25,
         "bandwidth_gb": 1000, "monthly_price": "6.00", "price_hourly": "0.0082"},
        {"id": 2, "name": "Basic", "cpu_cores": 2, "ram_mb": 2048, "disk_gb": 50,
         "bandwidth_gb": 2000, "monthly_price": "12.00", "price_hourly": "0.0164"},
    ]
    assert len(plans) >= 4 and [p["id"] for p in plans] == sorted(p["id"] for p in plans)
    for plan in plans:
        assert isinstance(plan["monthly_price"], str) and isinstance(plan["price_hourly"], str)
        assert abs(float(plan["monthly_price"]) / 730 - float(plan["price_hourly"])) < 0.0001
    locations = data_of(await api.get("/vps/locations"))["locations"]
    assert [loc["code"] for loc in locations] == ["la", "de", "eu"]
    assert locations[0] == {"code": "la", "name": "Los Angeles, USA", "country": "US",
                            "available_ips": 15, "is_available": True}
    assert locations[1] == {"code": "de", "name": "Falkenstein, Germany", "country": "DE",
                            "available_ips": 8, "is_available": True}
    templates = data_of(await api.get("/vps/templates"))["templates"]
    assert [t["id"] for t in templates] == ["101", "9000", "9022", "9010", "9001", "9008",
                                            "9125"]
    assert templates[0] == {"id": "101", "name": "CyberPanel", "os": "AlmaLinux 8",
                            "description": "CyberPanel pre-installed with OpenLiteSpeed"}
    assert len(TEMPLATES) == 7


async def test_paging_filters_and_deleted_rows(api: httpx.AsyncClient, admin: httpx.AsyncClient,
                                               make_vps: MakeVps) -> None:
    ids = [await make_vps(wait=None, hostname=f"vm{i}.example.com",
                          location_code="la" if i % 2 else "de") for i in range(6)]
    await make_vps(wait="running")  # 7 in all, the last one running
    listing = data_of(await api.get("/vps"))
    assert listing["pagination"] == {"total": 7, "limit": 50, "offset": 0, "has_more": False}
    row = listing["instances"][0]
    assert set(row) == {"id", "vmid", "name", "status", "ip_address", "is_suspended",
                        "created_at"}
    seen: list[int] = []
    offset = 0
    while True:
        page = data_of(await api.get("/vps", params={"limit": 3, "offset": offset}))
        seen += [r["id"] for r in page["instances"]]
        assert page["pagination"]["limit"] == 3 and page["pagination"]["total"] == 7
        if not page["pagination"]["has_more"]:
            break
        offset += 3
    assert len(seen) == 7 and len(set(seen)) == 7 and seen == sorted(seen, reverse=True)
    assert data_of(await api.get("/vps", params={"limit": 500}))["pagination"]["limit"] == 100
    assert data_of(await api.get("/vps", params={"limit": 0}))["pagination"]["limit"] == 1
    assert data_of(await api.get("/vps", params={"offset": 10}))["instances"] == []
    assert_error(await api.get("/vps", params={"limit": "ten"}), 400, "INVALID_PARAMETER")

    de = data_of(await api.get("/vps", params={"location": "de"}))
    assert de["pagination"]["total"] == 3
    running = data_of(await api.get("/vps", params={"status": "running"}))["instances"]
    assert len(running) >= 1 and all(r["status"] == "running" for r in running)
    both = data_of(await api.get("/vps", params={"status": "running", "location": "de"}))
    assert all(r["status"] == "running" for r in both["instances"])
    assert data_of(await api.get("/vps", params={"status": "bogus"}))["instances"] == []

    await api.post(f"/vps/{ids[0]}/delete")
    after = data_of(await api.get("/vps"))
    assert after["pagination"]["total"] == 6 and ids[0] not in [r["id"] for r in
                                                                   after["instances"]]
    await admin.post(f"/vps/{ids[1]}/status", json={"status": "suspended",
                                                   "reason": "Abuse report"})
    suspended = data_of(await api.get("/vps", params={"status": "suspended"}))["instances"]
    assert [r["id"] for r in suspended] == [ids[1]] and suspended[0]["is_suspended"] is True


async def test_details_summary_and_fixed_paths(api: httpx.AsyncClient,
                                               make_vps: MakeVps) -> None:
    a = await make_vps(wait="running")
    await make_vps(wait=None, plan_id=2, location_code="de")
    details = data_of(await api.get(f"/vps/{a}"))
    assert details == {
        "id": a, "vmid": details["vmid"], "name": "my-server.example.com",
        "status": "running", "ip_address": "74.81.40.145", "is_suspended": False,
        "created_at": details["created_at"], "updated_at": details["updated_at"],
        "plan": {"id": 1, "name": "Starter", "cpu_cores": 1, "ram_mb": 1024, "disk_gb": 25,
                 "bandwidth_gb": 1000, "price": "6.00"},
        "location": {"code": "la", "name": "Los Angeles, USA"},
        "server": {"hostname": "lax-power.cyberpersons.com"},
        "billing": {"hourly_rate": "0.0082", "billing_start": details["created_at"],
                    "last_billed": details["billing"]["last_billed"]},
    }
    assert details["vmid"] >= 100 and details["created_at"].endswith("Z")
    summary = data_of(await api.get("/vps/summary"))
    assert summary == {"total_instances": 2, "running": 1, "stopped": 0, "suspended": 0,
                       "total_monthly_cost": "18.00", "locations": {"la": 1, "de": 1}}
    for bad in ("abc", "-1", "1.5", "999", "0x1"):
        assert_error(await api.get(f"/vps/{bad}"), 404, "VPS_NOT_FOUND")
        assert_error(await api.post(f"/vps/{bad}/start"), 404, "VPS_NOT_FOUND")
        assert_error(await api.get(f"/vps/{bad}/deployment"), 404, "VPS_NOT_FOUND")


async def test_live_status_and_console(api: httpx.AsyncClient, make_vps: MakeVps) -> None:
    vps_id = await make_vps(wait="running", plan_id=2)
    live = data_of(await api.get(f"/vps/{vps_id}/status"))
    assert set(live) == {"vps_id", "vmid", "name", "status", "qmpstatus", "cpu", "memory",
                         "disk", "network", "uptime_seconds", "pid"}
    assert live["status"] == live["qmpstatus"] == "running"
    assert live["cpu"]["cores"] == 2 and live["memory"]["total_bytes"] == 2048 * 1024 * 1024
    assert 0 < live["memory"]["used_bytes"] < live["memory"]["total_bytes"]
    assert isinstance(live["pid"], int) and live["uptime_seconds"] >= 0
    console = (await api.get(f"/vps/{vps_id}/console")).json()
    assert console["message"] == "Console URL generated. Valid for 5 minutes."
    assert console["data"] == {
        "vps_id": vps_id,
        "console_url": f"https://lax-power.cyberpersons.com:8006/?console=kvm&novnc=1&vmid="
                       f"{live['vmid']}&node=lax-power",
        "type": "novnc", "expires_in_seconds": 300,
    }
    await api.post(f"/vps/{vps_id}/stop")
    await wait_for_cyberpanel_status(api, vps_id, "stopped")
    stopped = data_of(await api.get(f"/vps/{vps_id}/status"))
    assert stopped["qmpstatus"] == "stopped" and stopped["pid"] is None
    assert stopped["uptime_seconds"] == 0 and stopped["cpu"]["usage_percent"] == 0.0
