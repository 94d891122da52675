"""Deployment over time and its failure knob, power actions, delete, suspension."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from cloudsim.cyberpanel import TASKS
from cloudsim.testing import wait_for, wait_for_cyberpanel_deployment, wait_for_cyberpanel_status

from .conftest import MakeVps, assert_error, data_of


async def test_deployment_progress_over_time(api: httpx.AsyncClient, admin: httpx.AsyncClient,
                                             make_vps: MakeVps) -> None:
    # 10 tasks of 4 s simulated = 80 ms real each at 50x.
    await admin.put("/config", json={"deploy_delay": 40})
    vps_id = await make_vps(wait=None)
    snapshots: list[dict[str, Any]] = []

    async def probe() -> dict[str, Any] | None:
        data = data_of(await api.get(f"/vps/{vps_id}/deployment"))
        snapshots.append(data)
        return data if data["deployment_status"] == "completed" else None

    done = await wait_for(probe, timeout=5.0, interval=0.03)
    progress = [s for s in snapshots if s["deployment_status"] == "in_progress"]
    assert len(progress) >= 3
    percents = [s["progress_percent"] for s in progress]
    assert percents == sorted(percents) and len(set(percents)) >= 3
    for s in progress:
        completed = s["tasks_completed"]
        assert s["progress_percent"] == completed * 10 and s["tasks_total"] == 10
        assert s["vps_status"] == "deploying" and s["is_ready"] is False
        assert s["current_task"] == TASKS[completed]
        assert [t["name"] for t in s["tasks"]] == list(TASKS)
        assert [t["order"] for t in s["tasks"]] == list(range(1, 11))
        assert [t["status"] for t in s["tasks"]] == (
            ["completed"] * completed + ["in_progress"] + ["pending"] * (9 - completed))
        assert set(s) == {"vps_id", "deployment_status", "vps_status", "current_task",
                          "progress_percent", "tasks", "tasks_completed", "tasks_total",
                          "started_at", "is_ready"}
    assert done == {
        "vps_id": vps_id, "deployment_status": "completed", "vps_status": "running",
        "current_task": None, "progress_percent": 100, "tasks_completed": 10,
        "tasks_total": 10, "started_at": done["started_at"],
        "completed_at": done["completed_at"], "is_ready": True,
        "access_info": {"ip_address": "74.81.40.145", "ssh_port": 22, "ssh_user": "root"},
    }
    message = (await api.get(f"/vps/{vps_id}/deployment")).json()["message"]
    assert message == "VPS deployment completed successfully"
    assert data_of(await api.get(f"/vps/{vps_id}"))["status"] == "running"


async def test_actions_while_deploying(api: httpx.AsyncClient, admin: httpx.AsyncClient,
                                       make_vps: MakeVps) -> None:
    await admin.put("/config", json={"deploy_delay": 3600})
    vps_id = await make_vps(wait=None)
    assert data_of(await api.get(f"/vps/{vps_id}"))["status"] == "deploying"
    for action in ("start", "stop", "restart"):
        assert_error(await api.post(f"/vps/{vps_id}/{action}"), 400, "VPS_DEPLOYING")
    assert_error(await api.get(f"/vps/{vps_id}/console"), 400, "VPS_DEPLOYING")
    assert_error(await api.post(f"/vps/{vps_id}/snapshots/create", json={"name": "s"}), 400,
                 "VPS_DEPLOYING")
    live = data_of(await api.get(f"/vps/{vps_id}/status"))
    assert live["status"] == "deploying" and live["qmpstatus"] == "stopped"
    assert data_of(await api.get(f"/vps/{vps_id}/snapshots"))["snapshots"] == []
    # Deleting a deploying VPS is allowed.
    assert data_of(await api.post(f"/vps/{vps_id}/delete"))["deleted"] is True


async def test_failure_knob(api: httpx.AsyncClient, admin: httpx.AsyncClient,
                            make_vps: MakeVps) -> None:
    config = await admin.put("/config", json={"fail_next_deployments": 2,
                                              "fail_at_task": "configure_network"})
    assert config.status_code == 200
    assert (await admin.put("/config", json={"fail_at_task": "nope"})).status_code == 400
    first = await make_vps(wait=None)
    second = await make_vps(wait=None)
    third = await make_vps(wait=None)
    assert (await admin.get("/config")).json()["fail_next_deployments"] == 0
    failed = await wait_for_cyberpanel_deployment(api, first)
    assert failed["deployment_status"] == "failed" and failed["vps_status"] == "failed"
    assert failed["current_task"] == "configure_network" and failed["is_ready"] is False
    assert failed["progress_percent"] == 60 and failed["tasks_completed"] == 6
    assert failed["error_code"] == "DEPLOYMENT_FAILED"
    assert "configure_network" in failed["error_message"]
    statuses = [t["status"] for t in failed["tasks"]]
    assert statuses == ["completed"] * 6 + ["failed"] + ["pending"] * 3
    response = await api.get(f"/vps/{first}/deployment")
    assert response.status_code == 200 and response.json()["success"] is True
    assert (await wait_for_cyberpanel_deployment(api, second))["deployment_status"] == "failed"
    assert (await wait_for_cyberpanel_deployment(api, third))["deployment_status"] == \
        "completed"
    details = data_of(await api.get(f"/vps/{first}"))
    assert details["status"] == "failed"
    for action in ("start", "stop", "restart"):
        assert_error(await api.post(f"/vps/{first}/{action}"), 500, "DEPLOYMENT_FAILED")
    assert_error(await api.get(f"/vps/{first}/console"), 500, "DEPLOYMENT_FAILED")
    assert_error(await api.post(f"/vps/{first}/snapshots/create", json={"name": "x"}), 500,
                 "DEPLOYMENT_FAILED")
    assert_error(await api.get(f"/vps/{first}/status"), 500, "STATUS_FAILED")
    assert data_of(await api.post(f"/vps/{first}/delete"))["deleted"] is True


async def test_power_actions(api: httpx.AsyncClient, admin: httpx.AsyncClient,
                             make_vps: MakeVps) -> None:
    vps_id = await make_vps(wait="running")
    await admin.put("/config", json={"stop_delay": 10, "start_delay": 10})  # 0.2 s real
    stop = (await api.post(f"/vps/{vps_id}/stop")).json()
    assert stop == {"success": True, "data": {
        "id": vps_id, "vmid": stop["data"]["vmid"], "name": "my-server.example.com",
        "status": "stopped", "ip_address": "74.81.40.145"}, "message": "VPS stopped successfully"}
    # The answer shows the target at once; the VPS gets there after stop_delay.
    assert data_of(await api.get(f"/vps/{vps_id}"))["status"] == "running"
    assert (await admin.get(f"/vps/{vps_id}")).json()["pending_power"] == "stopped"
    await admin.put("/config", json={"stop_delay": 1, "start_delay": 1})
    await wait_for_cyberpanel_status(api, vps_id, "stopped")
    again = (await api.post(f"/vps/{vps_id}/stop")).json()
    assert again["success"] is True and again["data"]["status"] == "stopped"
    assert again["message"] == "VPS is already stopped"
    start = (await api.post(f"/vps/{vps_id}/start")).json()
    assert start["message"] == "VPS started successfully" and start["data"]["status"] == \
        "running"
    await wait_for_cyberpanel_status(api, vps_id, "running")
    assert (await api.post(f"/vps/{vps_id}/start")).json()["message"] == \
        "VPS is already running"
    restart = (await api.post(f"/vps/{vps_id}/restart")).json()
    assert restart["message"] == "VPS restarted successfully"
    assert restart["data"]["status"] == "running"
    assert data_of(await api.get(f"/vps/{vps_id}"))["status"] == "running"
    await asyncio.sleep(0.05)
    assert (await admin.get(f"/vps/{vps_id}")).json()["pending_power"] is None
    # Restart of a stopped VPS boots it.
    await admin.post(f"/vps/{vps_id}/status", json={"status": "stopped"})
    assert data_of(await api.get(f"/vps/{vps_id}"))["status"] == "stopped"
    await api.post(f"/vps/{vps_id}/restart")
    await wait_for_cyberpanel_status(api, vps_id, "running")


async def test_delete_semantics(api: httpx.AsyncClient, admin: httpx.AsyncClient,
                                make_vps: MakeVps) -> None:
    vps_id = await make_vps(wait="running")
    response = (await api.post(f"/vps/{vps_id}/delete")).json()
    assert response == {"success": True, "data": {
        "deleted": True, "vps_id": vps_id, "name": "my-server.example.com",
        "vmid": response["data"]["vmid"]},
        "message": 'VPS "my-server.example.com" deleted successfully'}
    assert_error(await api.get(f"/vps/{vps_id}"), 400, "VPS_DELETED")
    for action in ("start", "stop", "restart"):
        assert_error(await api.post(f"/vps/{vps_id}/{action}"), 400, "VPS_DELETED")
    for path in ("console", "deployment", "status", "snapshots"):
        assert_error(await api.get(f"/vps/{vps_id}/{path}"), 400, "VPS_DELETED")
    assert_error(await api.post(f"/vps/{vps_id}/snapshots/create", json={"name": "x"}), 400,
                 "VPS_DELETED")
    assert_error(await api.post(f"/vps/{vps_id}/delete"), 400, "VPS_ALREADY_DELETED")
    assert_error(await api.post("/vps/4242/delete"), 404, "VPS_NOT_FOUND")
    assert data_of(await api.get("/vps"))["pagination"]["total"] == 0
    assert data_of(await api.get("/vps/summary"))["total_instances"] == 0
    await wait_for_cyberpanel_status(api, vps_id, "deleted")
    # Out-of-band: "deleted" in the panel, and "gone" from the database.
    other = await make_vps(wait="running")
    await admin.post(f"/vps/{other}/status", json={"status": "deleted"})
    assert_error(await api.get(f"/vps/{other}"), 400, "VPS_DELETED")
    await admin.post(f"/vps/{other}/status", json={"status": "gone"})
    assert_error(await api.get(f"/vps/{other}"), 404, "VPS_NOT_FOUND")
    await wait_for_cyberpanel_status(api, other, "gone")


async def test_suspension(api: httpx.AsyncClient, admin: httpx.AsyncClient,
                          make_vps: MakeVps) -> None:
    vps_id = await make_vps(wait="running")
    await api.post(f"/vps/{vps_id}/snapshots/create", json={"name": "before"})
    forced = await admin.post(f"/vps/{vps_id}/status",
                              json={"status": "suspended", "reason": "Abuse report #42"})
    assert forced.status_code == 200 and forced.json()["is_suspended"] is True
    details = data_of(await api.get(f"/vps/{vps_id}"))
    assert details["status"] == "suspended" and details["is_suspended"] is True
    assert details["suspension_reason"] == "Abuse report #42"
    for action in ("start", "stop", "restart", "delete"):
        body = assert_error(await api.post(f"/vps/{vps_id}/{action}"), 403, "VPS_SUSPENDED")
        assert "Abuse report #42" in body["message"]
    assert_error(await api.get(f"/vps/{vps_id}/console"), 403, "VPS_SUSPENDED")
    assert_error(await api.post(f"/vps/{vps_id}/snapshots/create", json={"name": "x"}), 403,
                 "VPS_SUSPENDED")
    # Reads still work.
    assert data_of(await api.get(f"/vps/{vps_id}/snapshots"))["snapshots"][0]["name"] == \
        "before"
    assert data_of(await api.get(f"/vps/{vps_id}/status"))["qmpstatus"] == "stopped"
    assert data_of(await api.get(f"/vps/{vps_id}/deployment"))["vps_status"] == "suspended"
    assert data_of(await api.get("/vps/summary"))["suspended"] == 1
    await admin.post(f"/vps/{vps_id}/status", json={"status": "unsuspend"})
    details = data_of(await api.get(f"/vps/{vps_id}"))
    assert details["status"] == "stopped" and "suspension_reason" not in details
    await api.post(f"/vps/{vps_id}/start")
    await wait_for_cyberpanel_status(api, vps_id, "running")
    default = await admin.post(f"/vps/{vps_id}/status", json={"status": "suspended"})
    assert default.json()["suspension_reason"] == "Suspended by administrator"
    assert (await admin.post(f"/vps/{vps_id}/status", json={"status": "x"})).status_code == 400
    assert (await admin.post("/vps/999/status", json={"status": "running"})).status_code == 404
