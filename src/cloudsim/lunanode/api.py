"""LunaNode's dynamic API: one ``POST /api/{category}/{action}/`` per action.

The request is checked as :mod:`.validation` describes, then the action runs and the
answer is HTTP 200 ``{"success": "yes", ...fields}`` or ``{"success": "no", "error"}``.
Actions (required parameters, then ``[optional]``; answer fields):

* ``vm/create`` hostname, plan_id (numeric id or plan name such as ``m.2``), image_id
  [region (default toronto), key_id, securitygroups (comma-separated group ids),
  scripts (comma-separated script ids), ip (a free address of the region's range),
  net_id, affinity_group, set_password, volume_id (volumes are not simulated:
  ``invalid volume``), volume_virtio] -> ``vm_id``.
* ``vm/list`` -> ``vms[]`` (the rows of :meth:`.models.Vm.row`: vm_id, name, region,
  hostname, primaryip, privateip, plan_id, ram, vcpu, storage, bandwidth; no status).
* ``vm/info`` vm_id -> ``info`` (:meth:`.models.Vm.info`: ip, privateip, status_nohtml,
  status (HTML), status_raw, status_color, task_state, hostname, login_details,
  diskswap, bandwidthUsedGB, addresses, ipv6, security_groups, image, os, ...) and
  ``extra`` (the vm/list row).
* ``vm/start``, ``vm/stop``, ``vm/reboot``, ``vm/delete``, ``vm/rescue``,
  ``vm/shelve``, ``vm/unshelve``, ``vm/diskswap`` vm_id.
* ``vm/reimage`` vm_id, image_id; ``vm/resize`` vm_id, plan_id; ``vm/rename`` vm_id,
  hostname; ``vm/snapshot`` vm_id, name -> ``image_id``.
* ``vm/iplist`` vm_id -> ``ips[]`` {ip, private_ip, primary}; ``vm/vnc`` vm_id ->
  ``vnc_url``.
* ``vm/securitygroup_add``, ``vm/securitygroup_remove`` vm_id, group_id.
* ``image/list`` [region] -> ``images[]`` {image_id, name, status, size, region};
  ``image/details`` image_id -> ``details``; ``image/delete`` image_id (own images
  only).
* ``plan/list`` -> ``plans[]`` (:meth:`.catalog.Plan.to_json`); ``region/list`` ->
  ``regions`` {id: name}.
* ``sshkey/list`` -> one top-level member per key, ``"0"``, ``"1"``, ... each
  {id, name, label, value} (LunaNode's own tools iterate the answer's members and
  skip ``success``); ``sshkey/add`` label, sshkey -> ``key_id``; ``sshkey/remove``
  key_id.
* ``securitygroup/list`` -> ``groups[]`` {group_id, name, region};
  ``securitygroup/create`` region, name -> ``group_id``; ``securitygroup/delete``
  region, group_id; ``securitygroup/rename`` region, group_id, name;
  ``securitygroup/rule_list`` region, group_id -> ``rules[]`` {rule_id, group_id,
  direction, type, protocol, remote_type, remote_value, port_min, port_max, label};
  ``securitygroup/rule_insert`` region, group_id, direction (ingress|egress), type
  (ipv4|ipv6, also 4|6), protocol (any|tcp|udp|icmp), remote_type (cidr|group),
  remote_value [port_min, port_max, label]; ``securitygroup/rule_delete`` region,
  group_id, rule_id.
* ``script/list`` -> ``scripts[]`` {script_id, name}; ``script/create`` name, content
  -> ``script_id``; ``script/delete`` script_id.

Every ``success: "no"`` answer also counts in ``GET /_sim/stats``'s ``counters`` as
``"success=no /api/{category}/{action}/"`` (the HTTP status is 200 either way).

Action names may be written with ``-`` instead of ``_`` (``securitygroup-add``,
``rule-insert``): newer LunaNode clients do.  Errors for unknown ids: ``invalid vm``,
``invalid image``, ``invalid plan``, ``invalid region``, ``invalid key``, ``invalid
security group``, ``invalid rule``, ``invalid script``; an unknown category is
``unknown category: X``, an unknown action ``unknown action: X/Y``; the real API's
other categories (volume, floating, network, lb, dns, monitor, email, billing) answer
``X/Y is not supported by this simulator``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..common.stats import RequestStats
from . import validation
from .catalog import DEFAULT_REGION, PLANS, PUBLIC_IMAGES, PUBLIC_IMAGES_BY_ID, REGIONS
from .engine import LunaNodeEngine, cannot
from .errors import LunaNodeError, failure, success
from .validation import NonceTracker, Params

Action = Callable[[Params], dict[str, Any] | None]

_VM = ("vm_id",)
_GROUP = ("region", "group_id")
# Required parameters per action, checked (in this order) before anything else; vm/create
# also needs image_id unless volume_id is given (checked in the action).
REQUIRED: dict[tuple[str, str], tuple[str, ...]] = {
    ("vm", "create"): ("hostname", "plan_id"),
    **{("vm", a): _VM for a in ("info", "start", "stop", "reboot", "delete", "rescue", "shelve",
                                 "unshelve", "diskswap", "iplist", "vnc")},
    ("vm", "reimage"): ("vm_id", "image_id"),
    ("vm", "resize"): ("vm_id", "plan_id"),
    ("vm", "rename"): ("vm_id", "hostname"),
    ("vm", "snapshot"): ("vm_id", "name"),
    ("vm", "securitygroup_add"): ("vm_id", "group_id"),
    ("vm", "securitygroup_remove"): ("vm_id", "group_id"),
    ("image", "details"): ("image_id",),
    ("image", "delete"): ("image_id",),
    ("sshkey", "add"): ("label", "sshkey"),
    ("sshkey", "remove"): ("key_id",),
    ("securitygroup", "create"): ("region", "name"),
    ("securitygroup", "delete"): _GROUP,
    ("securitygroup", "rename"): (*_GROUP, "name"),
    ("securitygroup", "rule_list"): _GROUP,
    ("securitygroup", "rule_insert"): (*_GROUP, "direction", "type", "protocol", "remote_type",
                                       "remote_value"),
    ("securitygroup", "rule_delete"): (*_GROUP, "rule_id"),
    ("script", "create"): ("name", "content"),
    ("script", "delete"): ("script_id",),
}

NOT_SIMULATED = frozenset({"volume", "floating", "network", "lb", "dns", "monitor", "email",
                           "billing"})


@dataclass(frozen=True)
class Credentials:
    api_id: str
    api_key: str


def canonical(action: str) -> str:
    return action.replace("-", "_")


class LunaNodeApi:
    def __init__(self, engine: LunaNodeEngine, credentials: Credentials,
                 vnc_base: Callable[[], str], stats: RequestStats | None = None) -> None:
        self.engine = engine
        self.credentials = credentials
        self.stats = stats
        self.nonces = NonceTracker()
        self._vnc_base = vnc_base
        e = self
        self.actions: dict[tuple[str, str], Action] = {
            ("vm", "create"): e.vm_create,
            ("vm", "list"): e.vm_list,
            ("vm", "info"): e.vm_info,
            ("vm", "start"): e._vm_op(engine.start_vm),
            ("vm", "stop"): e._vm_op(engine.stop_vm),
            ("vm", "reboot"): e._vm_op(engine.reboot_vm),
            ("vm", "delete"): e._vm_op(engine.delete_vm),
            ("vm", "rescue"): e._vm_op(engine.rescue_vm),
            ("vm", "shelve"): e._vm_op(engine.shelve_vm),
            ("vm", "unshelve"): e._vm_op(engine.unshelve_vm),
            ("vm", "diskswap"): e.vm_diskswap,
            ("vm", "reimage"): e.vm_reimage,
            ("vm", "resize"): e.vm_resize,
            ("vm", "rename"): e.vm_rename,
            ("vm", "snapshot"): e.vm_snapshot,
            ("vm", "iplist"): e.vm_iplist,
            ("vm", "vnc"): e.vm_vnc,
            ("vm", "securitygroup_add"): e.vm_securitygroup_add,
            ("vm", "securitygroup_remove"): e.vm_securitygroup_remove,
            ("image", "list"): e.image_list,
            ("image", "details"): e.image_details,
            ("image", "delete"): e.image_delete,
            ("plan", "list"): e.plan_list,
            ("region", "list"): e.region_list,
            ("sshkey", "list"): e.sshkey_list,
            ("sshkey", "add"): e.sshkey_add,
            ("sshkey", "remove"): e.sshkey_remove,
            ("securitygroup", "list"): e.securitygroup_list,
            ("securitygroup", "create"): e.securitygroup_create,
            ("securitygroup", "delete"): e.securitygroup_delete,
            ("securitygroup", "rename"): e.securitygroup_rename,
            ("securitygroup", "rule_list"): e.rule_list,
            ("securitygroup", "rule_insert"): e.rule_insert,
            ("securitygroup", "rule_delete"): e.rule_delete,
            ("script", "list"): e.script_list,
            ("script", "create"): e.script_create,
            ("script", "delete"): e.script_delete,
        }
        self.categories = frozenset(c for c, _ in self.actions)

    def known(self, category: str, action: str) -> bool:
        return (category, canonical(action)) in self.actions

    # ---- the one HTTP handler ---------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        category = request.match_info["category"]
        action = request.match_info["action"]
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        settings = self.engine.settings
        try:
            params = validation.authenticate(
                fields, validation.handler_path(category, action),
                api_id=self.credentials.api_id, api_key=self.credentials.api_key,
                tolerance=settings.nonce_tolerance, must_increase=settings.nonce_must_increase,
                nonces=self.nonces, now=time.time(),
            )
            key = (category, canonical(action))
            run = self.actions.get(key)
            if run is None:
                if category in NOT_SIMULATED:
                    raise LunaNodeError(f"{category}/{action} is not supported by this simulator")
                if category not in self.categories:
                    raise LunaNodeError(f"unknown category: {category}")
                raise LunaNodeError(f"unknown action: {category}/{action}")
            values = Params(params)
            values.check(REQUIRED.get(key, ()))
            return success(run(values))
        except LunaNodeError as exc:
            if self.stats is not None:
                route = (f"/api/{category}/{canonical(action)}/" if self.known(category, action)
                         else "/api/{category}/{action}/")
                self.stats.counters[f"success=no {route}"] += 1
            return failure(exc.message)

    # ---- vm ---------------------------------------------------------------------------

    def _vm(self, p: Params) -> Any:
        return self.engine.vm(p.required("vm_id"))

    def _vm_op(self, op: Callable[[Any], None]) -> Action:
        def run(p: Params) -> None:
            op(self._vm(p))

        return run

    def vm_create(self, p: Params) -> dict[str, Any]:
        hostname = validation.hostname(p.required("hostname"))
        plan_id = p.required("plan_id")
        if p.optional("volume_id") is not None:
            raise LunaNodeError("invalid volume")
        image_id = p.required("image_id")
        vm = self.engine.create_vm(
            hostname=hostname, plan_id=plan_id, image_id=image_id,
            region=p.optional("region") or DEFAULT_REGION, key_id=p.optional("key_id"),
            security_groups=p.id_list("securitygroups"), scripts=p.id_list("scripts"),
            ip=p.optional("ip"), net_id=p.optional("net_id"),
            affinity_group=p.optional("affinity_group"),
        )
        return {"vm_id": vm.id}

    def vm_list(self, p: Params) -> dict[str, Any]:
        vms = sorted(self.engine.vms.values(), key=lambda v: v.seq)
        return {"vms": [vm.row() for vm in vms]}

    def vm_info(self, p: Params) -> dict[str, Any]:
        vm = self._vm(p)
        return {"info": vm.info(), "extra": vm.row()}

    def vm_diskswap(self, p: Params) -> None:
        vm = self._vm(p)
        if vm.status == "Deleting":
            raise cannot("diskswap", vm)
        vm.diskswap = not vm.diskswap

    def vm_reimage(self, p: Params) -> None:
        vm = self._vm(p)
        self.engine.reimage_vm(vm, p.required("image_id"))

    def vm_resize(self, p: Params) -> None:
        vm = self._vm(p)
        self.engine.resize_vm(vm, p.required("plan_id"))

    def vm_rename(self, p: Params) -> None:
        vm = self._vm(p)
        self.engine.rename_vm(vm, validation.hostname(p.required("hostname")))

    def vm_snapshot(self, p: Params) -> dict[str, Any]:
        vm = self._vm(p)
        name = validation.label(p.required("name"), "name")
        return {"image_id": self.engine.snapshot_vm(vm, name).id}

    def vm_iplist(self, p: Params) -> dict[str, Any]:
        vm = self._vm(p)
        ips = [{"ip": vm.public_ip, "private_ip": vm.private_ip, "primary": "yes"}]
        return {"ips": ips if vm.ip_shown else []}

    def vm_vnc(self, p: Params) -> dict[str, Any]:
        vm = self._vm(p)
        if vm.status in ("Offline", "Shelved", "Deleting", "Building"):
            raise cannot("open the console of", vm)
        return {"vnc_url": f"{self._vnc_base()}/vnc/vnc_auto.html?token={vm.vnc_token}"}

    def vm_securitygroup_add(self, p: Params) -> None:
        vm = self._vm(p)
        self.engine.vm_security_group(vm, p.required("group_id"), add=True)

    def vm_securitygroup_remove(self, p: Params) -> None:
        vm = self._vm(p)
        self.engine.vm_security_group(vm, p.required("group_id"), add=False)

    # ---- images, plans, regions -------------------------------------------------------

    def image_list(self, p: Params) -> dict[str, Any]:
        region = p.optional("region")
        if region is not None:
            self.engine.region(region)
        rows = [{"image_id": i.id, "name": i.template.name, "status": "active",
                 "size": str(i.template.size_bytes), "region": i.region}
                for i in PUBLIC_IMAGES]
        rows += [i.to_json() for i in sorted(self.engine.images.values(), key=lambda i: i.seq)]
        return {"images": [r for r in rows if region is None or r["region"] == region]}

    def image_details(self, p: Params) -> dict[str, Any]:
        image_id = p.required("image_id")
        public = PUBLIC_IMAGES_BY_ID.get(image_id)
        if public is not None:
            return {"details": {"image_id": public.id, "name": public.template.name,
                                "status": "active", "size": str(public.template.size_bytes),
                                "region": public.region}}
        image = self.engine.images.get(image_id)
        if image is None:
            raise LunaNodeError("invalid image")
        return {"details": image.details()}

    def image_delete(self, p: Params) -> None:
        self.engine.delete_image(p.required("image_id"))

    def plan_list(self, p: Params) -> dict[str, Any]:
        return {"plans": [plan.to_json() for plan in PLANS]}

    def region_list(self, p: Params) -> dict[str, Any]:
        return {"regions": {r.id: r.name for r in REGIONS}}

    # ---- ssh keys ---------------------------------------------------------------------

    def sshkey_list(self, p: Params) -> dict[str, Any]:
        keys = sorted(self.engine.keys.values(), key=lambda k: k.seq)
        return {str(index): key.to_json() for index, key in enumerate(keys)}

    def sshkey_add(self, p: Params) -> dict[str, Any]:
        label = validation.label(p.required("label"))
        value = validation.ssh_public_key(p.required("sshkey"))
        return {"key_id": self.engine.add_key(label, value).id}

    def sshkey_remove(self, p: Params) -> None:
        self.engine.remove_key(p.required("key_id"))

    # ---- security groups --------------------------------------------------------------

    def _group(self, p: Params) -> Any:
        region = self.engine.region(p.required("region"))
        return self.engine.group(p.required("group_id"), region)

    def securitygroup_list(self, p: Params) -> dict[str, Any]:
        groups = sorted(self.engine.groups.values(), key=lambda g: g.seq)
        return {"groups": [g.to_json() for g in groups]}

    def securitygroup_create(self, p: Params) -> dict[str, Any]:
        region = self.engine.region(p.required("region"))
        name = validation.label(p.required("name"), "name")
        return {"group_id": self.engine.create_group(region, name).id}

    def securitygroup_delete(self, p: Params) -> None:
        self.engine.delete_group(self._group(p))

    def securitygroup_rename(self, p: Params) -> None:
        group = self._group(p)
        group.name = validation.label(p.required("name"), "name")

    def rule_list(self, p: Params) -> dict[str, Any]:
        return {"rules": [r.to_json() for r in self._group(p).rules]}

    def rule_insert(self, p: Params) -> None:
        group = self._group(p)
        direction = validation.choice(p.required("direction"), validation.DIRECTIONS,
                                      "direction")
        family = validation.rule_type(p.required("type"))
        protocol = validation.choice(p.required("protocol"), validation.PROTOCOLS, "protocol")
        remote_type = validation.choice(p.required("remote_type"), ("cidr", "group"),
                                        "remote_type")
        remote_value = p.required("remote_value")
        if remote_type == "cidr":
            remote_value = validation.cidr(remote_value, family)
        else:
            remote_value = self.engine.group(remote_value, group.region).id
        low = validation.port(p.optional("port_min"), "port_min")
        high = validation.port(p.optional("port_max"), "port_max")
        if protocol in ("tcp", "udp"):
            low, high = (low if low is not None else high), (high if high is not None else low)
            if low is not None and high is not None and low > high:
                raise LunaNodeError("invalid port range (port_min is above port_max)")
        else:
            low = high = None
        self.engine.insert_rule(
            group, direction=direction, type=family, protocol=protocol,
            remote_type=remote_type, remote_value=remote_value,
            port_min="" if low is None else str(low), port_max="" if high is None else str(high),
            label=validation.label(p.optional("label") or ""),
        )

    def rule_delete(self, p: Params) -> None:
        self.engine.delete_rule(self._group(p), p.required("rule_id"))

    # ---- startup scripts --------------------------------------------------------------

    def script_list(self, p: Params) -> dict[str, Any]:
        scripts = sorted(self.engine.scripts.values(), key=lambda s: s.seq)
        return {"scripts": [s.to_json() for s in scripts]}

    def script_create(self, p: Params) -> dict[str, Any]:
        name = validation.label(p.required("name"), "name")
        return {"script_id": self.engine.create_script(name, p.required("content")).id}

    def script_delete(self, p: Params) -> None:
        self.engine.delete_script(p.required("script_id"))
