"""Restore controller: a one-shot job, Pending → Running → Succeeded | Failed."""
from __future__ import annotations

import time
from typing import Any

import kopf

from ..api import RestoreSpec
from ..providers import Capability, InvalidState, NotFound, ProviderError, VMState
from ._common import provider_error_reason, retry_delay
from ._conditions import READY, is_true, now_rfc3339
from ._kube import NotFoundError
from ._reconciler import Reconciler
from ._runtime import Runtime
from ._sessions import ConfigProblem
from ._wiring import register_reconciler

PLURAL = "restores"
DONE = ("Succeeded", "Failed")
# If the Cube is running again and we never saw it leave `running`, the provider was
# faster than our polling; after this long we call the restore done.
UNOBSERVED_TRANSITION_SECONDS = 5.0


class RestoreReconciler(Reconciler):
    plural = PLURAL
    spec_model = RestoreSpec
    orphanable = False

    def __init__(self, runtime: Runtime, body: kopf.Body, logger: Any) -> None:
        super().__init__(runtime, body, logger)
        self.saw_cube_leave_running = False
        self.accepted_monotonic: float | None = None

    async def finish(self, obj: dict[str, Any], ok: bool, reason: str, message: str) -> float:
        obj = await self.set_conditions(
            obj, ready=(ok, reason, message), synced=(True, reason, message),
            phase="Succeeded" if ok else "Failed", message=message, completedAt=now_rfc3339())
        self.event(obj, "Normal" if ok else "Warning", reason, message)
        return 3600.0

    async def pending(self, obj: dict[str, Any], reason: str, message: str) -> float:
        await self.set_conditions(obj, ready=(False, reason, message), synced=(True, reason, message),
                                  phase="Pending", message=message)
        return 2.0

    async def reconcile(self) -> float:
        obj = self.current()
        if (obj.get("status") or {}).get("phase") in DONE:
            return 3600.0
        return await super().reconcile()

    async def on_invalid_spec(self, obj: dict[str, Any], message: str) -> float:
        return await self.finish(obj, False, "InvalidSpec", message)

    async def on_problem(self, problem: ConfigProblem) -> float:
        if problem.reason == "Unsupported":
            return await self.finish(self.current(), False, problem.reason, problem.message)
        return await self.pending(self.current(), problem.reason, problem.message)

    async def on_provider_error(self, error: ProviderError) -> float:
        reason, message, terminal = provider_error_reason(error)
        if terminal:
            return await self.finish(self.current(), False, reason, message)
        await self.set_conditions(self.current(), synced=(False, reason, message))
        return retry_delay(error, 3.0)

    async def reconcile_spec(self, obj: dict[str, Any], spec: RestoreSpec) -> float:
        namespace = obj["metadata"]["namespace"]
        if (obj.get("status") or {}).get("phase") == "Running" and obj["status"].get("acceptedAt"):
            return await self.watch(obj, namespace, spec)
        return await self.start(obj, namespace, spec)

    async def start(self, obj: dict[str, Any], namespace: str, spec: RestoreSpec) -> float:
        try:
            snapshot = await self.rt.kube.get_custom("snapshots", namespace, spec.snapshot_ref.name)
        except NotFoundError:
            return await self.pending(obj, "SnapshotNotFound",
                                      f"Snapshot {namespace}/{spec.snapshot_ref.name} does not exist")
        snap_cube = (snapshot.get("spec") or {}).get("cubeRef", {}).get("name")
        if snap_cube != spec.cube_ref.name:
            return await self.finish(obj, False, "SnapshotOfAnotherCube",
                                     f"Snapshot {spec.snapshot_ref.name} is of Cube {snap_cube}, "
                                     f"not {spec.cube_ref.name}; a Cube can only be restored from its own snapshots")
        snap_status = snapshot.get("status") or {}
        # Ready is the Snapshot controller's neutral verdict; status.state is the provider's word.
        if not is_true(snap_status.get("conditions"), READY) or not snap_status.get("id"):
            return await self.finish(obj, False, "SnapshotNotComplete",
                                     f"Snapshot {spec.snapshot_ref.name} is {snap_status.get('state') or 'not created'}, "
                                     "not complete; create the Restore once the Snapshot is Ready")
        _cube, session, cube_id = await self.cube_of(namespace, spec.cube_ref.name, running=False, dependent=obj)
        self.require(session, Capability.RESTORE, "restoring from snapshots")
        if snap_status.get("cubeId") and snap_status["cubeId"] != cube_id:
            return await self.finish(obj, False, "SnapshotOfAnotherCube",
                                     f"Snapshot {spec.snapshot_ref.name} was taken of provider cube "
                                     f"{snap_status['cubeId']}, but Cube {spec.cube_ref.name} is now {cube_id}")
        obj = await self.set_conditions(
            obj, ready=(False, "Restoring", f"restoring {cube_id} from {snap_status['id']}"),
            synced=(True, "Restoring", "restore requested"),
            phase="Running", cubeId=cube_id, snapshotId=snap_status["id"], startedAt=now_rfc3339(),
            message="restore requested")
        try:
            assert session.provider.restore is not None
            await session.provider.restore.restore_snapshot(cube_id, snap_status["id"])
        except (InvalidState, NotFound) as error:
            return await self.finish(obj, False, "ProviderRejected",
                                     f"{session.provider_name} refused the restore: {error.message}")
        self.accepted_monotonic = time.monotonic()
        obj = await self.patch_status(obj, {"acceptedAt": now_rfc3339(), "message": "restore accepted; the Cube is restarting"})
        self.event(obj, "Normal", "RestoreStarted",
                   f"{session.provider_name} is restoring VM {cube_id} from {snap_status['id']}")
        return 0.5

    async def watch(self, obj: dict[str, Any], namespace: str, spec: RestoreSpec) -> float:
        status = obj["status"]
        _cube, session, _ = await self.cube_of(namespace, spec.cube_ref.name, running=False, dependent=obj)
        remote = await session.provider.get_vm(status["cubeId"])
        session.fleet.put(remote)
        if self.accepted_monotonic is None:
            self.accepted_monotonic = time.monotonic()  # resumed after a restart
        if remote.state == VMState.ERROR:
            return await self.finish(obj, False, "CubeError", "the Cube went to state error during the restore")
        if remote.state != VMState.RUNNING:
            self.saw_cube_leave_running = True
            return 0.5
        waited = time.monotonic() - self.accepted_monotonic
        if self.saw_cube_leave_running or waited >= UNOBSERVED_TRANSITION_SECONDS:
            self.rt.kick("cubes", namespace, spec.cube_ref.name)
            return await self.finish(obj, True, "Succeeded",
                                     f"cube {status['cubeId']} restored from {status['snapshotId']} and running")
        return 0.5


register_reconciler(PLURAL, RestoreReconciler, deletes=False)
