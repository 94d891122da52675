"""NoKYC VPS behind the :class:`~..base.Provider` protocol.

- Sizing is by plan: ``spec.plan``, or the cheapest plan available in the region that
  fits ``spec.resources`` (the chosen plan is reported in status).
- Crash safety: every POST carries an idempotency key (the create's comes from the
  create attempt), and the owner UID is a server label, so ``find_vms`` is exact.
- The SSH public key is registered once per fingerprint and reused.
- TcpMapping: rules in one firewall group per server that the operator owns
  (``cube-operator-<server id>``, default accept): accept tcp P from each CIDR, then drop
  tcp P from 0.0.0.0/0 and ::/0 (an empty allowlist accepts P from everywhere). Each rule
  carries a note marking it ours; other rules in the group are left untouched, and every
  change is one atomic ``PUT .../rules``.
- Snapshots are listed account-wide, one call shared by every Snapshot for a few seconds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
import uuid

from ..base import (
    Capability,
    Catalogue,
    CreateAttempt,
    ObservedVM,
    ProviderBase,
    SnapshotInfo,
    TcpExposure,
    VMSpec,
    WebhookEndpoint,
    not_offered,
)
from ..errors import Invalid, NotFound, SpecRejected, Transient
from .client import NoKycClient
from .mapping import OWNER_LABEL, catalogue_of, observed_vm, snapshot_info
from .models import FirewallGroup, FirewallRule, Image, Plan, Region, Server

__all__ = ["NOKYC_CAPABILITIES", "NoKycProvider", "vm_name"]

NOKYC_CAPABILITIES = frozenset({
    Capability.POWER, Capability.SNAPSHOTS, Capability.RESTORE, Capability.TCP_EXPOSURE,
    Capability.WEBHOOKS, Capability.IDEMPOTENT_CREATE, Capability.USER_DATA, Capability.SNAPSHOT_DELETE,
})
NAME_MAX = 63
_PLANS_TTL = 600.0
#: A spec naming something the cached lists lack reads them again, at most this often.
_RECHECK_AFTER = 30.0
_SNAPSHOTS_TTL = 3.0
_NOTE = "cube-operator tcp/"
_ANYWHERE = ("0.0.0.0/0", "::/0")
#: The Webhook kind's event names → NoKYC's.
EVENTS = {
    "cube.running": "server.running",
    "cube.stopped": "server.stopped",
    "cube.sleeping": "server.stopped",
    "cube.error": "server.suspended",
    "cube.deleted": "server.destroyed",
}


def vm_name(object_name: str, owner_uid: str = "") -> str:
    """NoKYC names are ``[a-z][a-z0-9-]{0,62}``: dots become dashes, a name not starting
    with a letter gets ``c-``, and long names are cut with a stable hash suffix. The owner
    UID travels as a label, not in the name."""
    name = re.sub(r"[^a-z0-9-]", "-", object_name.lower())
    if not name[:1].isalpha():
        name = "c-" + name
    if len(name) > NAME_MAX:
        digest = hashlib.sha256(object_name.encode()).hexdigest()[:8]
        name = f"{name[: NAME_MAX - 9]}-{digest}"
    return name


def fingerprint(public_key: str) -> str:
    """OpenSSH's ``SHA256:<base64 of sha256(key blob), no padding>``."""
    try:
        blob = base64.b64decode(public_key.split()[1], validate=True)
    except (IndexError, binascii.Error, ValueError):
        raise SpecRejected("spec.sshPublicKey is not an OpenSSH public key", provider="nokyc") from None
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def choose_plan(plans: list[Plan], spec: VMSpec) -> Plan:
    if spec.plan:
        found = next((p for p in plans if p.id == spec.plan), None)
        if found is None:
            raise SpecRejected(not_offered("spec.plan", "plan", spec.plan, "nokyc", sorted(p.id for p in plans)),
                               provider="nokyc")
        return found
    assert spec.resources is not None
    want = spec.resources
    usable = [p for p in plans if p.category == "vps" and (not spec.region or spec.region in p.available_in)]
    fitting = [p for p in usable if p.cpu >= want.vcpu and p.ram_mb >= want.ram_gb * 1024
               and p.disk_gb >= want.disk_gb]
    if not fitting:
        largest = max(usable or plans, key=lambda p: (p.cpu, p.ram_mb, p.disk_gb), default=None)
        hint = (f"; the largest{' in ' + spec.region if spec.region else ''} is {largest.id} "
                f"({largest.cpu} vCPU, {largest.ram_mb // 1024} GB RAM, {largest.disk_gb} GB disk)"
                if largest else "")
        raise SpecRejected(f"spec.resources: no nokyc plan fits {want.vcpu} vCPU, {want.ram_gb:g} GB RAM, "
                           f"{want.disk_gb:g} GB disk{hint}", provider="nokyc")
    return min(fitting, key=lambda p: (p.price_usd_hour or 0.0, p.cpu, p.ram_mb, p.disk_gb))


class NoKycProvider(ProviderBase):
    client: NoKycClient
    name = "nokyc"
    capabilities = NOKYC_CAPABILITIES

    def __init__(self, client: NoKycClient) -> None:
        super().__init__(client)
        self._plans: dict[str, Plan] = {}
        self._plans_at = 0.0
        self._ssh_keys: dict[str, str] = {}  # fingerprint -> key id
        self._servers: dict[str, Server] = {}  # the newest view of each server
        self._snapshots: list[SnapshotInfo] = []
        self._snapshots_at = 0.0
        self._offered: tuple[list[Image], list[Region]] | None = None
        self._offered_at = 0.0

    # -- catalogue ----------------------------------------------------------------------

    async def plans(self) -> dict[str, Plan]:
        if not self._plans or time.monotonic() - self._plans_at > _PLANS_TTL:
            self._plans = {p.id: p for p in await self.client.list_plans()}
            self._plans_at = time.monotonic()
        return self._plans

    async def offered(self, *, fresh: bool = False) -> tuple[list[Image], list[Region]]:
        """The images and regions NoKYC lists, kept as long as the plans."""
        if fresh or self._offered is None or time.monotonic() - self._offered_at > _PLANS_TTL:
            self._offered = (await self.client.list_images(), await self.client.list_regions())
            self._offered_at = time.monotonic()
        return self._offered

    async def catalogue(self) -> Catalogue:
        self._plans_at = 0.0  # asked rarely: read everything afresh (and refresh the caches)
        plans = await self.plans()
        images, regions = await self.offered(fresh=True)
        return catalogue_of(list(plans.values()), images, regions)

    async def check_offered(self, spec: VMSpec) -> None:
        """SpecRejected naming the choices for an image or region NoKYC does not list (or a
        deprecated image), before the create. An unreadable listing leaves it to NoKYC."""
        def problems(images: list[Image], regions: list[Region]) -> list[str]:
            out = []
            current = [i.id for i in images if not i.deprecated_at]
            image = next((i for i in images if i.id == spec.image), None)
            if images and image is None:
                out.append(not_offered("spec.image", "image", spec.image, self.name, current))
            elif image is not None and image.deprecated_at:
                out.append(not_offered("spec.image", "image", spec.image, self.name, current,
                                       why=f"is deprecated (since {image.deprecated_at}) at"))
            if regions and spec.region and spec.region not in {r.id for r in regions}:
                out.append(not_offered("spec.region", "region", spec.region, self.name, [r.id for r in regions]))
            return out

        try:
            found = problems(*await self.offered())
            if found and time.monotonic() - self._offered_at > _RECHECK_AFTER:
                found = problems(*await self.offered(fresh=True))
        except (Transient, Invalid, NotFound):  # no listing to check against: the provider decides
            return
        if found:
            raise SpecRejected("; ".join(found), provider=self.name)

    def _observe(self, server: Server) -> ObservedVM:
        self._servers[server.id] = server
        return observed_vm(server, self._plans)

    # -- VMs ----------------------------------------------------------------------------

    def validate_spec(self, spec: VMSpec) -> list[str]:
        problems = []
        if spec.plan is None and spec.resources is None:
            problems.append("spec.plan (or spec.resources, matched to the cheapest plan that fits) "
                            "is required for provider nokyc")
        if not spec.ssh_public_key:
            problems.append("spec.sshPublicKey or spec.sshPublicKeySecretRef is required for provider "
                            "nokyc (servers take at least one SSH key)")
        if spec.user_data and len(spec.user_data.encode()) > 64 * 1024:
            problems.append("spec.userData: nokyc takes at most 64 KiB of user data")
        if spec.root_password:
            problems.append("spec.rootPasswordSecretRef: nokyc takes no root password; use an SSH key")
        return problems

    def vm_name(self, object_name: str, owner_uid: str) -> str:
        return vm_name(object_name, owner_uid)

    async def check_credentials(self) -> None:
        await self.client.check_token()

    async def list_vms(self) -> list[ObservedVM]:
        await self.plans()
        return [self._observe(s) for s in await self.client.list_servers()]

    async def get_vm(self, vm_id: str) -> ObservedVM:
        await self.plans()
        return self._observe(await self.client.get_server(vm_id))

    async def find_vms(self, name: str, attempt: CreateAttempt) -> list[ObservedVM]:
        await self.plans()
        servers = await self.client.list_servers(**{f"labels.{OWNER_LABEL}": attempt.owner_uid})
        # The filter is the provider's; the label check is ours (never trust a filter blindly).
        return [self._observe(s) for s in servers
                if s.labels.get(OWNER_LABEL) == attempt.owner_uid and s.status != "destroying"]

    async def ssh_key_id(self, public_key: str) -> str:
        print_ = fingerprint(public_key)
        if print_ not in self._ssh_keys:
            known = {k.fingerprint: k.id for k in await self.client.list_ssh_keys()}
            if print_ not in known:
                digest = print_.split(":", 1)[1]
                safe = re.sub(r"[^a-z0-9]", "", digest.lower())[:12]
                created = await self.client.create_ssh_key(name=f"cube-operator-{safe}", public_key=public_key)
                known[created.fingerprint] = created.id
            self._ssh_keys.update(known)
        return self._ssh_keys[print_]

    async def create_vm(self, spec: VMSpec, attempt: CreateAttempt) -> ObservedVM:
        await self.check_offered(spec)
        plans = list((await self.plans()).values())
        plan = choose_plan(plans, spec)
        if spec.region and spec.region not in plan.available_in:
            where = ", ".join(plan.available_in) or "no region"
            there = sorted(p.id for p in plans if spec.region in p.available_in)
            raise SpecRejected(f"spec.plan: nokyc plan {plan.id} is not available in {spec.region} "
                               f"(available in {where}); plans in {spec.region}: {', '.join(there) or 'none'}",
                               provider=self.name)
        assert spec.ssh_public_key
        body: dict[str, object] = {
            "name": spec.name, "plan": plan.id, "image": spec.image,
            "ssh_keys": [await self.ssh_key_id(spec.ssh_public_key)],
            "labels": {**spec.labels, OWNER_LABEL: attempt.owner_uid},
            "tags": ["cube-operator"],
        }
        if spec.region:
            body["region"] = spec.region
        elif plan.available_in:
            body["region"] = plan.available_in[0]
        if spec.user_data:
            body["user_data_b64"] = base64.b64encode(spec.user_data.encode()).decode()
        server = await self.client.create_server(body, idempotency_key=attempt.idempotency_key)
        return self._observe(server)

    async def delete_vm(self, vm_id: str) -> None:
        await self.client.delete_server(vm_id)

    async def set_power(self, vm_id: str, running: bool) -> None:
        await self.client.power(vm_id, "start" if running else "stop")

    # -- snapshots and restore ----------------------------------------------------------

    async def list_snapshots(self, vm_id: str) -> list[SnapshotInfo]:
        if time.monotonic() - self._snapshots_at > _SNAPSHOTS_TTL:
            self._snapshots = [snapshot_info(s) for s in await self.client.list_snapshots()]
            self._snapshots_at = time.monotonic()
        return [s for s in self._snapshots if s.vm_id == vm_id]

    async def create_snapshot(self, vm_id: str, name: str, attempt: CreateAttempt) -> SnapshotInfo:
        self._snapshots_at = 0.0
        snapshot = await self.client.create_snapshot(vm_id, name=name, idempotency_key=attempt.idempotency_key)
        return snapshot_info(snapshot)

    async def delete_snapshot(self, vm_id: str, snapshot_id: str) -> None:
        self._snapshots_at = 0.0
        await self.client.delete_snapshot(snapshot_id)

    async def restore_snapshot(self, vm_id: str, snapshot_id: str) -> None:
        await self.client.restore(vm_id, snapshot_id, idempotency_key=f"cube-operator-restore-{uuid.uuid4()}")

    # -- TCP exposure through a firewall group per server ---------------------------------

    @staticmethod
    def group_name(vm_id: str) -> str:
        return f"cube-operator-{vm_id}"

    async def _group(self, vm_id: str) -> FirewallGroup | None:
        name = self.group_name(vm_id)
        return next((g for g in await self.client.list_firewall_groups() if g.name == name), None)

    @staticmethod
    def _port_of(rule: FirewallRule) -> int | None:
        note = rule.note or ""
        if not note.startswith(_NOTE):
            return None
        try:
            return int(note[len(_NOTE):].split(" ", 1)[0])
        except ValueError:
            return None

    async def _host(self, vm_id: str) -> str | None:
        server = self._servers.get(vm_id)
        if server is None or server.ipv4 is None:
            try:
                server = await self.client.get_server(vm_id)
            except NotFound:
                return None
            self._servers[vm_id] = server
        return server.ipv4.address if server.ipv4 else None

    def _exposures(self, group: FirewallGroup, vm_id: str, host: str | None) -> list[TcpExposure]:
        by_port: dict[int, list[FirewallRule]] = {}
        for rule in group.rules:
            port = self._port_of(rule)
            if port is not None:
                by_port.setdefault(port, []).append(rule)
        out = []
        for port, rules in sorted(by_port.items()):
            accepts = tuple(r.source for r in rules if r.action == "accept")
            drops = [r for r in rules if r.action != "accept"]
            allowed = () if not drops and set(accepts) == set(_ANYWHERE) else accepts
            note = rules[0].note or ""
            label = note[len(_NOTE):].split(" ", 1)[1] if " " in note[len(_NOTE):] else None
            out.append(TcpExposure(
                id=f"{group.id}/tcp-{port}", vm_id=vm_id, vm_port=port, host_port=port, host=host,
                label=label, allowed_cidrs=allowed, active=vm_id in group.applied_to,
                provider_state="applied" if vm_id in group.applied_to else "not applied"))
        return out

    async def list_exposures(self, vm_id: str) -> list[TcpExposure]:
        group = await self._group(vm_id)
        if group is None:
            return []
        return self._exposures(group, vm_id, await self._host(vm_id))

    @staticmethod
    def rules_for(port: int, label: str | None, allowed_cidrs: list[str]) -> list[FirewallRule]:
        note = f"{_NOTE}{port}" + (f" {label}" if label else "")
        sources = list(allowed_cidrs) or list(_ANYWHERE)
        rules = [FirewallRule(direction="in", proto="tcp", port=str(port), source=cidr,
                              action="accept", note=note) for cidr in sources]
        if allowed_cidrs:  # then nobody else
            rules += [FirewallRule(direction="in", proto="tcp", port=str(port), source=cidr,
                                   action="drop", note=note) for cidr in _ANYWHERE]
        return rules

    async def expose(self, vm_id: str, *, vm_port: int, label: str | None, allowed_cidrs: list[str],
                     attempt: CreateAttempt) -> TcpExposure:
        group = await self._group(vm_id)
        if group is None:
            group = await self.client.create_firewall_group(
                name=self.group_name(vm_id), applied_to=[vm_id], default_action="accept",
                idempotency_key=f"cube-operator-fwg-{vm_id}")
        kept = [r for r in group.rules if self._port_of(r) != vm_port]
        updated = await self.client.replace_rules(group.id, kept + self.rules_for(vm_port, label, allowed_cidrs))
        if not updated.applied_to:
            updated = updated.model_copy(update={"applied_to": group.applied_to})
        mine = [e for e in self._exposures(updated, vm_id, await self._host(vm_id)) if e.vm_port == vm_port]
        if not mine:
            raise Transient("the firewall group lost the rules just written", provider=self.name)
        return mine[0]

    async def unexpose(self, vm_id: str, exposure_id: str) -> None:
        group_id, _, port_text = exposure_id.partition("/tcp-")
        group = next((g for g in await self.client.list_firewall_groups() if g.id == group_id), None)
        if group is None or not port_text.isdigit():
            raise NotFound(f"no firewall rules {exposure_id}", provider=self.name, status=404)
        port = int(port_text)
        if not any(self._port_of(r) == port for r in group.rules):
            raise NotFound(f"no firewall rules {exposure_id}", provider=self.name, status=404)
        await self.client.replace_rules(group.id, [r for r in group.rules if self._port_of(r) != port])

    # -- webhook subscriptions ----------------------------------------------------------

    @staticmethod
    def _neutral(events: list[str]) -> tuple[str, ...]:
        back = {v: k for k, v in EVENTS.items() if k != "cube.sleeping"}
        return tuple(back.get(e, e) for e in events)

    async def list_webhooks(self) -> list[WebhookEndpoint]:
        return [WebhookEndpoint(id=w.id, url=w.url, events=self._neutral(w.events), enabled=w.active)
                for w in await self.client.list_webhooks()]

    async def get_webhook(self, webhook_id: str) -> WebhookEndpoint:
        w = await self.client.get_webhook(webhook_id)
        return WebhookEndpoint(id=w.id, url=w.url, events=self._neutral(w.events), enabled=w.active)

    async def create_webhook(self, *, url: str, events: list[str]) -> WebhookEndpoint:
        theirs = sorted({EVENTS.get(e, e) for e in events})
        created = await self.client.create_webhook(url=url, events=theirs,
                                                   idempotency_key=f"cube-operator-whk-{uuid.uuid4()}")
        secret = created.secret.get_secret_value() if created.secret else None
        if not secret:
            raise Transient("webhook created without a signing secret", provider=self.name)
        # The Webhook's own event names: its status compares them with its spec.
        return WebhookEndpoint(id=created.id, url=created.url, events=tuple(events),
                               enabled=created.active, secret=secret)

    async def delete_webhook(self, webhook_id: str) -> None:
        await self.client.delete_webhook(webhook_id)

