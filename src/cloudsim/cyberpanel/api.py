"""CyberPanel's API handlers and the table of endpoints with their scopes.

Authentication, the rate limits and the scope check happen in the simulator's
middleware (from :attr:`Endpoint.scopes`) before a handler runs; a handler finds the
key under :data:`KEY` and raises :class:`~.errors.CyberPanelError` for error answers.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .catalog import PLANS, PUBLIC_SCOPES, TASKS, TEMPLATES, VM_RUNNING_AFTER
from .engine import CyberPanelEngine
from .errors import CyberPanelError, bad_request, success, vps_not_found
from .models import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    RUNNING,
    STOPPED,
    SUSPENDED,
    ApiKey,
    Vps,
    iso,
    money,
)
from .validation import MAX_PAGE, check_create, check_snapshot, query_int, read_body

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = Callable[[str, str, Handler, str], None]

KEY = web.RequestKey("cyberpanel.key", ApiKey)

SERVICE = {"status": "healthy", "service": "CyberPanel Cloud API", "version": "1.0.0"}
CONSOLE_TTL = 300
_ID = re.compile(r"^[0-9]{1,18}$")
# Why a task fails when the failure knob picks it (the deployment's error_message).
TASK_ERRORS = {
    "validate_resources": "insufficient resources on node {node}",
    "allocate_ip": "no free IP address in location {location}",
    "create_vm": "Proxmox clone of template {template} failed on node {node}",
    "configure_hardware": "failed to resize disk to {disk}G",
    "apply_cloud_init": "failed to apply the cloud-init configuration",
    "start_vm": "VM {vmid} failed to start",
    "configure_network": "failed to configure the network interface",
    "wait_for_guest_agent": "QEMU guest agent did not respond within 300 seconds",
    "verify_connectivity": "{ip}:22 did not answer",
    "finalize": "failed to finalize the deployment",
}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    name: str
    # None: no auth (health, scopes); (): any valid key; else any one of these scopes.
    scopes: tuple[str, ...] | None


def task_error(vps: Vps) -> str:
    task = vps.failed_task or "finalize"
    detail = TASK_ERRORS[task].format(
        node=vps.location.node, location=vps.location.code, template=vps.template.id,
        disk=vps.plan.disk_gb, vmid=vps.vmid, ip=vps.ip_address)
    return f"Deployment failed at task '{task}': {detail}"


def vps_deleted() -> CyberPanelError:
    return bad_request("VPS_DELETED", "VPS has already been deleted",
                       "This VPS has been deleted")


class CyberPanelApi:
    def __init__(self, engine: CyberPanelEngine) -> None:
        self.engine = engine
        self.endpoints: dict[tuple[str, str], Endpoint] = {}
        # Per-minute limit shown for keys without their own (the simulator keeps it in
        # step with its rate_limit knob).
        self.per_minute_default = 60

    def register(self, route: Route, prefix: str) -> None:
        v = "/vps/{id}"
        read, write = ("vps:read",), ("vps:write",)
        table: list[tuple[Endpoint, Handler]] = [
            (Endpoint("GET", "/health", "health", None), self.health),
            (Endpoint("GET", "/scopes", "list_scopes", None), self.list_scopes),
            (Endpoint("GET", "/test", "test_key", ()), self.test_key),
            (Endpoint("GET", "/account", "get_account", ("account:read",)), self.account),
            (Endpoint("GET", "/billing", "get_billing", ("billing:read",)), self.billing),
            (Endpoint("GET", "/account/api-keys", "list_api_keys", ("account:read",)),
             self.list_keys),
            (Endpoint("GET", "/account/api-keys/{key_id}/usage", "api_key_usage",
                      ("account:read",)), self.key_usage),
            (Endpoint("GET", "/vps", "list_vps", read), self.list_vps),
            # The fixed /vps/... paths before /vps/{id}, which must not capture them.
            (Endpoint("GET", "/vps/summary", "vps_summary", read), self.summary),
            (Endpoint("GET", "/vps/plans", "list_plans", read), self.plans),
            (Endpoint("GET", "/vps/locations", "list_locations", read), self.locations),
            (Endpoint("GET", "/vps/templates", "list_templates", read), self.templates),
            (Endpoint("POST", "/vps/create", "create_vps", write), self.create),
            (Endpoint("GET", v, "get_vps", read), self.get_vps),
            (Endpoint("GET", v + "/status", "vps_status", read), self.live_status),
            (Endpoint("POST", v + "/start", "start_vps", write), self.start),
            (Endpoint("POST", v + "/stop", "stop_vps", write), self.stop),
            (Endpoint("POST", v + "/restart", "restart_vps", write), self.restart),
            (Endpoint("POST", v + "/delete", "delete_vps", ("vps:write", "vps:delete")),
             self.delete),
            (Endpoint("GET", v + "/console", "vps_console", read), self.console),
            (Endpoint("GET", v + "/deployment", "vps_deployment", read), self.deployment),
            (Endpoint("GET", v + "/snapshots", "list_snapshots", read), self.snapshots),
            (Endpoint("POST", v + "/snapshots/create", "create_snapshot", write),
             self.create_snapshot),
        ]
        for endpoint, handler in table:
            route(endpoint.method, endpoint.path, handler, endpoint.name)
            self.endpoints[(endpoint.method, prefix + endpoint.path)] = endpoint

    def endpoint_of(self, method: str, template: str) -> Endpoint | None:
        return self.endpoints.get((method, template))

    # ---- general ---------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        return success(dict(SERVICE))

    async def list_scopes(self, request: web.Request) -> web.Response:
        return success({"scopes": [{"scope": s, "description": d} for s, d in PUBLIC_SCOPES]})

    async def test_key(self, request: web.Request) -> web.Response:
        key = request[KEY]
        return success({
            "message": "API authentication successful!", "key_name": key.name,
            "key_prefix": key.prefix, "user_email": self.engine.account.email,
            "scopes": list(key.scopes), "ip_address": request.remote or "unknown",
            "request_count": key.request_count,
        }, "Your API key is working correctly")

    # ---- account & billing -----------------------------------------------------------

    async def account(self, request: web.Request) -> web.Response:
        return success(self.engine.account.to_json())

    async def billing(self, request: web.Request) -> web.Response:
        account = self.engine.account
        return success({"balance": money(account.balance), "auto_funding": account.auto_funding(),
                        "recent_invoices": [i.to_json() for i in self.engine.recent_invoices()]})

    def key_json(self, key: ApiKey, per_minute_default: int) -> dict[str, Any]:
        return key.to_json(*self.engine.limits_of(key, per_minute_default))

    async def list_keys(self, request: web.Request) -> web.Response:
        keys = sorted(self.engine.keys.values(), key=lambda k: k.id)
        return success({"api_keys": [self.key_json(k, self.per_minute_default) for k in keys],
                        "total": len(keys)})

    async def key_usage(self, request: web.Request) -> web.Response:
        raw = request.match_info["key_id"]
        key = self.engine.keys.get(int(raw)) if _ID.match(raw) else None
        if key is None:
            raise CyberPanelError(404, "KEY_NOT_FOUND", "API key not found",
                                  f"API key {raw} doesn't exist")
        limit = query_int(request, "limit", 50, minimum=1, maximum=MAX_PAGE)
        offset = query_int(request, "offset", 0, minimum=0)
        logs = list(reversed(key.usage))
        page = logs[offset:offset + limit]
        return success({
            "key_id": key.id, "key_name": key.name,
            "usage_logs": [entry.to_json() for entry in page],
            "pagination": {"limit": limit, "offset": offset, "total": len(logs),
                           "has_more": offset + len(page) < len(logs)},
        })

    # ---- VPS reads -------------------------------------------------------------------

    def _vps(self, request: web.Request, *, deleting: bool = False) -> Vps:
        raw = request.match_info["id"]
        vps = self.engine.live(int(raw)) if _ID.match(raw) else None
        if vps is None:
            raise vps_not_found(raw)
        if vps.deleted:
            if deleting:
                raise bad_request("VPS_ALREADY_DELETED", "VPS already deleted",
                                  "This VPS has already been deleted")
            raise vps_deleted()
        return vps

    def _actionable(self, request: web.Request, action: str) -> Vps:
        """A VPS an action may touch: not suspended, deployed (not failed, not deploying)."""
        vps = self._vps(request)
        if vps.suspended:
            raise CyberPanelError(403, "VPS_SUSPENDED", "VPS is suspended",
                                  f"VPS is suspended: {vps.suspension_reason}")
        if vps.deployment == FAILED:
            raise CyberPanelError(500, "DEPLOYMENT_FAILED", "VPS deployment failed",
                                  f"Cannot {action} this VPS: {task_error(vps)}")
        if vps.deployment == IN_PROGRESS:
            raise bad_request("VPS_DEPLOYING", "VPS is still deploying",
                              f"Cannot {action} this VPS while it is deploying; poll "
                              f"/api/v1/vps/{vps.id}/deployment")
        return vps

    async def list_vps(self, request: web.Request) -> web.Response:
        rows = self.engine.listed()
        status = request.query.get("status")
        location = request.query.get("location")
        if status:
            rows = [v for v in rows if v.status == status]
        if location:
            rows = [v for v in rows if v.location.code == location]
        limit = query_int(request, "limit", 50, minimum=1, maximum=MAX_PAGE)
        offset = query_int(request, "offset", 0, minimum=0)
        page = rows[offset:offset + limit]
        return success({
            "instances": [v.row() for v in page],
            "pagination": {"total": len(rows), "limit": limit, "offset": offset,
                           "has_more": offset + len(page) < len(rows)},
        })

    def details(self, vps: Vps) -> dict[str, Any]:
        body = {
            **vps.row(),
            "updated_at": iso(vps.updated_at),
            "plan": vps.plan.ref(),
            "location": {"code": vps.location.code, "name": vps.location.name},
            "server": {"hostname": vps.location.server_hostname},
            "billing": {"hourly_rate": f"{vps.plan.price_hourly:.4f}",
                        "billing_start": iso(vps.created_at),
                        "last_billed": iso(vps.last_billed)},
        }
        if vps.suspended:
            body["suspension_reason"] = vps.suspension_reason
        return body

    async def get_vps(self, request: web.Request) -> web.Response:
        if request.match_info["id"] == "create":  # POST-only path, not a VPS id
            raise web.HTTPMethodNotAllowed("GET", ["POST"])
        return success(self.details(self._vps(request)))

    async def summary(self, request: web.Request) -> web.Response:
        rows = self.engine.listed()
        locations: dict[str, int] = {}
        for code in self.engine.locations:
            count = sum(1 for v in rows if v.location.code == code)
            if count:
                locations[code] = count
        cost = sum((v.plan.monthly_price for v in rows if v.billable), start=0)
        return success({
            "total_instances": len(rows),
            "running": sum(1 for v in rows if v.status == RUNNING),
            "stopped": sum(1 for v in rows if v.status == STOPPED),
            "suspended": sum(1 for v in rows if v.status == SUSPENDED),
            "total_monthly_cost": f"{cost:.2f}",
            "locations": locations,
        })

    async def live_status(self, request: web.Request) -> web.Response:
        vps = self._vps(request)
        if vps.deployment == FAILED:
            raise CyberPanelError(500, "STATUS_FAILED", "Failed to get VPS status",
                                  f"No live status for this VPS: {task_error(vps)}")
        now = self.engine.clock.now()
        if vps.deployment == IN_PROGRESS:
            on = vps.completed_tasks(now) > VM_RUNNING_AFTER
            booted = vps.created_sim + (VM_RUNNING_AFTER + 1) * vps.deploy_delay / len(TASKS)
        else:
            on = vps.power == RUNNING and not vps.suspended
            booted = vps.booted_sim if vps.booted_sim is not None else now
        total = vps.plan.ram_mb * 1024 * 1024
        uptime = max(0, int(now - booted)) if on else 0
        used = int(total * (0.30 + (vps.id % 4) * 0.08)) if on else 0
        return success({
            "vps_id": vps.id, "vmid": vps.vmid, "name": vps.name, "status": vps.status,
            "qmpstatus": "running" if on else "stopped",
            "cpu": {"usage_percent": round(1.0 + ((vps.id * 37 + uptime // 10) % 60) / 10, 1)
                    if on else 0.0, "cores": vps.plan.cpu_cores},
            "memory": {"used_bytes": used, "total_bytes": total,
                       "usage_percent": round(used * 100 / total, 1)},
            "disk": {"read_bytes": 250_000_000 + uptime * 14_000 if on else 0,
                     "write_bytes": 120_000_000 + uptime * 11_000 if on else 0},
            "network": {"in_bytes": uptime * 65_000 if on else 0,
                        "out_bytes": uptime * 14_000 if on else 0},
            "uptime_seconds": uptime,
            "pid": 1000 + (vps.vmid * 7919 + int(booted)) % 60000 if on else None,
        })

    async def plans(self, request: web.Request) -> web.Response:
        return success({"plans": [p.to_json() for p in PLANS]})

    async def locations(self, request: web.Request) -> web.Response:
        return success({"locations": [loc.to_json() for loc in self.engine.locations.values()]})

    async def templates(self, request: web.Request) -> web.Response:
        return success({"templates": [t.to_json() for t in TEMPLATES]})

    # ---- actions ---------------------------------------------------------------------

    async def _power(self, request: web.Request, action: str, verb: str, target: str,
                     done: str, already: str) -> web.Response:
        vps = self._actionable(request, verb)
        noop = self.engine.power(vps, action)
        return success({**vps.power_json(), "status": target}, already if noop else done)

    async def start(self, request: web.Request) -> web.Response:
        return await self._power(request, RUNNING, "start", RUNNING,
                                 "VPS started successfully", "VPS is already running")

    async def stop(self, request: web.Request) -> web.Response:
        return await self._power(request, STOPPED, "stop", STOPPED,
                                 "VPS stopped successfully", "VPS is already stopped")

    async def restart(self, request: web.Request) -> web.Response:
        return await self._power(request, "restart", "restart", RUNNING,
                                 "VPS restarted successfully", "VPS restarted successfully")

    async def delete(self, request: web.Request) -> web.Response:
        vps = self._vps(request, deleting=True)
        if vps.suspended:
            raise CyberPanelError(403, "VPS_SUSPENDED", "VPS is suspended",
                                  f"VPS is suspended: {vps.suspension_reason}")
        self.engine.delete(vps)
        return success({"deleted": True, "vps_id": vps.id, "name": vps.name, "vmid": vps.vmid},
                       f'VPS "{vps.name}" deleted successfully')

    async def console(self, request: web.Request) -> web.Response:
        vps = self._actionable(request, "open a console on")
        loc = vps.location
        url = (f"https://{loc.server_hostname}:8006/?console=kvm&novnc=1&vmid={vps.vmid}"
               f"&node={loc.node}")
        return success({"vps_id": vps.id, "console_url": url, "type": "novnc",
                        "expires_in_seconds": CONSOLE_TTL},
                       "Console URL generated. Valid for 5 minutes.")

    # ---- creation & deployment -------------------------------------------------------

    async def create(self, request: web.Request) -> web.Response:
        spec = check_create(await read_body(request), self.engine.check_location)
        digest = hashlib.sha256(spec.root_password.encode()).hexdigest()
        vps = self.engine.create(spec, digest)
        return success({
            "vps_id": vps.id, "name": vps.name, "status": vps.status,
            "ip_address": vps.ip_address,
            "plan": {"id": vps.plan.id, "name": vps.plan.name,
                     "price": f"{vps.plan.monthly_price:.2f}"},
            "location": vps.location.code, "template": vps.template.id,
            "deployment_url": f"/api/v1/vps/{vps.id}/deployment",
            "estimated_time_seconds": round(vps.deploy_delay),
            "webhook_configured": vps.webhook_url is not None,
        }, "VPS deployment started. Use the deployment endpoint to check progress.",
            status=201)

    def deployment_json(self, vps: Vps) -> tuple[dict[str, Any], str | None]:
        started = iso(vps.created_at)
        if vps.deployment == COMPLETED:
            return {
                "vps_id": vps.id, "deployment_status": COMPLETED, "vps_status": vps.status,
                "current_task": None, "progress_percent": 100,
                "tasks_completed": len(TASKS), "tasks_total": len(TASKS),
                "started_at": started, "completed_at": iso(vps.finished_at), "is_ready": True,
                "access_info": {"ip_address": vps.ip_address, "ssh_port": 22,
                                "ssh_user": "root"},
            }, "VPS deployment completed successfully"
        if vps.deployment == FAILED:
            failed = TASKS.index(vps.failed_task or TASKS[-1])
            tasks = [{"name": name, "order": i + 1,
                      "status": "completed" if i < failed else
                      "failed" if i == failed else "pending"}
                     for i, name in enumerate(TASKS)]
            return {
                "vps_id": vps.id, "deployment_status": FAILED, "vps_status": vps.status,
                "current_task": vps.failed_task, "progress_percent": failed * 10,
                "tasks": [{"name": t["name"], "status": t["status"], "order": t["order"]}
                          for t in tasks],
                "tasks_completed": failed, "tasks_total": len(TASKS), "started_at": started,
                "failed_at": iso(vps.finished_at), "is_ready": False,
                "error_code": "DEPLOYMENT_FAILED", "error_message": task_error(vps),
            }, f"VPS deployment failed at task '{vps.failed_task}'"
        done = vps.completed_tasks(self.engine.clock.now())
        done = min(done, len(TASKS) - 1)
        return {
            "vps_id": vps.id, "deployment_status": IN_PROGRESS, "vps_status": vps.status,
            "current_task": TASKS[done], "progress_percent": done * 10,
            "tasks": [{"name": name,
                       "status": "completed" if i < done else
                       "in_progress" if i == done else "pending", "order": i + 1}
                      for i, name in enumerate(TASKS)],
            "tasks_completed": done, "tasks_total": len(TASKS), "started_at": started,
            "is_ready": False,
        }, None

    async def deployment(self, request: web.Request) -> web.Response:
        data, message = self.deployment_json(self._vps(request))
        return success(data, message)

    # ---- snapshots -------------------------------------------------------------------

    async def snapshots(self, request: web.Request) -> web.Response:
        vps = self._vps(request)
        return success({"vps_id": vps.id, "snapshots": [s.to_json() for s in vps.snapshots]})

    async def create_snapshot(self, request: web.Request) -> web.Response:
        vps = self._actionable(request, "snapshot")
        spec = check_snapshot(await read_body(request))
        snapshot = self.engine.create_snapshot(vps, spec)
        return success({"vps_id": vps.id, "snapshot": {
            "name": snapshot.name, "description": snapshot.description,
            "created_at": iso(snapshot.created_at)}}, "Snapshot created successfully",
            status=201)

    # ---- webhook payloads ------------------------------------------------------------

    @staticmethod
    def webhook_payload(vps: Vps, failed: bool) -> dict[str, Any]:
        seconds = round((vps.finished_sim or vps.created_sim) - vps.created_sim)
        data: dict[str, Any] = {
            "vps_id": vps.id, "name": vps.name, "status": vps.status,
            "ip_address": vps.ip_address, "deployment_time_seconds": seconds,
        }
        if failed:
            data["failed_task"] = vps.failed_task
            data["error"] = task_error(vps)
        return {"event": "vps.deployment.failed" if failed else "vps.deployment.completed",
                "timestamp": iso(vps.finished_at or time.time()), "data": data}


__all__ = ["KEY", "CyberPanelApi", "Endpoint"]
