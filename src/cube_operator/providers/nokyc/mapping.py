"""NoKYC's objects in the neutral model of :mod:`..base`."""

from __future__ import annotations

from ..base import (
    Catalogue,
    CatalogueEntry,
    ObservedVM,
    SnapshotInfo,
    SnapshotState,
    VMState,
    money_text,
    size_text,
)
from .models import Image, Plan, Region, Server, Snapshot

__all__ = ["OWNER_LABEL", "catalogue_of", "image_entry", "observed_vm", "plan_entry", "region_entry",
           "snapshot_info", "vm_state"]

#: Server label carrying the owning Kubernetes object's UID (keys: [a-z0-9_-]{1,63}).
OWNER_LABEL = "cube-operator-uid"

_STATES = {
    "provisioning": VMState.PROVISIONING,
    "installing": VMState.PROVISIONING,
    "running": VMState.RUNNING,
    "stopped": VMState.STOPPED,
    "suspended": VMState.SUSPENDED,
    "destroying": VMState.DELETING,
}
_SNAPSHOT_STATES = {"creating": SnapshotState.IN_PROGRESS, "ready": SnapshotState.COMPLETE,
                    "error": SnapshotState.FAILED}


def vm_state(status: str) -> VMState:
    return _STATES.get(status.strip().lower(), VMState.UNKNOWN)


def observed_vm(server: Server, plans: dict[str, Plan]) -> ObservedVM:
    plan = plans.get(server.plan)
    ipv4 = server.ipv4.address if server.ipv4 else None
    ipv6 = server.ipv6.address if server.ipv6 else None
    # A rebuild from a snapshot reports the snapshot as image: not an image change.
    image = server.image if server.image and not server.image.startswith("snap_") else None
    return ObservedVM(
        id=server.id,
        name=server.name,
        state=vm_state(server.status),
        provider_state=server.status,
        public_ipv4=ipv4,
        public_ipv6=ipv6,
        addresses=tuple(a for a in (ipv4, ipv6) if a),
        cost_per_hour=plan.price_usd_hour if plan else None,
        image=image,
        region=server.region or None,
        plan=server.plan or None,
        owner_uid=server.labels.get(OWNER_LABEL),
        created_at=server.created_at,
    )


def snapshot_info(snapshot: Snapshot) -> SnapshotInfo:
    return SnapshotInfo(
        id=snapshot.id, vm_id=snapshot.server, name=snapshot.name,
        state=_SNAPSHOT_STATES.get(snapshot.status, SnapshotState.IN_PROGRESS),
        provider_state=snapshot.status,
        size_bytes=int(snapshot.size_gb * 1024**3) if snapshot.size_gb is not None else None,
        created_at=snapshot.created_at,
    )


def plan_entry(plan: Plan) -> CatalogueEntry:
    where = f"in {', '.join(plan.available_in)}" if plan.available_in else "in no region now"
    kind = "dedicated" if plan.category == "dedicated" else None
    return CatalogueEntry(plan.id, size_text(plan.cpu, plan.ram_mb / 1024, plan.disk_gb, kind,
                                             money_text(plan.price_usd_hour), where))


def image_entry(image: Image) -> CatalogueEntry:
    words = " ".join(w for w in (image.family, image.version, image.variant) if w)
    notes = [words or None, "custom" if image.type == "custom" else None,
             "no cloud-init (no userData)" if image.cloud_init is False else None,
             f"deprecated since {image.deprecated_at}" if image.deprecated_at else None]
    return CatalogueEntry(image.id, ", ".join(n for n in notes if n) or None)


def region_entry(region: Region) -> CatalogueEntry:
    name = f"{region.name} ({region.country})" if region.name and region.country else region.name
    notes = [name or None, None if region.available else "no plan can be provisioned there now"]
    return CatalogueEntry(region.id, ", ".join(n for n in notes if n) or None)


def catalogue_of(plans: list[Plan], images: list[Image], regions: list[Region]) -> Catalogue:
    """NoKYC's listings as the neutral catalogue; a Cube may give ``spec.resources`` instead
    of a plan (the cheapest plan that fits in the region is taken)."""
    return Catalogue(
        images=tuple(image_entry(i) for i in images),
        regions=tuple(region_entry(r) for r in regions),
        plans=tuple(plan_entry(p) for p in sorted(plans, key=lambda p: (p.category != "vps",
                                                                        p.price_usd_hour or 0.0, p.id))),
        note="spec.plan takes a plan id; or give spec.resources and the cheapest plan that fits in "
             "spec.region is chosen",
    )
