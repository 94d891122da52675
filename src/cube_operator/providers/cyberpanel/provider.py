"""CyberPanel Cloud behind the :class:`~..base.Provider` protocol.

- Sizing by plan: ``spec.plan`` (a plan id), or the cheapest plan with at least
  ``spec.resources``. ``spec.region`` is a location code, ``spec.image`` a template id;
  all three are checked against the catalogue (cached for 10 minutes) before the create.
- No idempotency key: the hostname is ``<name>-<uid8>.<hostnameDomain>``, and an earlier
  create attempt is found by listing and matching it (the controller looks before every
  retried create).
- The list has no plan, location or price: rows are ``detailed=False``, and the
  controller asks ``get_vm`` once per Cube for them. Deployment progress is one
  ``GET /vps/{id}/deployment`` (:meth:`CyberPanelProvider.provisioning`).
- A root password is required; the controller passes one (given or generated). The
  per-VPS deployment callback (``webhook_url``/``webhook_secret``) is passed when the
  controller has a receiver URL.
- Snapshots: list and create only. Names are letters, digits and underscores (other
  characters become ``_``); the name is the snapshot's id. No delete, no restore.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

from ..base import (
    Capability,
    Catalogue,
    CatalogueEntry,
    CreateAttempt,
    ObservedVM,
    ProviderBase,
    Provisioning,
    SnapshotInfo,
    SnapshotState,
    VMSpec,
    VMState,
    money_text,
    not_offered,
    size_text,
)
from ..errors import Forbidden, SpecRejected, Unsupported
from .client import CyberPanelClient
from .models import KeyInfo, Location, Plan, Template, Vps, VpsDetails, money

__all__ = [
    "CYBERPANEL_CAPABILITIES",
    "CyberPanelProvider",
    "catalogue_of",
    "check_password",
    "choose_plan",
    "hostname",
    "missing_scopes",
    "snapshot_name",
]

CYBERPANEL_CAPABILITIES = frozenset({
    Capability.POWER, Capability.SNAPSHOTS, Capability.ROOT_PASSWORD, Capability.PROGRESS,
    Capability.CREATE_CALLBACK,
})
_CATALOGUE_TTL = 600.0
_LABEL_MAX = 63
_SNAPSHOT_NAME_MAX = 40
_STATES = {
    "deploying": VMState.PROVISIONING, "pending": VMState.PROVISIONING, "starting": VMState.PROVISIONING,
    "restarting": VMState.PROVISIONING, "running": VMState.RUNNING, "stopping": VMState.STOPPING,
    "stopped": VMState.STOPPED, "suspended": VMState.SUSPENDED, "failed": VMState.ERROR,
    "error": VMState.ERROR, "deleting": VMState.DELETING, "deleted": VMState.DELETED,
}
_NEEDED_SCOPES = ("vps:read", "vps:write")
_FAILED = ("ProvisioningFailed", "cyberpanel's deployment of the VPS failed")


def hostname(object_name: str, owner_uid: str, domain: str) -> str:
    """``<name>-<uid8>.<domain>``: one DNS label for the name (dots become dashes, cut to
    fit 63 characters with the UID part), lower case."""
    uid8 = re.sub(r"[^a-z0-9]", "", owner_uid.lower())[:8]
    label = re.sub(r"[^a-z0-9-]", "-", object_name.lower()).strip("-") or "cube"
    label = label[: _LABEL_MAX - len(uid8) - 1].rstrip("-")
    return f"{label}-{uid8}.{domain.lower().strip('.')}"


def missing_scopes(scopes: list[str]) -> list[str]:
    """What a key lacks to manage VPSes (delete is allowed with vps:write)."""
    return [] if "all" in scopes else [s for s in _NEEDED_SCOPES if s not in scopes]


def check_password(password: str) -> str | None:
    """CyberPanel's rules for a root password (8-72 characters, letters and digits)."""
    if not 8 <= len(password) <= 72:
        return "must be 8 to 72 characters"
    if not (re.search(r"[A-Za-z]", password) and re.search(r"[0-9]", password)):
        return "must contain letters and digits"
    return None


def snapshot_name(wanted: str) -> str:
    """A snapshot name CyberPanel accepts: letters, digits and underscores, 40 at most."""
    return re.sub(r"[^A-Za-z0-9_]", "_", wanted)[:_SNAPSHOT_NAME_MAX] or "snapshot"


def choose_plan(plans: list[Plan], spec: VMSpec) -> Plan:
    if spec.plan:
        found = next((p for p in plans if str(p.id) == spec.plan), None)
        if found is None:
            raise SpecRejected(not_offered("spec.plan", "plan", spec.plan, "cyberpanel",
                                           [f"{p.id} ({p.name})" if p.name else str(p.id) for p in plans]),
                               provider="cyberpanel")
        return found
    if spec.resources is None:
        raise SpecRejected("spec.plan (a plan id) or spec.resources is required for provider cyberpanel",
                           provider="cyberpanel")
    want = spec.resources
    fits = [p for p in plans if p.cpu_cores >= want.vcpu and p.ram_mb >= want.ram_gb * 1024
            and p.disk_gb >= want.disk_gb]
    if not fits:
        biggest = max(plans, key=lambda p: (p.cpu_cores, p.ram_mb, p.disk_gb), default=None)
        offered = (f"; the largest plan is {biggest.id} ({biggest.name}: {biggest.cpu_cores} vCPU, "
                   f"{biggest.ram_mb / 1024:g} GB RAM, {biggest.disk_gb} GB disk)") if biggest else ""
        raise SpecRejected(f"spec.resources: no cyberpanel plan has at least {want.vcpu} vCPU, "
                           f"{want.ram_gb:g} GB RAM and {want.disk_gb:g} GB disk{offered}", provider="cyberpanel")
    return min(fits, key=lambda p: (p.hourly, p.cpu_cores, p.ram_mb, p.id))


def _money(value: str | None, per: str) -> str | None:
    try:
        return money_text(float(value), per) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def catalogue_of(plans: list[Plan], locations: list[Location], templates: list[Template]) -> Catalogue:
    """CyberPanel's plans, locations and templates as the neutral catalogue: plan ids go in
    ``spec.plan``, location codes in ``spec.region``, template ids in ``spec.image``."""
    return Catalogue(
        images=tuple(CatalogueEntry(t.id, " - ".join(x for x in (t.name, t.description) if x) or None)
                     for t in templates),
        regions=tuple(CatalogueEntry(loc.code, ", ".join(x for x in (
            loc.name or None, None if loc.is_available else "not available now") if x) or None)
            for loc in locations),
        plans=tuple(CatalogueEntry(str(p.id), (f"{p.name}: " if p.name else "") + size_text(
            p.cpu_cores, p.ram_mb / 1024, p.disk_gb, _money(p.price_hourly, "h"), _money(p.monthly_price, "month")))
            for p in sorted(plans, key=lambda p: (p.hourly, p.id))),
        note="spec.plan takes a plan id; or give spec.resources and the cheapest plan with at least "
             "that much is chosen",
    )


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class CyberPanelProvider(ProviderBase):
    client: CyberPanelClient
    name = "cyberpanel"
    capabilities = CYBERPANEL_CAPABILITIES

    def __init__(self, client: CyberPanelClient, *, hostname_domain: str) -> None:
        super().__init__(client)
        self.hostname_domain = hostname_domain
        self._catalogue: tuple[list[Plan], list[Location], list[Template]] | None = None
        self._catalogue_at = 0.0
        self.key_info: KeyInfo | None = None

    # -- mapping -----------------------------------------------------------------------
    @staticmethod
    def observe(row: Vps) -> ObservedVM:
        word = "suspended" if row.is_suspended else row.status.lower()
        state = _STATES.get(word, VMState.UNKNOWN)
        return ObservedVM(
            id=str(row.id), name=row.name, state=state, provider_state=word or "unknown",
            public_ipv4=row.ip_address, addresses=(row.ip_address,) if row.ip_address else (),
            created_at=_parse_time(row.created_at), problem=_FAILED if state == VMState.ERROR else None,
            detailed=False,
        )

    def observe_details(self, vps: VpsDetails) -> ObservedVM:
        row = self.observe(vps)
        cost = money(vps.billing.hourly_rate) if vps.billing else None
        return ObservedVM(
            id=row.id, name=row.name, state=row.state, provider_state=row.provider_state,
            public_ipv4=row.public_ipv4, addresses=row.addresses, created_at=row.created_at, problem=row.problem,
            cost_per_hour=cost, plan=str(vps.plan.id) if vps.plan else None,
            region=vps.location.code if vps.location else None,
            extras={"planName": vps.plan.name} if vps.plan else {},
        )

    # -- the protocol --------------------------------------------------------------------
    def vm_name(self, object_name: str, owner_uid: str) -> str:
        return hostname(object_name, owner_uid, self.hostname_domain)

    def validate_spec(self, spec: VMSpec) -> list[str]:
        problems = []
        if spec.plan is None and spec.resources is None:
            problems.append("spec.plan (a cyberpanel plan id) or spec.resources is required for provider cyberpanel")
        if spec.plan is not None and not spec.plan.isdigit():
            problems.append(f"spec.plan: cyberpanel plan ids are numbers, not {spec.plan!r}")
        if not spec.region:
            problems.append("spec.region (a cyberpanel location code, e.g. la or de) is required for "
                            "provider cyberpanel")
        if spec.root_password is not None:
            wrong = check_password(spec.root_password)
            if wrong:
                problems.append(f"spec.rootPasswordSecretRef: the root password {wrong} (cyberpanel's rule)")
        if spec.callback_url is not None and not re.match(r"^https?://", spec.callback_url):
            problems.append("the operator's callback URL must be http(s)")
        return problems

    async def check_credentials(self) -> None:
        """GET /test; a key that cannot manage VPSes is refused here, not at the first create."""
        info = self.key_info = await self.client.test()
        missing = missing_scopes(info.scopes)
        if missing:
            error = Forbidden(f"API key {info.key_name or info.key_prefix!r} has scopes "
                              f"{', '.join(sorted(info.scopes)) or 'none'} but lacks {', '.join(missing)}; the operator "
                              "needs vps:read and vps:write (or all)", provider=self.name, status=403)
            error.code = "INSUFFICIENT_SCOPE"
            raise error

    async def list_vms(self) -> list[ObservedVM]:
        return [self.observe(row) for row in await self.client.list_vps()]

    async def get_vm(self, vm_id: str) -> ObservedVM:
        return self.observe_details(await self.client.get_vps(vm_id))

    async def find_vms(self, name: str, attempt: CreateAttempt) -> list[ObservedVM]:
        wanted = name.lower()
        return [self.observe(row) for row in await self.client.list_vps()
                if row.name.lower() == wanted and row.status.lower() != "deleted"]

    async def offerings(self, *, fresh: bool = False) -> tuple[list[Plan], list[Location], list[Template]]:
        """Plans, locations and templates, kept for 10 minutes (a create is checked against them)."""
        if fresh or self._catalogue is None or time.monotonic() - self._catalogue_at > _CATALOGUE_TTL:
            self._catalogue = (await self.client.plans(), await self.client.locations(),
                               await self.client.templates())
            self._catalogue_at = time.monotonic()
        return self._catalogue

    async def catalogue(self) -> Catalogue:
        return catalogue_of(*await self.offerings(fresh=True))

    async def create_vm(self, spec: VMSpec, attempt: CreateAttempt) -> ObservedVM:
        if not spec.root_password:
            raise SpecRejected("a root password is required for provider cyberpanel", provider=self.name)
        plans, locations, templates = await self.offerings()
        plan = choose_plan(plans, spec)
        location = next((loc for loc in locations if loc.code == spec.region), None)
        if location is None or not location.is_available:
            offered = [f"{loc.code} ({loc.name})" if loc.name else loc.code for loc in locations if loc.is_available]
            why = "is not available now at" if location else "is not a location of"
            raise SpecRejected(not_offered("spec.region", "location", spec.region, self.name, offered, why=why),
                               provider=self.name)
        template = next((t for t in templates if t.id == spec.image), None)
        if template is None:
            offered = [f"{t.id} ({t.name})" if t.name else t.id for t in templates]
            raise SpecRejected(not_offered("spec.image", "template", spec.image, self.name, offered),
                               provider=self.name)
        body: dict[str, Any] = {
            "hostname": spec.name, "plan_id": plan.id, "location_code": location.code,
            "template_id": template.id, "root_password": spec.root_password,
        }
        if spec.ssh_public_key:
            body["ssh_key"] = spec.ssh_public_key
        if spec.callback_url:
            body["webhook_url"] = spec.callback_url
            if spec.callback_secret:
                body["webhook_secret"] = spec.callback_secret
        vps_id = await self.client.create_vps(body)
        return ObservedVM(
            id=str(vps_id), name=spec.name, state=VMState.PROVISIONING, provider_state="deploying",
            cost_per_hour=plan.hourly if plan.price_hourly else None, plan=str(plan.id), region=location.code,
            image=template.id, extras={"imageName": template.name, "planName": plan.name},
        )

    async def delete_vm(self, vm_id: str) -> None:
        await self.client.delete_vps(vm_id)

    async def set_power(self, vm_id: str, running: bool) -> None:
        await self.client.action(vm_id, "start" if running else "stop")

    async def provisioning(self, vm_id: str) -> Provisioning:
        deployment = await self.client.deployment(vm_id)
        failed = deployment.deployment_status == "failed"
        return Provisioning(
            percent=deployment.progress_percent, task=deployment.failed_task if failed else deployment.current_task,
            failed=failed, message=deployment.error_message, done=deployment.is_ready,
        )

    # -- snapshots: create and list only -------------------------------------------------
    def snapshot_name(self, wanted: str) -> str:
        return snapshot_name(wanted)

    async def list_snapshots(self, vm_id: str) -> list[SnapshotInfo]:
        return [SnapshotInfo(id=s.name, vm_id=vm_id, name=s.name, state=SnapshotState.COMPLETE,
                             provider_state="created", created_at=_parse_time(s.created_at),
                             completed_at=_parse_time(s.created_at))
                for s in await self.client.snapshots(vm_id)]

    async def create_snapshot(self, vm_id: str, name: str, attempt: CreateAttempt) -> SnapshotInfo:
        created = await self.client.create_snapshot(vm_id, snapshot_name(name), description="made by cube-operator")
        return SnapshotInfo(id=created.name, vm_id=vm_id, name=created.name, state=SnapshotState.COMPLETE,
                            provider_state="created", created_at=_parse_time(created.created_at),
                            completed_at=_parse_time(created.created_at))

    async def delete_snapshot(self, vm_id: str, snapshot_id: str) -> None:
        raise Unsupported("cyberpanel cannot delete snapshots", provider=self.name)
