"""Reconciler and deletion for provider objects that live under a Cube.

Snapshots, TCP exposures and domains share the same life: wait for the Cube, check the
provider has the capability, create once with the attempt recorded before the call,
observe through a list call, replace when the provider has no update for a changed
field, delete with the object. A restart without an id finds the earlier try (replaying
the idempotency key where the provider has one, else matching the list); deletion never
creates.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from ..providers import Capability, Conflict, CreateAttempt, NotFound
from ._conditions import now_rfc3339, seconds_since
from ._kube import NotFoundError
from ._reconciler import DeletionPending, Reconciler, cube_owner
from ._sessions import ConfigProblem, ProviderSession

CONVERGING_DELAY = 1.0
# Once Ready, a child is re-listed this many poll intervals apart: it rarely changes.
STEADY_FACTOR = 5
# How long an object an earlier create may have made can take to appear in the list.
CREATE_GRACE_SECONDS = 60.0


class WaitTurn(Exception):
    """The provider is busy with something else for this Cube; try again shortly."""


class ChildReconciler(Reconciler):
    noun: str = "object"
    needs_running: bool = True
    capability: ClassVar[Capability]
    #: What the Unsupported message says the provider lacks.
    capability_text: str = ""
    #: Without this capability the provider cannot delete the object: deleting the
    #: Kubernetes object leaves it in place, with a Warning event (CyberPanel snapshots).
    delete_capability: ClassVar[Capability | None] = None

    # --- what each kind supplies ---------------------------------------------------------
    def validate(self, spec: Any, cube: dict[str, Any]) -> str | None:
        return None

    def needs_replace(self, spec: Any, status: dict[str, Any]) -> str | None:
        return None

    @abstractmethod
    async def create_remote(self, session: ProviderSession, vm_id: str, spec: Any,
                            obj: dict[str, Any], attempt: CreateAttempt) -> Any: ...

    @abstractmethod
    async def list_remote(self, session: ProviderSession, vm_id: str) -> list[Any]: ...

    @abstractmethod
    async def delete_remote_object(self, session: ProviderSession, vm_id: str, remote_id: str) -> None: ...

    @abstractmethod
    def matches(self, session: ProviderSession, remote: Any, spec: dict[str, Any], obj: dict[str, Any]) -> bool:
        """Whether ``remote`` is what this object's create would have made (raw spec)."""

    @abstractmethod
    def status_fields(self, remote: Any, spec: Any) -> dict[str, Any]: ...

    @abstractmethod
    def readiness(self, remote: Any) -> tuple[bool, str, str]: ...

    def ready_with(self, session: ProviderSession, remote: Any, spec: Any) -> tuple[bool, str, str]:
        """Ready as :meth:`readiness` says, plus what this provider adds to it."""
        return self.readiness(remote)

    async def before_create(self, session: ProviderSession, vm_id: str) -> None:
        """Raise WaitTurn when the provider would refuse the create right now."""

    # --- the shared life ----------------------------------------------------------------
    def attempt(self, obj: dict[str, Any]) -> CreateAttempt:
        status = obj.get("status") or {}
        return CreateAttempt(owner_uid=obj["metadata"]["uid"], number=int(status.get("createAttempt") or 1))

    async def session_of(self, obj: dict[str, Any], spec: Any) -> tuple[dict[str, Any], ProviderSession, str]:
        cube, session, vm_id = await self.cube_of(obj["metadata"]["namespace"], spec.cube_ref.name,
                                                  running=self.needs_running, dependent=obj)
        self.require(session, self.capability, self.capability_text or f"{self.noun}s")
        return cube, session, vm_id

    async def reconcile_spec(self, obj: dict[str, Any], spec: Any) -> float:
        try:
            cube, session, vm_id = await self.session_of(obj, spec)
            invalid = self.validate(spec, cube)
            if invalid:
                await self.invalid_spec(obj, invalid)
                return 30.0
            return await self.reconcile_child(obj, spec, session, vm_id)
        except WaitTurn as turn:
            await self.set_conditions(self.current(), ready=(False, "WaitingForTurn", str(turn)),
                                      synced=(True, "WaitingForTurn", str(turn)))
            return 2.0

    async def on_problem(self, problem: ConfigProblem) -> float:
        if problem.reason == "CubeNotFound":
            # Whatever the provider last said of it went with the Cube: no stale "active".
            await self.set_conditions(self.current(), ready=(False, problem.reason, problem.message),
                                      synced=(False, problem.reason, problem.message), state=None)
            return 2.0
        await self.wait_condition(self.current(), problem)
        # Waiting on the Cube is the common case here: look again soon.
        return 2.0 if problem.retry <= 5.0 else problem.retry

    async def forget_remote(self, obj: dict[str, Any], attempt: int) -> dict[str, Any]:
        return await self.patch_status(obj, {"id": None, "createAttempt": attempt + 1, "createRequestedAt": None})

    async def reconcile_child(self, obj: dict[str, Any], spec: Any, session: ProviderSession,
                              vm_id: str) -> float:
        status = obj.get("status") or {}
        attempt = int(status.get("createAttempt") or 1)
        if status.get("id") and status.get("cubeId") not in (None, vm_id):
            message = f"the Cube was replaced (now {vm_id}); creating the {self.noun} again"
            self.event(obj, "Warning", "CubeReplaced", message)
            obj = await self.forget_remote(obj, attempt)
            return CONVERGING_DELAY
        replace = self.needs_replace(spec, status) if status.get("id") else None
        if replace:
            try:
                await self.delete_remote_object(session, vm_id, status["id"])
            except NotFound:
                pass
            self.event(obj, "Normal", "Replacing", f"{replace}; the provider has no update, so the "
                                                   f"{self.noun} {status['id']} was removed and is recreated")
            await self.forget_remote(obj, attempt)
            return 0.0
        if not status.get("id"):
            return await self.create(obj, spec, session, vm_id)
        remotes = await self.list_remote(session, vm_id)
        remote = next((r for r in remotes if r.id == status["id"]), None)
        if remote is None:
            message = f"{self.noun} {status['id']} disappeared at {session.provider_name}; creating it again"
            self.event(obj, "Warning", "ExternallyDeleted", message)
            await self.forget_remote(obj, attempt)
            return CONVERGING_DELAY
        ready, reason, message = self.ready_with(session, remote, spec)
        await self.set_conditions(obj, ready=(ready, reason, message),
                                  synced=(True, "ReconcileSuccess", "in sync with the provider"),
                                  **self.status_fields(remote, spec))
        return session.poll_interval * STEADY_FACTOR if ready else CONVERGING_DELAY

    async def find_earlier(self, session: ProviderSession, vm_id: str, obj: dict[str, Any]) -> Any | None:
        spec = obj.get("spec") or {}
        matches = [r for r in await self.list_remote(session, vm_id) if self.matches(session, r, spec, obj)]
        if len(matches) > 1:
            ids = ", ".join(sorted(str(r.id) for r in matches))
            raise ConfigProblem("DuplicateExternalResource",
                                f"{len(matches)} {session.provider_name} {self.noun}s match this object "
                                f"({ids}); nothing was adopted or deleted: remove the extra ones at the provider")
        return matches[0] if matches else None

    async def create(self, obj: dict[str, Any], spec: Any, session: ProviderSession, vm_id: str) -> float:
        status = obj.get("status") or {}
        attempt = self.attempt(obj)
        remote = None
        if status.get("createRequestedAt"):
            if Capability.IDEMPOTENT_CREATE not in session.provider.capabilities:
                remote = await self.find_earlier(session, vm_id, obj)
        else:
            await self.before_create(session, vm_id)
            obj = await self.set_conditions(
                obj, ready=(False, "Creating", f"creating the {self.noun} at {session.provider_name}"),
                synced=(True, "Creating", "create requested"),
                createAttempt=attempt.number, createRequestedAt=now_rfc3339(), cubeId=vm_id)
        if remote is None:
            try:
                remote = await self.create_remote(session, vm_id, spec, obj, attempt)
            except Conflict as conflict:
                # Refused, so nothing was made: the next try is a new attempt with a new
                # idempotency key (NoKYC replays a key's first answer, this 409, for 24 hours).
                await self.patch_status(self.current(), {"createAttempt": attempt.number + 1,
                                                         "createRequestedAt": None})
                raise WaitTurn(f"{session.provider_name}: {conflict.message}") from None
        ready, reason, message = self.ready_with(session, remote, spec)
        obj = await self.set_conditions(obj, ready=(ready, reason, message),
                                        synced=(True, "Created", f"created {self.noun} {remote.id}"),
                                        id=remote.id, cubeId=vm_id, **self.status_fields(remote, spec))
        self.event(obj, "Normal", "Created", f"created {session.provider_name} {self.noun} {remote.id}")
        return CONVERGING_DELAY

    # --- deletion -----------------------------------------------------------------------
    async def delete_remote(self, memo: Any) -> str | None:
        """Orphan, gone Cube and 404 end it; an id that never reached status is found, never created."""
        meta, spec, status = self.live["metadata"], self.live.get("spec") or {}, self.live.get("status") or {}
        namespace = meta["namespace"]
        if not status.get("id") and not status.get("createRequestedAt"):
            return None
        cube_name = (spec.get("cubeRef") or {}).get("name", "")
        gone = (f"Cube {cube_name} is gone; the {self.noun} went with its VM at the provider (or stays "
                "with it, where the Cube was orphaned)")
        try:
            cube = await self.rt.kube.get_custom("cubes", namespace, cube_name)
        except NotFoundError:
            return gone
        owner = cube_owner(dict(self.live))
        if cube["metadata"].get("deletionTimestamp") and owner and owner.get("uid") == cube["metadata"]["uid"]:
            return gone  # deleted with its Cube: the VM takes the object with it
        vm_id = (cube.get("status") or {}).get("id") or status.get("cubeId")
        if not vm_id or (status.get("cubeId") and status["cubeId"] != vm_id):
            return None  # its Cube was never created or was replaced: the object went with the old one
        session = await self.provider_session(namespace, cube["spec"]["providerConfigRef"], require_ready=False)
        if self.capability not in session.provider.capabilities:
            return None  # it can never have been created there
        remote_id = status.get("id")
        if not remote_id:
            found = await self.find_earlier(session, vm_id, dict(self.live))
            if found is None:
                if seconds_since(status.get("createRequestedAt")) < CREATE_GRACE_SECONDS:
                    raise DeletionPending(f"no {self.noun} found yet for the create attempt; looking again",
                                          delay=5.0)
                return f"no {self.noun} was made by the create attempt; nothing to delete"
            remote_id = found.id
        if self.delete_capability is not None and self.delete_capability not in session.provider.capabilities:
            message = (f"{session.provider_name} cannot delete {self.noun}s: {self.noun} {remote_id} is left in "
                       "place at the provider; remove it there if it should go")
            self.event(dict(self.live), "Warning", "LeftInPlace", message)
            return message
        try:
            await self.delete_remote_object(session, vm_id, remote_id)
        except NotFound:
            pass
        return f"deleted {session.provider_name} {self.noun} {remote_id}"
