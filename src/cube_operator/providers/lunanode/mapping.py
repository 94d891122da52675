"""LunaNode's objects in the neutral model of :mod:`..base`."""

from __future__ import annotations

import re

from ..base import ObservedVM, SnapshotState, VMState
from .models import Plan, VmInfo, VmRow

__all__ = ["HOURS_PER_MONTH", "owner_of", "snapshot_state", "vm_state"]

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
