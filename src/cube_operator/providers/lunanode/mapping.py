"""LunaNode's objects in the neutral model of :mod:`..base`."""

from __future__ import annotations

import re

from ..base import (
    Catalogue,
    CatalogueEntry,
    ObservedVM,
    SnapshotState,
    VMState,
    money_text,
    size_text,
)
from .models import Image, Plan, VmInfo, VmRow

__all__ = ["HOURS_PER_MONTH", "OPERATOR_IMAGE_PREFIX", "catalogue_of", "owner_of", "public_name",
           "snapshot_state", "vm_state"]

HOURS_PER_MONTH = 730.0
_STATES = {
    "online": VMState.RUNNING,
    "offline": VMState.STOPPED,
    "building": VMState.PROVISIONING,
    "rebuilding": VMState.PROVISIONING,
    "resizing": VMState.PROVISIONING,
    "starting": VMState.PROVISIONING,
    "rebooting": VMState.PROVISIONING,
    "unshelving": VMState.PROVISIONING,
    "stopping": VMState.STOPPING,
    "shelving": VMState.STOPPING,
    "shelved": VMState.STOPPED,
    "deleting": VMState.DELETING,
    "error": VMState.ERROR,
}
#: Snapshots the operator makes are images named ``cube-operator-<vm id>-<name>``.
OPERATOR_IMAGE_PREFIX = "cube-operator-"
_PUBLIC = re.compile(r"^(?P<bare>.*?)\s*\((?P<kind>template|iso)\)$", re.IGNORECASE)
_UID = re.compile(r"-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")


def vm_state(status: str) -> VMState:
    # LunaNode's clients compare Online/Offline and lower-case the rest: so do we.
    return _STATES.get(status.strip().lower(), VMState.UNKNOWN)


def is_settled(status: str) -> bool:
    return vm_state(status) in (VMState.RUNNING, VMState.STOPPED, VMState.ERROR)


def owner_of(hostname: str) -> str | None:
    """The owner UID the operator put at the end of the hostname."""
    match = _UID.search(hostname)
    return match.group(1) if match else None


def snapshot_state(status: str) -> SnapshotState:
    word = status.lower()
    if word == "active":
        return SnapshotState.COMPLETE
    if word in ("error", "killed", "deleted"):
        return SnapshotState.FAILED
    return SnapshotState.IN_PROGRESS


def observed_vm(row: VmRow, info: VmInfo | None, plans: dict[str, Plan]) -> ObservedVM:
    plan = plans.get(row.plan_id)
    status = info.status_nohtml if info else ""
    hostname = row.hostname or (info.hostname if info else "") or row.name
    monthly = plan.monthly if plan else None
    return ObservedVM(
        id=row.vm_id,
        name=hostname,
        state=vm_state(status) if info else VMState.UNKNOWN,
        provider_state=status or "unknown",
        public_ipv4=(info.ip if info and info.ip else None) or row.primaryip or None,
        private_ipv4=row.privateip or (info.privateip if info else None) or None,
        addresses=tuple(a for a in (row.primaryip, row.privateip) if a),
        cost_per_hour=round(monthly / HOURS_PER_MONTH, 6) if monthly is not None else None,
        region=row.region or None,
        owner_uid=owner_of(hostname),
    )


def public_name(image: Image) -> tuple[str, str] | None:
    """(name without the suffix, ``template`` or ``ISO``) of a public image, else None:
    LunaNode's public images end in `` (template)`` or `` (ISO)``."""
    match = _PUBLIC.match(image.name.strip())
    if match is None:
        return None
    return match.group("bare"), "ISO" if match.group("kind").lower() == "iso" else "template"


def plan_entry(plan: Plan) -> CatalogueEntry:
    monthly = plan.monthly
    hourly = money_text(monthly / HOURS_PER_MONTH) if monthly is not None else None
    price = f"{money_text(monthly, 'month')} ({hourly})" if monthly is not None else None
    where = f"in {', '.join(plan.regions)}" if plan.regions else None
    size = size_text(plan.cpus, plan.ram_mb / 1024, plan.disk_gb, price, where)
    return CatalogueEntry(plan.name or plan.plan_id,
                          f"plan_id {plan.plan_id}: {size}" if plan.name else size or None)


def catalogue_of(plans: list[Plan], images: list[Image], regions: list[tuple[str, str]]) -> Catalogue:
    """LunaNode's plans, images and regions as the neutral catalogue. Public images have an
    id per region, so they are listed once by name (``spec.image`` takes the name, e.g.
    ``Ubuntu 24.04 64-bit``); the account's own images by id; the operator's snapshots not."""
    public: dict[str, tuple[str, list[str]]] = {}
    own: list[CatalogueEntry] = []
    for image in images:
        named = public_name(image)
        if named is not None:
            where = public.setdefault(named[0], (named[1], []))[1]
            if image.region and image.region not in where:
                where.append(image.region)
        elif not image.name.startswith(OPERATOR_IMAGE_PREFIX) and image.status.lower() == "active":
            own.append(CatalogueEntry(image.image_id, f"own image {image.name!r}"
                                      + (f" in {image.region}" if image.region else "")))
    listed = [CatalogueEntry(name, f"{kind} in {', '.join(where)}" if where else kind)
              for name, (kind, where) in public.items()]
    return Catalogue(
        images=tuple(listed + own),
        regions=tuple(CatalogueEntry(region_id, name if name != region_id else None) for region_id, name in regions),
        plans=tuple(plan_entry(p) for p in sorted(plans, key=lambda p: (p.monthly or 0.0, p.cpus, p.ram_mb))),
        note="spec.plan takes a plan name or plan_id; or give spec.resources and the cheapest plan that fits "
             "is chosen. spec.image takes a public image name or an image id",
    )
