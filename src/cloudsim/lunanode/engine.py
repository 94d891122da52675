"""LunaNode's in-memory account and the asynchronous VM lifecycle behind the API.

One simulator is one account (one API id and key).  VM status flows (delays are
simulated seconds, see :class:`LunaNodeSettings`; the words are ``status_nohtml``):

* vm/create: ``Building`` -(build_delay)-> ``Online``.  The private address is
  assigned at once, the public one is reserved at once but shown (``primaryip``,
  ``ip``) only from the first boot on, and kept until the VM is gone.  While
  ``fail_next_builds`` > 0 a build ends in ``Error`` instead.  A create always makes a
  new VM: LunaNode has no idempotency key, a client finds an earlier attempt by
  ``hostname``.
* vm/stop: ``Online``/``Rescue`` -> ``Stopping`` -(stop_delay)-> ``Offline``.
* vm/start: ``Offline`` -> ``Starting`` -(boot_delay)-> ``Online``.
* vm/reboot: ``Online``/``Offline``/``Rescue``/``Error`` -> ``Rebooting``
  -(reboot_delay)-> ``Online`` (a hard reboot: it also starts a stopped VM and leaves
  rescue mode).
* vm/reimage: ``Online``/``Offline``/``Error`` -> ``Rebuilding`` -(reimage_delay)->
  ``Online`` with the new image (and a new password).
* vm/resize: ``Online``/``Offline`` -> ``Resizing`` -(resize_delay)-> ``Online`` with
  the new plan (storage can only grow).
* vm/rescue: ``Online``/``Offline`` -> ``Rescuing`` -(rescue_delay)-> ``Rescue``.
* vm/shelve: ``Online``/``Offline`` -> ``Shelving`` -(shelve_delay)-> ``Shelved``;
  vm/unshelve: ``Shelved`` -> ``Unshelving`` -(boot_delay)-> ``Online``.
* vm/delete: any status -> ``Deleting`` -(delete_delay)-> gone (``invalid vm`` from
  then on, absent from vm/list; while ``Deleting`` it is still listed and vm/info
  answers); a second delete meanwhile is a no-op.  Its addresses
  are freed; its snapshots stay (one still saving ends ``killed``).
* vm/snapshot: ``Online``/``Offline`` VMs; the VM keeps its status, the new image
  (``vm/snapshot``'s ``image_id``) goes ``queued`` -> ``saving`` -(snapshot_delay)->
  ``active`` (``killed`` while ``fail_next_snapshots`` > 0); one at a time per VM.

Any other action in a status not listed answers ``cannot ACTION vm while it is
STATUS``.  Rename and security group changes work in every status but ``Deleting``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import string
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, fields
from typing import Any

from ..common.clock import SimClock
from ..common.errors import ConfigError
from .catalog import (
    PLANS_BY_ID,
    PLANS_BY_NAME,
    PUBLIC_IMAGES_BY_ID,
    REGIONS,
    REGIONS_BY_ID,
    Plan,
)
from .errors import LunaNodeError
from .models import IMAGE_STATUSES, STATUSES, Image, Rule, Script, SecurityGroup, SshKey, Vm

log = logging.getLogger(__name__)

_PASSWORD_ALPHABET = string.ascii_letters + string.digits


@dataclass
class LunaNodeSettings:
    """Provider knobs, changeable at runtime through ``PUT /_sim/config``."""

    build_delay: float = 20.0
    boot_delay: float = 5.0
    stop_delay: float = 5.0
    reboot_delay: float = 10.0
    reimage_delay: float = 30.0
    resize_delay: float = 20.0
    rescue_delay: float = 10.0
    shelve_delay: float = 10.0
    delete_delay: float = 5.0
    snapshot_delay: float = 30.0
    fail_next_builds: int = 0
    fail_next_snapshots: int = 0
    vm_limit: int = 0  # 0: unlimited
    nonce_tolerance: float = 300.0  # real (wall-clock) seconds, either way
    nonce_must_increase: bool = False

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    def checked(self, changes: dict[str, Any]) -> dict[str, Any]:
        """The changes this class knows, validated (``ConfigError`` on a bad value)."""
        updates: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in self.names():
                continue
            current = getattr(self, key)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ConfigError(f"{key} must be a boolean")
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ConfigError(f"{key} must be a non-negative integer")
            elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{key} must be a non-negative number")
            else:
                value = float(value)
            updates[key] = value
        return updates


def cannot(action: str, vm: Vm) -> LunaNodeError:
    return LunaNodeError(f"cannot {action} vm while it is {vm.status}")


class _Pool:
    """Addresses of one network, lowest free first (freed ones are reused)."""

    def __init__(self, network: str, first_host: int = 1) -> None:
        self.network = ipaddress.ip_network(network)
        self.first_host = first_host
        self.used: set[int] = set()

    def take(self) -> str | None:
        size = self.network.num_addresses
        base = int(self.network.network_address)
        for offset in range(self.first_host + 1, size - 1):  # not the gateway, broadcast
            if offset not in self.used:
                self.used.add(offset)
                return str(ipaddress.ip_address(base + offset))
        return None

    def release(self, address: str) -> None:
        if address:
            self.used.discard(int(ipaddress.ip_address(address)) -
                              int(self.network.network_address))


class LunaNodeEngine:
    def __init__(self, clock: SimClock, settings: LunaNodeSettings | None = None) -> None:
        self.clock = clock
        self.settings = settings or LunaNodeSettings()
        self.vms: dict[str, Vm] = {}
        self.images: dict[str, Image] = {}
        self.keys: dict[str, SshKey] = {}
        self.groups: dict[str, SecurityGroup] = {}
        self.scripts: dict[str, Script] = {}
        self._counters = {"vm": 210000, "image": 900000, "key": 5000, "group": 3000,
                          "rule": 70000, "script": 1200}
        self._seq = 0
        self._public = {r.id: _Pool(r.public_network) for r in REGIONS}
        self._private = {r.id: _Pool(r.private_network) for r in REGIONS}
        self._ipv6_next = {r.id: 1 for r in REGIONS}
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- ids, tasks ---------------------------------------------------------------------

    def new_id(self, kind: str) -> str:
        self._counters[kind] += 1
        return str(self._counters[kind])

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._guard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @staticmethod
    async def _guard(coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in a lifecycle step must not vanish silently
            log.exception("cloudsim lunanode: background task failed")

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def configure(self, changes: dict[str, Any]) -> None:
        for key, value in self.settings.checked(changes).items():
            setattr(self.settings, key, value)

    @staticmethod
    def new_password() -> str:
        return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(16))

    # ---- lookups ------------------------------------------------------------------------

    def vm(self, vm_id: str) -> Vm:
        vm = self.vms.get(vm_id)
        if vm is None:
            raise LunaNodeError("invalid vm")
        return vm

    def region(self, region: str) -> str:
        if region not in REGIONS_BY_ID:
            raise LunaNodeError("invalid region")
        return region

    def plan(self, plan_id: str) -> Plan:
        plan = PLANS_BY_ID.get(plan_id) or PLANS_BY_NAME.get(plan_id)
        if plan is None:
            raise LunaNodeError("invalid plan")
        return plan

    def image_for(self, image_id: str, region: str) -> tuple[str, str | None]:
        """(name, login username) of an image a VM in ``region`` can boot."""
        public = PUBLIC_IMAGES_BY_ID.get(image_id)
        if public is not None:
            if public.region != region:
                raise LunaNodeError(f"image is not in region {region}")
            return public.template.name, public.template.username
        private = self.images.get(image_id)
        if private is None:
            raise LunaNodeError("invalid image")
        if private.region != region:
            raise LunaNodeError(f"image is not in region {region}")
        if private.status != "active":
            raise LunaNodeError("image is not active")
        return private.name, private.username

    def key(self, key_id: str) -> SshKey:
        key = self.keys.get(key_id)
        if key is None:
            raise LunaNodeError("invalid key")
        return key

    def group(self, group_id: str, region: str | None = None) -> SecurityGroup:
        group = self.groups.get(group_id)
        if group is None or (region is not None and group.region != region):
            raise LunaNodeError("invalid security group")
        return group

    # ---- operations ---------------------------------------------------------------------

    def _run(self, vm: Vm, status: str, op: str, delay: Callable[[], float],
             done: Callable[[], None]) -> None:
        """Put ``vm`` into ``status`` and run ``done`` after ``delay()`` simulated s."""
        self._cancel(vm)
        vm.status = status
        vm.op = op

        async def later() -> None:
            await self.clock.sleep(delay())
            vm.op = None
            vm.op_task = None
            done()

        vm.op_task = self.spawn(later())

    @staticmethod
    def _cancel(vm: Vm) -> None:
        task = vm.op_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
        vm.op_task = None
        vm.op = None

    def _need(self, vm: Vm, action: str, *allowed: str) -> None:
        if vm.status not in allowed:
            raise cannot(action, vm)

    def _boot(self, vm: Vm) -> None:
        vm.ip_shown = True
        vm.status = "Online"

    def create_vm(
        self, *, hostname: str, plan_id: str, image_id: str, region: str,
        key_id: str | None, security_groups: list[str], scripts: list[str],
        ip: str | None, net_id: str | None, affinity_group: str | None,
    ) -> Vm:
        region = self.region(region)
        plan = self.plan(plan_id)
        if region not in plan.regions:
            raise LunaNodeError("plan not available in this region")
        image_name, username = self.image_for(image_id, region)
        if key_id is not None:
            self.key(key_id)
        groups = [self.group(g, region).id for g in dict.fromkeys(security_groups)]
        for script_id in scripts:
            if script_id not in self.scripts:
                raise LunaNodeError("invalid script")
        limit = self.settings.vm_limit
        if limit and len(self.vms) >= limit:
            raise LunaNodeError(f"VM limit reached ({limit} VMs); contact support to raise it")
        public = self._public[region]
        if ip is not None:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                raise LunaNodeError("invalid ip") from None
            offset = int(address) - int(public.network.network_address)
            if address not in public.network or offset in public.used or offset <= 1:
                raise LunaNodeError("invalid ip")
            public.used.add(offset)
            public_ip: str | None = str(address)
        else:
            public_ip = public.take()
        if public_ip is None:
            raise LunaNodeError(f"no floating IP addresses available in {region}")
        private_ip = self._private[region].take() or ""
        base = ipaddress.IPv6Network(REGIONS_BY_ID[region].ipv6_network)
        ipv6 = str(ipaddress.IPv6Address(int(base.network_address) + self._ipv6_next[region]))
        self._ipv6_next[region] += 1
        vm = Vm(id=self.new_id("vm"), hostname=hostname, region=region, plan_id=plan.id,
                image_id=image_id, image_name=image_name, username=username,
                password=self.new_password(), seq=self.next_seq(), key_id=key_id,
                security_groups=groups, scripts=list(scripts), net_id=net_id,
                affinity_group=affinity_group, private_ip=private_ip, public_ip=public_ip,
                ipv6=ipv6, vnc_token=secrets.token_hex(16))
        self.vms[vm.id] = vm
        self._run(vm, "Building", "build", lambda: self.settings.build_delay,
                  lambda: self._built(vm))
        return vm

    def _built(self, vm: Vm) -> None:
        if self.settings.fail_next_builds > 0:
            self.settings.fail_next_builds -= 1
            vm.status = "Error"
            return
        self._boot(vm)

    def stop_vm(self, vm: Vm) -> None:
        self._need(vm, "stop", "Online", "Rescue")
        self._run(vm, "Stopping", "stop", lambda: self.settings.stop_delay,
                  lambda: setattr(vm, "status", "Offline"))

    def start_vm(self, vm: Vm) -> None:
        self._need(vm, "start", "Offline")
        self._run(vm, "Starting", "start", lambda: self.settings.boot_delay,
                  lambda: self._boot(vm))

    def reboot_vm(self, vm: Vm) -> None:
        self._need(vm, "reboot", "Online", "Offline", "Rescue", "Error")
        self._run(vm, "Rebooting", "reboot", lambda: self.settings.reboot_delay,
                  lambda: self._boot(vm))

    def reimage_vm(self, vm: Vm, image_id: str) -> None:
        self._need(vm, "reimage", "Online", "Offline", "Error")
        name, username = self.image_for(image_id, vm.region)

        def done() -> None:
            vm.image_id, vm.image_name, vm.username = image_id, name, username
            vm.password = self.new_password()
            self._boot(vm)

        self._run(vm, "Rebuilding", "reimage", lambda: self.settings.reimage_delay, done)

    def resize_vm(self, vm: Vm, plan_id: str) -> None:
        self._need(vm, "resize", "Online", "Offline")
        plan = self.plan(plan_id)
        if vm.region not in plan.regions:
            raise LunaNodeError("plan not available in this region")
        if plan.storage_gb < PLANS_BY_ID[vm.plan_id].storage_gb:
            raise LunaNodeError("cannot resize to a plan with less storage")

        def done() -> None:
            vm.plan_id = plan.id
            self._boot(vm)

        self._run(vm, "Resizing", "resize", lambda: self.settings.resize_delay, done)

    def rescue_vm(self, vm: Vm) -> None:
        self._need(vm, "rescue", "Online", "Offline")
        self._run(vm, "Rescuing", "rescue", lambda: self.settings.rescue_delay,
                  lambda: setattr(vm, "status", "Rescue"))

    def shelve_vm(self, vm: Vm) -> None:
        self._need(vm, "shelve", "Online", "Offline")
        self._run(vm, "Shelving", "shelve", lambda: self.settings.shelve_delay,
                  lambda: setattr(vm, "status", "Shelved"))

    def unshelve_vm(self, vm: Vm) -> None:
        self._need(vm, "unshelve", "Shelved")
        self._run(vm, "Unshelving", "unshelve", lambda: self.settings.boot_delay,
                  lambda: self._boot(vm))

    def rename_vm(self, vm: Vm, hostname: str) -> None:
        if vm.status == "Deleting":
            raise cannot("rename", vm)
        vm.hostname = hostname

    def delete_vm(self, vm: Vm) -> None:
        if vm.op == "delete":
            return
        self._run(vm, "Deleting", "delete", lambda: self.settings.delete_delay,
                  lambda: self._gone(vm))

    def _gone(self, vm: Vm) -> None:
        self._cancel(vm)
        if self.vms.get(vm.id) is not vm:
            return
        del self.vms[vm.id]
        self._public[vm.region].release(vm.public_ip)
        self._private[vm.region].release(vm.private_ip)
        if vm.snapshotting is not None:
            image = self.images.get(vm.snapshotting)
            if image is not None and image.status in ("queued", "saving"):
                if image.task is not None:
                    image.task.cancel()
                image.status = "killed"

    def force_status(self, vm: Vm, status: str) -> None:
        """Admin: put ``vm`` into ``status`` out of band (``gone`` removes it at once)."""
        if status == "gone":
            self._gone(vm)
            return
        if status not in STATUSES:
            raise LunaNodeError(f"status must be one of {', '.join(STATUSES)} or gone")
        if status == "Deleting":
            self.delete_vm(vm)
            return
        self._cancel(vm)
        if status in ("Online", "Offline", "Rescue"):
            vm.ip_shown = True
        vm.status = status

    def vm_security_group(self, vm: Vm, group_id: str, *, add: bool) -> None:
        if vm.status == "Deleting":
            raise cannot("change the security groups of", vm)
        group = self.group(group_id, vm.region)
        if add:
            if group.id not in vm.security_groups:
                vm.security_groups.append(group.id)
        elif group.id in vm.security_groups:
            vm.security_groups.remove(group.id)
        else:
            raise LunaNodeError("security group is not associated with this vm")

    # ---- snapshots / images -------------------------------------------------------------

    def snapshot_vm(self, vm: Vm, name: str) -> Image:
        self._need(vm, "snapshot", "Online", "Offline")
        if vm.snapshotting is not None:
            raise LunaNodeError("a snapshot of this vm is already in progress")
        plan = PLANS_BY_ID[vm.plan_id]
        public = PUBLIC_IMAGES_BY_ID.get(vm.image_id)
        base = public.template.size_bytes if public is not None else (
            self.images[vm.image_id].size_bytes if vm.image_id in self.images
            else plan.storage_gb * 2**28)
        image = Image(id=self.new_id("image"), name=name, region=vm.region, source_vm=vm.id,
                      username=vm.username, size_bytes=base + 137_363_456, seq=self.next_seq())
        self.images[image.id] = image
        vm.snapshotting = image.id
        image.task = self.spawn(self._save(vm, image))
        return image

    async def _save(self, vm: Vm, image: Image) -> None:
        image.status = "saving"
        await self.clock.sleep(self.settings.snapshot_delay)
        image.task = None
        if vm.snapshotting == image.id:
            vm.snapshotting = None
        if self.settings.fail_next_snapshots > 0:
            self.settings.fail_next_snapshots -= 1
            image.status = "killed"
            return
        image.status = "active"

    def force_image_status(self, image: Image, status: str) -> None:
        if status not in IMAGE_STATUSES or status == "deleted":
            allowed = ", ".join(s for s in IMAGE_STATUSES if s != "deleted")
            raise LunaNodeError(f"status must be one of {allowed}")
        if image.task is not None and not image.task.done():
            image.task.cancel()
        image.task = None
        vm = self.vms.get(image.source_vm)
        if vm is not None and vm.snapshotting == image.id and status not in ("queued", "saving"):
            vm.snapshotting = None
        image.status = status

    def delete_image(self, image_id: str) -> None:
        if image_id in PUBLIC_IMAGES_BY_ID:
            raise LunaNodeError("cannot delete a public image")
        image = self.images.pop(image_id, None)
        if image is None:
            raise LunaNodeError("invalid image")
        if image.task is not None and not image.task.done():
            image.task.cancel()
        vm = self.vms.get(image.source_vm)
        if vm is not None and vm.snapshotting == image.id:
            vm.snapshotting = None

    # ---- keys, groups, scripts ----------------------------------------------------------

    def add_key(self, label: str, value: str) -> SshKey:
        key = SshKey(id=self.new_id("key"), label=label, value=value, seq=self.next_seq())
        self.keys[key.id] = key
        return key

    def remove_key(self, key_id: str) -> None:
        self.key(key_id)
        del self.keys[key_id]

    def create_group(self, region: str, name: str) -> SecurityGroup:
        group = SecurityGroup(id=self.new_id("group"), name=name, region=self.region(region),
                              seq=self.next_seq())
        self.groups[group.id] = group
        return group

    def delete_group(self, group: SecurityGroup) -> None:
        if any(group.id in vm.security_groups for vm in self.vms.values()):
            raise LunaNodeError("security group is in use by a vm")
        del self.groups[group.id]

    def insert_rule(self, group: SecurityGroup, **fields: str) -> Rule:
        rule = Rule(id=self.new_id("rule"), group_id=group.id, **fields)
        group.rules.append(rule)
        return rule

    def delete_rule(self, group: SecurityGroup, rule_id: str) -> None:
        kept = [r for r in group.rules if r.id != rule_id]
        if len(kept) == len(group.rules):
            raise LunaNodeError("invalid rule")
        group.rules = kept

    def create_script(self, name: str, content: str) -> Script:
        script = Script(id=self.new_id("script"), name=name, content=content,
                        seq=self.next_seq())
        self.scripts[script.id] = script
        return script

    def delete_script(self, script_id: str) -> None:
        if self.scripts.pop(script_id, None) is None:
            raise LunaNodeError("invalid script")
