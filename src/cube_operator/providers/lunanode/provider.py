"""LunaNode behind the :class:`~..base.Provider` protocol.

- No idempotency keys: the hostname carries the owner's UID (``<name>-<uid>``), and an
  earlier create attempt is found by it before any new create.
- ``vm/list`` (one call per interval) has no power state. ``vm/info`` is asked only for VMs
  that are new, changing, just acted on, or due in the slow jittered sweep
  (``spec.lunanode.stateSweepSeconds``, default 300 s: 12 calls per VM per hour when
  settled).
- Snapshots are images (``vm/snapshot``), listed with one ``image/list`` shared for a few
  seconds; their names carry the VM id so each VM finds its own. Restore is ``vm/reimage``.
- TcpMapping: allow rules for port P from each CIDR (both families from anywhere for an
  empty allowlist) in a security group the operator owns for the VM
  (``cube-operator-<vm id>``). LunaNode's groups only allow: traffic no rule allows is
  refused, so the allowlist is the whole rule.
"""

from __future__ import annotations

import hashlib
import ipaddress
import random
import re
import time

from ..base import (
    Capability,
    Catalogue,
    CreateAttempt,
    ObservedVM,
    ProviderBase,
    SnapshotInfo,
    TcpExposure,
    VMSpec,
    VMState,
    not_offered,
)
from ..errors import Invalid, NotFound, SpecRejected, Transient
from .client import LunaNodeClient
from .mapping import catalogue_of, is_settled, observed_vm, public_name, snapshot_state, vm_state
from .models import Image, Plan, VmInfo, VmRow

__all__ = ["LUNANODE_CAPABILITIES", "LunaNodeProvider", "choose_plan", "vm_name"]

LUNANODE_CAPABILITIES = frozenset({
    Capability.POWER, Capability.SNAPSHOTS, Capability.RESTORE, Capability.TCP_EXPOSURE,
    Capability.SNAPSHOT_DELETE,
})
_CATALOGUE_TTL = 600.0
#: A spec naming something the cached lists lack reads them again, at most this often.
_RECHECK_AFTER = 30.0
_IMAGES_TTL = 3.0
_ACTION_WATCH = 600.0  # after an action, vm/info each pass until settled (bounded)
_NOTE = "cube-operator tcp/"
_ANYWHERE = ("0.0.0.0/0", "::/0")


def vm_name(object_name: str, owner_uid: str) -> str:
    """A hostname label: ``<name>-<uid>``, at most 63 characters of [a-z0-9-]."""
    base = re.sub(r"[^a-z0-9-]", "-", object_name.lower()).strip("-") or "cube"
    room = 63 - len(owner_uid) - 1
    if len(base) > room:
        base = base[: room - 7].rstrip("-") + "-" + hashlib.sha256(object_name.encode()).hexdigest()[:6]
    return f"{base}-{owner_uid}"


def choose_plan(plans: list[Plan], spec: VMSpec) -> Plan:
    if spec.plan:
        found = next((p for p in plans if spec.plan in (p.plan_id, p.name)), None)
        if found is None:
            raise SpecRejected(not_offered("spec.plan", "plan", spec.plan, "lunanode",
                                           [p.name or p.plan_id for p in plans]), provider="lunanode")
        return found
    assert spec.resources is not None
    want = spec.resources
    # Plans say where they are sold (when the answer has it): only those of the region fit.
    sold = [p for p in plans if not spec.region or not p.regions or spec.region in p.regions] or plans
    fitting = [p for p in sold if p.cpus >= want.vcpu and p.ram_mb >= want.ram_gb * 1024
               and p.disk_gb >= want.disk_gb]
    if not fitting:
        largest = max(sold, key=lambda p: (p.cpus, p.ram_mb, p.disk_gb), default=None)
        hint = (f"; the largest is {largest.name or largest.plan_id} ({largest.cpus} vCPU, "
                f"{largest.ram_mb // 1024} GB RAM, {largest.disk_gb} GB disk)" if largest else "")
        raise SpecRejected(f"spec.resources: no lunanode plan fits {want.vcpu} vCPU, {want.ram_gb:g} GB RAM, "
                           f"{want.disk_gb:g} GB disk{hint}", provider="lunanode")
    return min(fitting, key=lambda p: (p.monthly or 0.0, p.cpus, p.ram_mb, p.disk_gb))


class LunaNodeProvider(ProviderBase):
    client: LunaNodeClient
    name = "lunanode"
    capabilities = LUNANODE_CAPABILITIES

    def __init__(self, client: LunaNodeClient, *, sweep_seconds: float = 300.0,
                 rng: random.Random | None = None) -> None:
        super().__init__(client)
        self.sweep_seconds = sweep_seconds
        self._rng = rng or random.Random()
        self._plans: dict[str, Plan] = {}
        self._plans_at = 0.0
        self._rows: dict[str, VmRow] = {}
        self._info: dict[str, VmInfo] = {}
        self._next_info: dict[str, float] = {}  # monotonic time the next vm/info is due
        # After an action: follow the VM each pass until it reaches this state (or the deadline).
        self._expect: dict[str, tuple[VMState | None, float]] = {}
        self._images: list[Image] = []
        self._images_at = 0.0
        self._region_images: dict[str, tuple[float, list[Image]]] = {}
        self._regions: tuple[float, list[tuple[str, str]]] | None = None
        self._ssh_keys: dict[str, str] = {}
        #: vm/info calls made, for the benchmark and the docs' calls-per-VM-per-hour figure.
        self.info_calls = 0


    # -- catalogue ----------------------------------------------------------------------

    async def plans(self) -> dict[str, Plan]:
        if not self._plans or time.monotonic() - self._plans_at > _CATALOGUE_TTL:
            self._plans = {p.plan_id: p for p in await self.client.list_plans()}
            self._plans_at = time.monotonic()
        return self._plans

    async def images(self, fresh: bool = False) -> list[Image]:
        if fresh or time.monotonic() - self._images_at > _IMAGES_TTL:
            self._images = await self.client.list_images()
            self._images_at = time.monotonic()
        return self._images

    async def images_in(self, region: str | None, *, fresh: bool = False) -> list[Image]:
        """Images of ``region`` (every region's for None), kept for 10 minutes."""
        key = region or ""
        cached = self._region_images.get(key)
        if fresh or cached is None or time.monotonic() - cached[0] > _CATALOGUE_TTL:
            # Public images have an id per region: look in the VM's region only.
            cached = (time.monotonic(), await self.client.list_images(region))
            self._region_images[key] = cached
        return cached[1]

    async def regions(self, *, fresh: bool = False) -> list[tuple[str, str]]:
        """(id, name) of LunaNode's regions, kept for 10 minutes."""
        if fresh or self._regions is None or time.monotonic() - self._regions[0] > _CATALOGUE_TTL:
            self._regions = (time.monotonic(), await self.client.list_regions())
        return self._regions[1]

    async def catalogue(self) -> Catalogue:
        self._plans_at = 0.0  # asked rarely: read everything afresh (and refresh the caches)
        plans = await self.plans()
        return catalogue_of(list(plans.values()), await self.images_in(None, fresh=True),
                            await self.regions(fresh=True))

    async def check_region(self, region: str | None) -> None:
        """SpecRejected naming the regions when LunaNode has no ``region`` (an unreadable
        list leaves it to LunaNode)."""
        if not region:
            return
        try:
            known = await self.regions()
            if known and region not in {r for r, _ in known} and time.monotonic() - (
                    self._regions[0] if self._regions else 0.0) > _RECHECK_AFTER:
                known = await self.regions(fresh=True)
        except (Transient, Invalid, NotFound):  # no listing to check against: the provider decides
            return
        if known and region not in {r for r, _ in known}:
            raise SpecRejected(not_offered("spec.region", "region", region, self.name, [r for r, _ in known]),
                               provider=self.name)

    async def image_id(self, image: str, region: str | None) -> str:
        wanted = image.strip().lower()

        def match(images: list[Image]) -> str | None:
            for candidate in images:
                name = candidate.name.lower()
                bare = re.sub(r"\s*\((template|iso)\)$", "", name)
                if wanted in (candidate.image_id, name, bare):
                    return candidate.image_id
            return None

        images = await self.images_in(region)
        found = match(images)
        if found is None and time.monotonic() - self._region_images[region or ""][0] > _RECHECK_AFTER:
            images = await self.images_in(region, fresh=True)
            found = match(images)
        if found is not None:
            return found
        names = [named[0] for named in map(public_name, images) if named is not None]
        where = f"lunanode in {region}" if region else "lunanode"
        raise SpecRejected(not_offered("spec.image", "image", image, where, names), provider=self.name)

    # -- observation --------------------------------------------------------------------

    def _due(self, vm_id: str, now: float) -> bool:
        info = self._info.get(vm_id)
        if info is None or not is_settled(info.status_nohtml) or vm_id in self._expect:
            return True
        return self._next_info.get(vm_id, 0.0) <= now

    async def _refresh_info(self, vm_id: str) -> VmInfo:
        info, row = await self.client.vm_info(vm_id)
        self.info_calls += 1
        now = time.monotonic()
        self._info[vm_id] = info
        if row is not None:
            self._rows[vm_id] = row
        # Jittered so a fleet's sweeps spread out instead of landing in one pass.
        self._next_info[vm_id] = now + self.sweep_seconds * self._rng.uniform(0.8, 1.2)
        expected = self._expect.get(vm_id)
        if expected is not None:
            state = vm_state(info.status_nohtml)
            if state is expected[0] or state is VMState.ERROR or now > expected[1]:
                del self._expect[vm_id]
        return info

    def _watch(self, vm_id: str, expect: VMState | None) -> None:
        """An action was sent: its effect shows only in vm/info, so follow the VM."""
        self._expect[vm_id] = (expect, time.monotonic() + _ACTION_WATCH)

    def _observe(self, vm_id: str) -> ObservedVM:
        return observed_vm(self._rows[vm_id], self._info.get(vm_id), self._plans)

    async def list_vms(self) -> list[ObservedVM]:
        await self.plans()
        rows = await self.client.list_vms()
        now = time.monotonic()
        self._rows = {r.vm_id: r for r in rows}
        for vm_id in list(self._info):
            if vm_id not in self._rows:
                self._info.pop(vm_id, None)
                self._next_info.pop(vm_id, None)
                self._expect.pop(vm_id, None)
        for row in rows:
            if self._due(row.vm_id, now):
                try:
                    await self._refresh_info(row.vm_id)
                except NotFound:
                    self._rows.pop(row.vm_id, None)
        return [self._observe(vm_id) for vm_id in self._rows]

    async def get_vm(self, vm_id: str) -> ObservedVM:
        await self.plans()
        info = await self._refresh_info(vm_id)
        if vm_id not in self._rows:
            self._rows[vm_id] = VmRow(vm_id=vm_id, hostname=info.hostname, primaryip=info.ip,
                                      privateip=info.privateip)
        return self._observe(vm_id)

    # -- VMs ----------------------------------------------------------------------------

    def validate_spec(self, spec: VMSpec) -> list[str]:
        problems = []
        if spec.plan is None and spec.resources is None:
            problems.append("spec.plan (or spec.resources, matched to the cheapest plan that fits) "
                            "is required for provider lunanode")
        if not spec.ssh_public_key:
            problems.append("spec.sshPublicKey or spec.sshPublicKeySecretRef is required for provider lunanode")
        return problems

    def vm_name(self, object_name: str, owner_uid: str) -> str:
        return vm_name(object_name, owner_uid)

    async def check_credentials(self) -> None:
        await self.client.list_plans()

    async def find_vms(self, name: str, attempt: CreateAttempt) -> list[ObservedVM]:
        await self.plans()
        rows = [r for r in await self.client.list_vms()
                if (r.hostname or r.name) == name and name.endswith(attempt.owner_uid)]
        found = []
        for row in rows:
            self._rows[row.vm_id] = row
            try:
                await self._refresh_info(row.vm_id)
            except NotFound:
                continue
            vm = self._observe(row.vm_id)
            if vm.state is not VMState.DELETING:
                found.append(vm)
        return found

    async def ssh_key_id(self, public_key: str) -> str:
        value = " ".join(public_key.split()[:2])
        if value not in self._ssh_keys:
            name = "cube-operator-" + hashlib.sha256(value.encode()).hexdigest()[:12]
            keys = await self.client.list_ssh_keys()
            found = next((k.id for k in keys if name in (k.name, k.label)
                          or (k.value and " ".join(k.value.split()[:2]) == value)), None)
            if found is None:
                found = await self.client.add_ssh_key(name=name, value=public_key)
            if not found:
                found = next((k.id for k in await self.client.list_ssh_keys() if name in (k.name, k.label)), None)
            if not found:
                raise SpecRejected("lunanode did not list the SSH key just added", provider=self.name)
            self._ssh_keys[value] = found
        return self._ssh_keys[value]

    async def create_vm(self, spec: VMSpec, attempt: CreateAttempt) -> ObservedVM:
        plans = list((await self.plans()).values())
        plan = choose_plan(plans, spec)
        await self.check_region(spec.region)
        if spec.region and plan.regions and spec.region not in plan.regions:
            there = [p.name or p.plan_id for p in plans if spec.region in p.regions]
            raise SpecRejected(not_offered("spec.plan", "plan", plan.name or plan.plan_id, self.name, there,
                                           why=f"is not sold in {spec.region} by"), provider=self.name)
        image_id = await self.image_id(spec.image, spec.region)
        assert spec.ssh_public_key
        key_id = await self.ssh_key_id(spec.ssh_public_key)
        vm_id = await self.client.create_vm(hostname=spec.name, plan_id=plan.plan_id, image_id=image_id,
                                            region=spec.region, key_id=key_id)
        self._watch(vm_id, VMState.RUNNING)
        return await self.get_vm(vm_id)

    async def delete_vm(self, vm_id: str) -> None:
        await self.client.vm_action("delete", vm_id)
        self._watch(vm_id, None)

    async def set_power(self, vm_id: str, running: bool) -> None:
        await self.client.vm_action("start" if running else "stop", vm_id)
        self._watch(vm_id, VMState.RUNNING if running else VMState.STOPPED)

    # -- snapshots and restore (images) -------------------------------------------------

    @staticmethod
    def _image_name(vm_id: str, name: str) -> str:
        return f"cube-operator-{vm_id}-{name}"

    async def list_snapshots(self, vm_id: str) -> list[SnapshotInfo]:
        prefix = f"cube-operator-{vm_id}-"
        return [SnapshotInfo(id=i.image_id, vm_id=vm_id, name=i.name[len(prefix):],
                             state=snapshot_state(i.status), provider_state=i.status)
                for i in await self.images() if i.name.startswith(prefix)]

    async def create_snapshot(self, vm_id: str, name: str, attempt: CreateAttempt) -> SnapshotInfo:
        image_id = await self.client.snapshot(vm_id, self._image_name(vm_id, name))
        self._images_at = 0.0
        return SnapshotInfo(id=image_id, vm_id=vm_id, name=name, state=snapshot_state("queued"),
                            provider_state="queued")

    async def delete_snapshot(self, vm_id: str, snapshot_id: str) -> None:
        self._images_at = 0.0
        await self.client.delete_image(snapshot_id)

    async def restore_snapshot(self, vm_id: str, snapshot_id: str) -> None:
        await self.client.vm_action("reimage", vm_id, image_id=snapshot_id)
        self._watch(vm_id, VMState.RUNNING)

    # -- TCP exposure through a security group per VM -----------------------------------

    @staticmethod
    def group_name(vm_id: str) -> str:
        return f"cube-operator-{vm_id}"

    async def _region(self, vm_id: str) -> str:
        row = self._rows.get(vm_id)
        if row is None or not row.region:
            await self.get_vm(vm_id)
            row = self._rows.get(vm_id)
        if row is None or not row.region:
            raise NotFound(f"VM {vm_id} has no region", provider=self.name)
        return row.region

    async def _group(self, vm_id: str, region: str, *, create: bool) -> str | None:
        name = self.group_name(vm_id)
        found = next((g for g in await self.client.list_groups() if g.name == name), None)
        if found is not None:
            return found.group_id
        if not create:
            return None
        group_id = await self.client.create_group(region=region, name=name)
        await self.client.add_group_to_vm(vm_id, group_id)
        return group_id

    @staticmethod
    def _port(label: str | None) -> int | None:
        if not label or not label.startswith(_NOTE):
            return None
        try:
            return int(label[len(_NOTE):].split(" ", 1)[0])
        except ValueError:
            return None

    async def list_exposures(self, vm_id: str) -> list[TcpExposure]:
        region = await self._region(vm_id)
        group_id = await self._group(vm_id, region, create=False)
        if group_id is None:
            return []
        by_port: dict[int, list[str]] = {}
        labels: dict[int, str] = {}
        for rule in await self.client.list_rules(region=region, group_id=group_id):
            port = self._port(rule.label)
            if port is not None:
                by_port.setdefault(port, []).append(rule.remote_value)
                labels[port] = rule.label or ""
        host = self._rows[vm_id].primaryip if vm_id in self._rows else None
        out = []
        for port, sources in sorted(by_port.items()):
            allowed = () if set(sources) == set(_ANYWHERE) else tuple(sources)
            rest = labels[port][len(_NOTE):]
            out.append(TcpExposure(id=f"{group_id}/tcp-{port}", vm_id=vm_id, vm_port=port, host_port=port,
                                   host=host, label=rest.split(" ", 1)[1] if " " in rest else None,
                                   allowed_cidrs=allowed, active=True, provider_state="applied"))
        return out

    async def expose(self, vm_id: str, *, vm_port: int, label: str | None, allowed_cidrs: list[str],
                     attempt: CreateAttempt) -> TcpExposure:
        region = await self._region(vm_id)
        group_id = await self._group(vm_id, region, create=True)
        assert group_id is not None
        existing = [r for r in await self.client.list_rules(region=region, group_id=group_id)
                    if self._port(r.label) == vm_port]
        for rule in existing:  # a half-written earlier attempt: start clean
            await self.client.delete_rule(region=region, group_id=group_id, rule_id=rule.rule_id)
        note = f"{_NOTE}{vm_port}" + (f" {label}" if label else "")
        for cidr in allowed_cidrs or list(_ANYWHERE):
            family = "ipv6" if ipaddress.ip_network(cidr, strict=False).version == 6 else "ipv4"
            await self.client.insert_rule(region=region, group_id=group_id, type_=family, remote_value=cidr,
                                          port=vm_port, label=note)
        mine = [e for e in await self.list_exposures(vm_id) if e.vm_port == vm_port]
        if not mine:
            raise NotFound("the security group lost the rules just written", provider=self.name)
        return mine[0]

    async def unexpose(self, vm_id: str, exposure_id: str) -> None:
        group_id, _, port_text = exposure_id.partition("/tcp-")
        region = await self._region(vm_id)
        rules = [r for r in await self.client.list_rules(region=region, group_id=group_id)
                 if port_text.isdigit() and self._port(r.label) == int(port_text)]
        if not rules:
            raise NotFound(f"no security group rules {exposure_id}", provider=self.name)
        for rule in rules:
            await self.client.delete_rule(region=region, group_id=group_id, rule_id=rule.rule_id)
