"""Snapshot controller: one provider snapshot per object; a busy Cube means wait, not fail."""
from __future__ import annotations

from typing import Any

import kopf

from ..api import GROUP, VERSION, SnapshotSpec
from ..providers import Snapshot
from ._child import ChildReconciler, WaitTurn, delete_child
from ._registry import registry
from ._sessions import ProviderSession
from ._wiring import register_reconciler

PLURAL = "snapshots"
IN_PROGRESS = {"pending", "creating", "in_progress", "uploading", "running"}
FAILED = {"failed", "error"}


class SnapshotReconciler(ChildReconciler):
    plural = PLURAL
    spec_model = SnapshotSpec
    noun = "snapshot"
    needs_running = False

    def provider_side_name(self, obj: dict[str, Any], spec: SnapshotSpec) -> str:
        return spec.name or f"{obj['metadata']['namespace']}-{obj['metadata']['name']}"[:64]

    async def before_create(self, session: ProviderSession, cube_id: str) -> None:
        # Krova allows one snapshot in progress per Cube: look (a free GET) before
        # spending a rate-limited POST on a certain 409.
        busy = [s for s in await session.client.list_snapshots(cube_id) if s.status in IN_PROGRESS]
        if busy:
            raise WaitTurn(f"snapshot {busy[0].id} of this Cube is still in progress; waiting for it to finish")

    async def create_remote(self, session: ProviderSession, cube_id: str, spec: Any,
                            obj: dict[str, Any], key: str) -> Snapshot:
        return await session.client.create_snapshot(
            cube_id, name=self.provider_side_name(obj, spec), idempotency_key=key)

    async def list_remote(self, session: ProviderSession, cube_id: str) -> list[Snapshot]:
        return await session.client.list_snapshots(cube_id)

    async def delete_remote(self, session: ProviderSession, cube_id: str, remote_id: str) -> None:
        await session.client.delete_snapshot(cube_id, remote_id)

    def status_fields(self, remote: Snapshot, spec: Any) -> dict[str, Any]:
        return {
            "state": remote.status,
            "sizeBytes": remote.size_bytes,
            "completedAt": remote.completed_at.isoformat().replace("+00:00", "Z") if remote.completed_at else None,
        }

    def readiness(self, remote: Snapshot) -> tuple[bool, str, str]:
        if remote.status == "complete":
            return True, "Complete", f"snapshot {remote.id} is complete"
        if remote.status in FAILED:
            return False, "SnapshotFailed", f"the provider reports snapshot {remote.id} as {remote.status}"
        return False, "InProgress", f"snapshot {remote.id} is {remote.status or 'in progress'}"


register_reconciler(PLURAL, SnapshotReconciler)


@kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
async def snapshot_deleted(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    await delete_child(SnapshotReconciler, body, logger)
