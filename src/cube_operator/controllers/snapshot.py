"""Snapshot controller: one provider snapshot per object; a busy Cube means wait, not fail."""
from __future__ import annotations

from typing import Any

from ..api import SnapshotSpec
from ..providers import Capability, CreateAttempt, SnapshotInfo, SnapshotState
from ._child import ChildReconciler, WaitTurn
from ._common import human_size
from ._sessions import ProviderSession
from ._wiring import register_reconciler

PLURAL = "snapshots"


def provider_side_name(obj: dict[str, Any], spec_name: str | None) -> str:
    return spec_name or f"{obj['metadata']['namespace']}-{obj['metadata']['name']}"[:64]


class SnapshotReconciler(ChildReconciler):
    plural = PLURAL
    spec_model = SnapshotSpec
    noun = "snapshot"
    needs_running = False
    capability = Capability.SNAPSHOTS
    capability_text = "snapshots"
    delete_capability = Capability.SNAPSHOT_DELETE

    @staticmethod
    def facet(session: ProviderSession) -> Any:
        assert session.provider.snapshots is not None
        return session.provider.snapshots

    async def before_create(self, session: ProviderSession, vm_id: str) -> None:
        # Providers allow one snapshot in progress per VM: look (a free GET) before
        # spending a rate-limited POST on a certain 409.
        busy = [s for s in await self.facet(session).list_snapshots(vm_id)
                if s.state == SnapshotState.IN_PROGRESS]
        if busy:
            raise WaitTurn(f"snapshot {busy[0].id} of this Cube is still in progress; waiting for it to finish")

    async def create_remote(self, session: ProviderSession, vm_id: str, spec: Any,
                            obj: dict[str, Any], attempt: CreateAttempt) -> SnapshotInfo:
        snapshots = self.facet(session)
        created: SnapshotInfo = await snapshots.create_snapshot(
            vm_id, provider_side_name(obj, spec.name), attempt)
        return created

    async def list_remote(self, session: ProviderSession, vm_id: str) -> list[SnapshotInfo]:
        found: list[SnapshotInfo] = await self.facet(session).list_snapshots(vm_id)
        return found

    async def delete_remote_object(self, session: ProviderSession, vm_id: str, remote_id: str) -> None:
        await self.facet(session).delete_snapshot(vm_id, remote_id)

    def matches(self, session: ProviderSession, remote: SnapshotInfo, spec: dict[str, Any], obj: dict[str, Any]) -> bool:
        # The provider may change the name to fit its rules (CyberPanel: [A-Za-z0-9_]).
        return remote.name == self.facet(session).snapshot_name(provider_side_name(obj, spec.get("name")))

    def status_fields(self, remote: SnapshotInfo, spec: Any) -> dict[str, Any]:
        return {
            "state": remote.provider_state,
            "sizeBytes": remote.size_bytes,
            "size": human_size(remote.size_bytes),
            "completedAt": remote.completed_at.isoformat().replace("+00:00", "Z") if remote.completed_at else None,
        }

    def readiness(self, remote: SnapshotInfo) -> tuple[bool, str, str]:
        if remote.state == SnapshotState.COMPLETE:
            return True, "Complete", f"snapshot {remote.id} is complete"
        if remote.state == SnapshotState.FAILED:
            return False, "SnapshotFailed", f"the provider reports snapshot {remote.id} as {remote.provider_state}"
        return False, "InProgress", f"snapshot {remote.id} is {remote.provider_state or 'in progress'}"

    def ready_with(self, session: ProviderSession, remote: SnapshotInfo, spec: Any) -> tuple[bool, str, str]:
        ready, reason, message = self.readiness(remote)
        if (ready and spec.deletion_policy == "Delete"
                and Capability.SNAPSHOT_DELETE not in session.provider.capabilities):
            message += (f"; {session.provider_name} cannot delete snapshots, so deleting this object will leave "
                        "the snapshot in place at the provider")
        return ready, reason, message


register_reconciler(PLURAL, SnapshotReconciler)
