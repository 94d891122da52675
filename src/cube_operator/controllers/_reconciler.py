"""The base of every kind's daemon reconciler: status writes, conditions, events.

A reconciler reads the live body kopf keeps for its daemon, but prefers the version it
wrote itself when that is newer (the watch event for our own patch may not have
arrived yet), so it never acts twice on a status it has already changed.
"""
from __future__ import annotations

from typing import Any, Protocol

import kopf

from ..metrics import observe_ready
from ._common import PAUSED_MESSAGE, is_paused, newer
from ._conditions import READY, SYNCED, same_ignoring_time, set_condition
from ._kube import NotFoundError
from ._runtime import Runtime
from ._sessions import ConfigProblem, ProviderSession


class Reconciling(Protocol):
    async def reconcile(self) -> float:
        """One pass; returns the seconds until the next one."""
        ...


class Reconciler:
    plural: str = ""

    def __init__(self, runtime: Runtime, body: kopf.Body, logger: Any) -> None:
        self.rt = runtime
        self.live = body
        self.logger = logger
        self.written: dict[str, Any] | None = None

    def current(self) -> dict[str, Any]:
        live = {
            "apiVersion": self.live.get("apiVersion"),
            "kind": self.live.get("kind"),
            "metadata": dict(self.live.get("metadata", {})),
            "spec": dict(self.live.get("spec", {})),
            "status": dict(self.live.get("status", {}) or {}),
        }
        return newer(self.written, live)

    async def patch_status(self, obj: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        status = obj.get("status") or {}
        if all(status.get(k) == v for k, v in changes.items() if k != "conditions") and (
            "conditions" not in changes
            or same_ignoring_time(status.get("conditions"), changes["conditions"])
        ):
            return obj
        meta = obj["metadata"]
        self.written = await self.rt.kube.patch_status(self.plural, meta["namespace"], meta["name"], changes)
        return self.written

    async def set_conditions(self, obj: dict[str, Any], *,
                             ready: tuple[bool | str, str, str] | None = None,
                             synced: tuple[bool | str, str, str] | None = None,
                             **fields: Any) -> dict[str, Any]:
        generation = obj["metadata"].get("generation")
        conditions = (obj.get("status") or {}).get("conditions") or []
        if ready:
            conditions = set_condition(conditions, READY, *ready, generation)
        if synced:
            conditions = set_condition(conditions, SYNCED, *synced, generation)
        changes: dict[str, Any] = dict(fields)
        changes["conditions"] = conditions
        changes["observedGeneration"] = generation
        written = await self.patch_status(obj, changes)
        meta = written["metadata"]
        ready_now = next((c["status"] for c in conditions if c["type"] == READY), "Unknown")
        observe_ready(str(written.get("kind") or self.plural), meta["namespace"], meta["name"],
                      ready_now, meta.get("creationTimestamp"))
        return written

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        kopf.event(kopf.Body(obj),  # type: ignore[arg-type]
                   type=type_, reason=reason, message=message)

    async def provider_session(self, namespace: str, ref: dict[str, Any] | Any) -> ProviderSession:
        name = ref.get("name") if isinstance(ref, dict) else ref.name
        other = ref.get("namespace") if isinstance(ref, dict) else getattr(ref, "namespace", None)
        if other and other != namespace:
            raise ConfigProblem(
                "CrossNamespaceReference",
                f"providerConfigRef points to namespace {other!r}; only ProviderConfigs in the "
                f"object's own namespace ({namespace}) may be used",
            )
        return await self.rt.sessions.session(namespace, str(name))

    async def cube_of(self, namespace: str, cube_name: str, *, running: bool = True
                      ) -> tuple[dict[str, Any], ProviderSession, str]:
        """The referenced Cube, its provider session and provider id — or a ConfigProblem to wait on."""
        try:
            cube = await self.rt.kube.get_custom("cubes", namespace, cube_name)
        except NotFoundError:
            raise ConfigProblem("CubeNotFound", f"Cube {namespace}/{cube_name} does not exist") from None
        status = cube.get("status") or {}
        if cube["metadata"].get("deletionTimestamp"):
            raise ConfigProblem("CubeDeleting", f"Cube {namespace}/{cube_name} is being deleted")
        if not status.get("id"):
            raise ConfigProblem("WaitingForCube", f"Cube {namespace}/{cube_name} has no provider id yet")
        if running and status.get("state") != "running":
            raise ConfigProblem(
                "WaitingForCube",
                f"Cube {namespace}/{cube_name} is {status.get('state') or 'not ready'}; waiting for running",
            )
        session = await self.provider_session(namespace, cube["spec"]["providerConfigRef"])
        return cube, session, str(status["id"])

    async def paused(self, obj: dict[str, Any]) -> bool:
        """Report and skip a paused object."""
        if not is_paused(obj["metadata"]):
            return False
        await self.set_conditions(obj, synced=(False, "ReconcilePaused", PAUSED_MESSAGE))
        return True

    async def invalid_spec(self, obj: dict[str, Any], message: str) -> None:
        await self.set_conditions(obj, ready=(False, "InvalidSpec", message),
                                  synced=(False, "InvalidSpec", f"{message}; nothing was sent to the provider"))

    async def wait_condition(self, obj: dict[str, Any], problem: ConfigProblem) -> None:
        await self.set_conditions(obj, ready=(False, problem.reason, problem.message),
                                  synced=(False, problem.reason, problem.message))
