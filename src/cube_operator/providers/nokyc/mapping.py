"""NoKYC's objects in the neutral model of :mod:`..base`."""

from __future__ import annotations

from ..base import ObservedVM, SnapshotInfo, SnapshotState, VMState
from .models import Plan, Server, Snapshot

__all__ = ["OWNER_LABEL", "observed_vm", "snapshot_info", "vm_state"]

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
