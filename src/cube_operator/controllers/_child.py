"""Reconciler and deletion for provider objects that live under a Cube.

Snapshots, TCP mappings and domains share the same life: wait for the Cube, create once
with an idempotency key recorded before the call, observe through a list call, replace
when the provider has no update for a changed field, delete with the object.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Any

import kopf
from pydantic import BaseModel, ValidationError

from ..providers import Conflict, NotFound, ProviderError
from ._common import provider_error_reason, retry_delay, spec_error
from ._conditions import now_rfc3339
from ._kube import NotFoundError
from ._reconciler import Reconciler
from ._runtime import Runtime, get_runtime
from ._sessions import ConfigProblem, ProviderSession

CONVERGING_DELAY = 1.0
# Once Ready, a child is re-listed this many poll intervals apart: it rarely changes.
STEADY_FACTOR = 5


class WaitTurn(Exception):
    """The provider is busy with something else for this Cube; try again shortly."""


class ChildReconciler(Reconciler):
    spec_model: type[BaseModel]
    noun: str = "object"
    needs_running: bool = True

    # --- what each kind supplies ---------------------------------------------------------
    def validate(self, spec: Any, cube: dict[str, Any]) -> str | None:
        return None

    def needs_replace(self, spec: Any, status: dict[str, Any]) -> str | None:
        return None

    @abstractmethod
    async def create_remote(self, session: ProviderSession, cube_id: str, spec: Any,
                            obj: dict[str, Any], key: str) -> Any: ...

    @abstractmethod
    async def list_remote(self, session: ProviderSession, cube_id: str) -> list[Any]: ...

    @abstractmethod
    async def delete_remote(self, session: ProviderSession, cube_id: str, remote_id: str) -> None: ...

    @abstractmethod
    def status_fields(self, remote: Any, spec: Any) -> dict[str, Any]: ...

    @abstractmethod
    def readiness(self, remote: Any) -> tuple[bool, str, str]: ...

    async def before_create(self, session: ProviderSession, cube_id: str) -> None:
        """Raise WaitTurn when the provider would refuse the create right now."""

    # --- the shared life ----------------------------------------------------------------
    def key(self, obj: dict[str, Any], attempt: int) -> str:
        return f"cube-operator-{self.plural}-{obj['metadata']['uid']}-{attempt}"

    async def reconcile(self) -> float:
        obj = self.current()
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            return 60.0
        if await self.paused(obj):
            return 30.0
        try:
            spec = self.spec_model.model_validate(obj.get("spec") or {})
        except ValidationError as error:
            await self.invalid_spec(obj, spec_error(error))
            return 300.0
        try:
            cube, session, cube_id = await self.cube_of(
                meta["namespace"], spec.cube_ref.name, running=self.needs_running)  # type: ignore[attr-defined]
            invalid = self.validate(spec, cube)
            if invalid:
                await self.invalid_spec(obj, invalid)
                return 30.0
            return await self.reconcile_child(obj, spec, session, cube_id)
        except ConfigProblem as problem:
            await self.wait_condition(self.current(), problem)
            return 2.0
        except WaitTurn as turn:
            await self.set_conditions(self.current(), ready=(False, "WaitingForTurn", str(turn)),
                                      synced=(True, "WaitingForTurn", str(turn)))
            return 2.0
        except ProviderError as error:
            reason, message, terminal = provider_error_reason(error)
            await self.set_conditions(self.current(), ready=(False, reason, message) if terminal else None,
                                      synced=(False, reason, message))
            return retry_delay(error, 30.0 if terminal else 3.0)

    async def forget_remote(self, obj: dict[str, Any], attempt: int) -> dict[str, Any]:
        return await self.patch_status(obj, {"id": None, "createAttempt": attempt + 1, "createRequestedAt": None})

    async def reconcile_child(self, obj: dict[str, Any], spec: Any, session: ProviderSession,
                              cube_id: str) -> float:
        status = obj.get("status") or {}
        attempt = int(status.get("createAttempt") or 1)
        if status.get("id") and status.get("cubeId") not in (None, cube_id):
            message = f"the Cube was replaced (now {cube_id}); creating the {self.noun} again"
            self.event(obj, "Warning", "CubeReplaced", message)
            obj = await self.forget_remote(obj, attempt)
            return CONVERGING_DELAY
        replace = self.needs_replace(spec, status) if status.get("id") else None
        if replace:
            try:
                await self.delete_remote(session, cube_id, status["id"])
            except NotFound:
                pass
            self.event(obj, "Normal", "Replacing", f"{replace}; the provider has no update, so the "
                                                   f"{self.noun} {status['id']} was removed and is recreated")
            await self.forget_remote(obj, attempt)
            return 0.0
        if not status.get("id"):
            return await self.create(obj, spec, session, cube_id, attempt)
        remotes = await self.list_remote(session, cube_id)
        remote = next((r for r in remotes if r.id == status["id"]), None)
        if remote is None:
            message = f"{self.noun} {status['id']} disappeared at {session.provider}; creating it again"
            self.event(obj, "Warning", "ExternallyDeleted", message)
            await self.forget_remote(obj, attempt)
            return CONVERGING_DELAY
        ready, reason, message = self.readiness(remote)
        await self.set_conditions(obj, ready=(ready, reason, message),
                                  synced=(True, "ReconcileSuccess", "in sync with the provider"),
                                  **self.status_fields(remote, spec))
        return session.poll_interval * STEADY_FACTOR if ready else CONVERGING_DELAY

    async def create(self, obj: dict[str, Any], spec: Any, session: ProviderSession, cube_id: str,
                     attempt: int) -> float:
        status = obj.get("status") or {}
        if not status.get("createRequestedAt"):
            await self.before_create(session, cube_id)
            obj = await self.set_conditions(
                obj, ready=(False, "Creating", f"creating the {self.noun} at {session.provider}"),
                synced=(True, "Creating", "create requested"),
                createAttempt=attempt, createRequestedAt=now_rfc3339(), cubeId=cube_id)
        try:
            remote = await self.create_remote(session, cube_id, spec, obj, self.key(obj, attempt))
        except Conflict as conflict:
            raise WaitTurn(f"{session.provider}: {conflict.message}") from None
        ready, reason, message = self.readiness(remote)
        obj = await self.set_conditions(obj, ready=(ready, reason, message),
                                        synced=(True, "Created", f"created {self.noun} {remote.id}"),
                                        id=remote.id, cubeId=cube_id, **self.status_fields(remote, spec))
        self.event(obj, "Normal", "Created", f"created {session.provider} {self.noun} {remote.id}")
        return CONVERGING_DELAY


async def delete_child(reconciler_cls: type[ChildReconciler], body: kopf.Body, logger: Any) -> None:
    """Deletion handler shared by the children: Orphan, gone Cube and 404 all end it."""
    runtime: Runtime = get_runtime()
    meta, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
    namespace, name = meta["namespace"], meta["name"]
    runtime.triggers.pop((reconciler_cls.plural, namespace, name), None)
    if spec.get("deletionPolicy") == "Orphan":
        kopf.info(body, reason="Orphaned", message=f"left {status.get('id')} in place (deletionPolicy Orphan)")
        return
    if not status.get("id") and not status.get("createRequestedAt"):
        return
    reconciler = reconciler_cls(runtime, body, logger)
    cube_name = (spec.get("cubeRef") or {}).get("name", "")
    try:
        cube = await runtime.kube.get_custom("cubes", namespace, cube_name)
    except NotFoundError:
        kopf.info(body, reason="Deleted", message=f"Cube {cube_name} is gone; the provider removed the {reconciler.noun} with it")
        return
    cube_id = (cube.get("status") or {}).get("id") or status.get("cubeId")
    if not cube_id or (status.get("cubeId") and status["cubeId"] != cube_id):
        return  # its Cube was never created or was replaced: the provider object went with the old one
    try:
        session = await runtime.sessions.session(namespace, cube["spec"]["providerConfigRef"]["name"],
                                                 require_ready=False)
        remote_id = status.get("id")
        if not remote_id:
            typed = reconciler.spec_model.model_validate(spec)
            remote = await reconciler.create_remote(session, cube_id, typed, dict(body),
                                                    reconciler.key(dict(body), int(status.get("createAttempt") or 1)))
            remote_id = remote.id
        await reconciler.delete_remote(session, cube_id, remote_id)
    except NotFound:
        pass
    except ProviderError as error:
        _reason, message, _terminal = provider_error_reason(error)
        kopf.warn(body, reason="DeletionBlocked", message=f"{reconciler.noun} not deleted yet: {message}")
        raise kopf.TemporaryError(message, delay=retry_delay(error, 5.0)) from None
    except ConfigProblem as problem:
        kopf.warn(body, reason=problem.reason, message=problem.message)
        raise kopf.TemporaryError(problem.message, delay=10) from None
    kopf.info(body, reason="Deleted", message=f"deleted {session.provider} {reconciler.noun} {remote_id}")
