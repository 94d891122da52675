"""The base of every kind's daemon reconciler: the pass preamble, status writes,
conditions, events, and the deletion flow — written once for every kind.

A reconciler reads the live body kopf keeps for its daemon, but prefers the version it
wrote itself when that is newer (the watch event for our own patch may not have
arrived yet), so it never acts twice on a status it has already changed.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol

import kopf
from pydantic import BaseModel, ValidationError

from .._logging import WAITING
from ..api import API_VERSION, GROUP
from ..metrics import observe_ready
from ..providers import Capability, ProviderError
from ._common import (
    PAUSED_MESSAGE,
    TERMINAL_REASONS,
    is_paused,
    newer,
    provider_error_reason,
    retry_delay,
)
from ._conditions import (
    READY,
    SYNCED,
    rfc3339_in,
    same_ignoring_time,
    seconds_since,
    set_condition,
    with_kstatus,
)
from ._kube import KubeError, NotFoundError
from ._problems import spec_error
from ._runtime import Runtime
from ._sessions import ConfigProblem, ProviderSession, unsupported

#: Ready=False reasons that are progress, not a problem: no Warning event for them.
PROGRESS_REASONS = frozenset({
    "Creating", "Provisioning", "Converging", "InProgress", "Pending", "Restoring", "WaitingForTurn",
    "WaitingForCube", "WaitingForProviderConfig", "Paused", "Stopped", "Running",
})
#: Reasons whose transition already has its own event where it happens.
ANNOUNCED_ELSEWHERE = frozenset({"ExternallyDeleted"})
#: The provider refused a create as it stands: sending it again costs a call against the
#: account's limit and changes nothing. Held until the object or its ProviderConfig
#: changes — also across restarts, since the condition is in status. (An object that
#: exists keeps being observed: only creates are held.)
HELD_REASONS = frozenset({"ProviderRejected"})
HOLD_SECONDS = 3600.0
HOLD_NOTE = ("; not sent again until the object or its ProviderConfig changes "
             "(any change to the object, e.g. an annotation, retries now)")


def cube_owner(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The ownerReference that ties a Snapshot, Restore, TcpMapping or Domain to its Cube."""
    return next((ref for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
                 if ref.get("kind") == "Cube" and str(ref.get("apiVersion", "")).startswith(GROUP + "/")), None)


def owner_reference(cube: dict[str, Any]) -> dict[str, Any]:
    # No blockOwnerDeletion: it needs update on Cubes' finalizers where the
    # OwnerReferencesPermissionEnforcement admission plugin runs, and nothing needs it.
    # (That plugin also wants delete on the object whose ownerReferences change: see own_by.)
    meta = cube["metadata"]
    return {"apiVersion": API_VERSION, "kind": "Cube", "name": meta["name"], "uid": meta["uid"]}


async def delete_dependent(kube: Any, plural: str, namespace: str, name: str) -> None:
    """Delete an object whose Cube is gone (--delete-dependents). A 403 (no delete granted)
    leaves it to the garbage collector, which acts on the ownerReference."""
    try:
        await kube.delete_custom(plural, namespace, name)
    except NotFoundError:
        pass
    except KubeError as error:
        if error.status != 403:
            raise


class CubeGone(Exception):
    """The Cube this object belonged to (its ownerReference) no longer exists."""


class Reconciling(Protocol):
    async def reconcile(self) -> float:
        """One pass; returns the seconds until the next one."""
        ...


class DeletionPending(Exception):
    """The provider is still deleting; look again in ``delay`` seconds."""

    def __init__(self, message: str, delay: float = 2.0) -> None:
        super().__init__(message)
        self.delay = delay


class Reconciler(ABC):
    plural: str = ""
    spec_model: type[BaseModel]
    #: Whether ``spec.deletionPolicy: Orphan`` applies to this kind.
    orphanable: bool = True

    def __init__(self, runtime: Runtime, body: kopf.Body, logger: Any) -> None:
        self.rt = runtime
        self.live = body
        self.logger = logger
        self.written: dict[str, Any] | None = None
        # Consecutive ProviderErrors of this object, for backoff; from status after a restart.
        self.provider_failures = int((body.get("status") or {}).get("providerFailures") or 0)
        # Whether a kick (a change to the object or what it uses) started this pass, rather
        # than its timer; the first pass after a start counts as a timer's.
        self.kicked = False
        self.first_pass = True
        self.owner_refused = False  # the API server refused the ownerReference (see own_by)

    def woke(self, kicked: bool) -> None:
        self.kicked = kicked
        self.first_pass = False

    def held(self, obj: dict[str, Any]) -> bool:
        """The provider refused this generation as it stands and nothing changed since."""
        if self.kicked:
            return False
        ready = next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == READY), None)
        if ready is None or (obj.get("status") or {}).get("id"):
            return False  # only a create is held: an existing object keeps being observed
        return ready.get("status") == "False" and ready.get("reason") in HELD_REASONS and (
            ready.get("observedGeneration") == obj["metadata"].get("generation"))

    # --- the pass ---------------------------------------------------------------------
    async def reconcile(self) -> float:
        """The preamble every kind shares; the kind's work is :meth:`reconcile_spec`."""
        obj = self.current()
        if obj["metadata"].get("deletionTimestamp"):
            return 60.0
        if await self.paused(obj):
            return 30.0
        try:
            spec = self.spec_model.model_validate(obj.get("spec") or {})
        except ValidationError as error:
            return await self.on_invalid_spec(obj, spec_error(error))
        if self.held(obj):
            return HOLD_SECONDS
        wait = self.backing_off(obj)
        if wait > 0:
            return wait
        try:
            delay = await self.reconcile_spec(obj, spec)
        except ConfigProblem as problem:
            return await self.on_problem(problem)
        except CubeGone as gone:
            return await self.on_cube_gone(obj, str(gone))
        except ProviderError as error:
            self.provider_failures += 1
            return await self.on_provider_error(error)
        if self.provider_failures:
            self.provider_failures = 0
            await self.patch_status(self.current(), {"providerFailures": None, "nextRetryAt": None})
        return delay

    def backing_off(self, obj: dict[str, Any]) -> float:
        """Seconds left of the backoff a restart interrupted; later passes run when the
        daemon's own delay says (a kick, i.e. a change, retries at once)."""
        if self.kicked or not self.first_pass:
            return 0.0
        next_at = (obj.get("status") or {}).get("nextRetryAt")
        return max(-seconds_since(next_at), 0.0) if next_at else 0.0

    @abstractmethod
    async def reconcile_spec(self, obj: dict[str, Any], spec: Any) -> float:
        """The kind's own work, given a valid spec; returns the seconds until the next pass."""

    async def on_invalid_spec(self, obj: dict[str, Any], message: str) -> float:
        await self.invalid_spec(obj, message)
        return 300.0

    async def on_problem(self, problem: ConfigProblem) -> float:
        await self.wait_condition(self.current(), problem)
        return problem.retry

    async def on_cube_gone(self, obj: dict[str, Any], message: str) -> float:
        """An object whose Cube is gone is deleted with it: by the garbage collector on a real
        cluster, by the operator where none runs (--delete-dependents). Ready says so meanwhile."""
        meta = obj["metadata"]
        before = next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == READY), None)
        await self.set_conditions(obj, ready=(False, "CubeDeleted", message), synced=(False, "CubeDeleted", message),
                                  state=None)
        if (before or {}).get("reason") != "CubeDeleted":  # once, not every pass while it waits
            self.event(obj, "Normal", "CubeDeleted", message)
        if self.rt.options.delete_dependents:
            await delete_dependent(self.rt.kube, self.plural, meta["namespace"], meta["name"])
        return 60.0

    async def on_provider_error(self, error: ProviderError) -> float:
        reason, message, terminal = provider_error_reason(error)
        obj = self.current()
        hold = reason in HELD_REASONS and not (obj.get("status") or {}).get("id")
        if hold:
            message += HOLD_NOTE
        delay = HOLD_SECONDS if hold else retry_delay(error, 30.0 if terminal else 3.0, self.provider_failures)
        if not hold and "retrying" not in message:
            message += f"; retrying in {delay:.0f}s (failure {self.provider_failures} in a row)"
        # A transient error on an object that exists keeps its last Ready verdict.
        keep_ready = bool((obj.get("status") or {}).get("id")) and not terminal
        await self.set_conditions(obj, ready=None if keep_ready else (False, reason, message),
                                  synced=(False, reason, message), providerFailures=self.provider_failures,
                                  nextRetryAt=None if hold else rfc3339_in(delay))
        return delay

    # --- status -----------------------------------------------------------------------
    def current(self) -> dict[str, Any]:
        live = {
            "apiVersion": self.live.get("apiVersion"),
            "kind": self.live.get("kind"),
            "metadata": dict(self.live.get("metadata", {})),
            "spec": dict(self.live.get("spec", {})),
            "status": dict(self.live.get("status", {}) or {}),
        }
        current = newer(self.written, live)
        if current is live:
            # The watch has caught up with our last write: keeping the whole object as PATCH
            # answered it would double what each Cube costs in memory.
            self.written = None
        return current

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
        before = next((c for c in conditions if c.get("type") == READY), None)
        if ready:
            conditions = set_condition(conditions, READY, *ready, generation)
            self.announce_problem(obj, before, ready)
        if synced:
            conditions = set_condition(conditions, SYNCED, *synced, generation)
        conditions = with_kstatus(conditions, generation, TERMINAL_REASONS, failed=fields.get("phase") == "Failed")
        changes: dict[str, Any] = dict(fields)
        changes["conditions"] = conditions
        changes["observedGeneration"] = generation
        written = await self.patch_status(obj, changes)
        meta = written["metadata"]
        ready_now = next((c["status"] for c in conditions if c["type"] == READY), "Unknown")
        observe_ready(str(written.get("kind") or self.plural), meta["namespace"], meta["name"],
                      ready_now, meta.get("creationTimestamp"))
        return written

    def announce_problem(self, obj: dict[str, Any], before: dict[str, Any] | None,
                         ready: tuple[bool | str, str, str]) -> None:
        """A Warning event and one log line when Ready turns to a problem (not on every pass
        that finds it again, and not for routine progress such as Creating)."""
        ok, reason, message = ready
        if ok is True or ok == "True" or reason in PROGRESS_REASONS or reason in ANNOUNCED_ELSEWHERE:
            return
        if before is not None and before.get("status") == "False" and before.get("reason") == reason:
            return
        self.logger.warning("Ready=False, %s: %s", reason, message)
        self.event(obj, "Warning", reason, message)

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        kopf.event(kopf.Body(obj),  # type: ignore[arg-type]
                   type=type_, reason=reason, message=message)

    # --- references -------------------------------------------------------------------
    async def provider_session(self, namespace: str, ref: dict[str, Any] | Any, *,
                               require_ready: bool = True) -> ProviderSession:
        name = ref.get("name") if isinstance(ref, dict) else ref.name
        other = ref.get("namespace") if isinstance(ref, dict) else getattr(ref, "namespace", None)
        if other and other != namespace:
            raise ConfigProblem(
                "CrossNamespaceReference",
                f"providerConfigRef points to namespace {other!r}; only ProviderConfigs in the "
                f"object's own namespace ({namespace}) may be used",
            )
        return await self.rt.sessions.session(namespace, str(name), require_ready=require_ready)

    @staticmethod
    def require(session: ProviderSession, capability: Capability, what: str) -> None:
        """Unsupported, before any provider call, when the provider lacks ``capability``."""
        if capability not in session.provider.capabilities:
            raise unsupported(session.provider_name, what)

    async def cube_of(self, namespace: str, cube_name: str, *, running: bool = True,
                      dependent: dict[str, Any] | None = None) -> tuple[dict[str, Any], ProviderSession, str]:
        """The referenced Cube, its provider session and provider id — or a ConfigProblem to wait on.

        A ``dependent`` (the object using the Cube) is tied to it by an ownerReference the
        first time the Cube is seen, so deleting the Cube deletes it; once tied, a Cube
        that is gone (or was recreated under the same name) raises CubeGone."""
        cube = self.cube_body(namespace, cube_name)
        if cube is None:  # no daemon here for it (being deleted, or not seen yet): ask
            try:
                cube = await self.rt.kube.get_custom("cubes", namespace, cube_name)
            except NotFoundError:
                cube = None
        if dependent is not None:
            owner = cube_owner(dependent)
            if owner is not None and owner.get("name") == cube_name and (
                    cube is None or cube["metadata"].get("uid") != owner.get("uid")):
                raise CubeGone(f"Cube {namespace}/{cube_name} was deleted; this {self.live.get('kind') or 'object'} "
                               "is deleted with it (ownerReference)")
            if cube is not None and owner != owner_reference(cube):
                await self.own_by(dependent, cube)
        if cube is None:
            raise ConfigProblem("CubeNotFound", f"Cube {namespace}/{cube_name} does not exist")
        status = cube.get("status") or {}
        if cube["metadata"].get("deletionTimestamp"):
            raise ConfigProblem("CubeDeleting", f"Cube {namespace}/{cube_name} is being deleted")
        if not status.get("id"):
            raise ConfigProblem("WaitingForCube", f"Cube {namespace}/{cube_name} has no provider id yet")
        if running and (status.get("vmState") or status.get("state")) != "running":
            raise ConfigProblem(
                "WaitingForCube",
                f"Cube {namespace}/{cube_name} is {status.get('state') or 'not ready'}; waiting for running",
            )
        session = await self.provider_session(namespace, cube["spec"]["providerConfigRef"])
        return cube, session, str(status["id"])

    def cube_body(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Cube as kopf's watch last delivered it to its daemon (no GET), or None."""
        live = self.rt.bodies.get(("cubes", namespace, name))
        if live is None or not live.get("metadata"):
            return None
        return {"apiVersion": live.get("apiVersion"), "kind": live.get("kind"),
                "metadata": dict(live["metadata"]), "spec": dict(live.get("spec") or {}),
                "status": dict(live.get("status") or {})}

    async def own_by(self, obj: dict[str, Any], cube: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if self.owner_refused:
            return
        others = [ref for ref in meta.get("ownerReferences") or [] if ref is not cube_owner(obj)]
        try:
            written = await self.rt.kube.patch_metadata(self.plural, meta["namespace"], meta["name"],
                                                        {"ownerReferences": [*others, owner_reference(cube)]})
        except KubeError as error:
            if error.status != 403:
                raise
            # OwnerReferencesPermissionEnforcement (OpenShift, hardened clusters) wants delete
            # on this object for any ownerReference change, which the chart does not grant:
            # the object works on, it just is not deleted with its Cube by the collector.
            self.owner_refused = True
            message = (f"cannot tie this object to Cube {cube['metadata']['name']} (ownerReference refused: "
                       f"{error}); deleting the Cube will not delete it: delete it yourself, or grant the "
                       "operator delete on it")
            self.logger.warning(message)
            self.event(obj, "Warning", "OwnerReferenceRefused", message)
            return
        self.written = newer(self.written, written)

    # --- common verdicts --------------------------------------------------------------
    async def paused(self, obj: dict[str, Any]) -> bool:
        """Report and skip a paused object."""
        if not is_paused(obj["metadata"]):
            return False
        # Ready keeps its last verdict, but its reason says Paused: `kubectl get` shows the
        # object is not being looked after instead of a reassuring Running.
        before = next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == READY), None)
        was = (before or {}).get("status") or "Unknown"
        if before and before.get("reason") == "Paused":
            message = str(before.get("message") or PAUSED_MESSAGE)
        else:
            message = PAUSED_MESSAGE + (f"; last verdict before the pause: {before.get('reason')}" if before else "")
        await self.set_conditions(obj, ready=(was, "Paused", message),
                                  synced=(False, "ReconcilePaused", PAUSED_MESSAGE))
        return True

    async def invalid_spec(self, obj: dict[str, Any], message: str) -> None:
        await self.set_conditions(obj, ready=(False, "InvalidSpec", message),
                                  synced=(False, "InvalidSpec", f"{message}; nothing was sent to the provider"))

    async def wait_condition(self, obj: dict[str, Any], problem: ConfigProblem) -> None:
        # Synced says when the next look is; a change to this object or to what it names
        # (a Secret, the ProviderConfig, the Cube) comes sooner.
        when = f"; looking again in {problem.retry:.0f}s, or as soon as what it names changes"
        await self.set_conditions(obj, ready=(False, problem.reason, problem.message),
                                  synced=(False, problem.reason, problem.message + when))

    # --- deletion ---------------------------------------------------------------------
    async def delete_remote(self, memo: Any) -> str | None:
        """Remove the provider object; the message for the Deleted event, None when there
        was nothing at the provider. Raise DeletionPending to look again later."""
        return None

    async def finalize(self, memo: Any) -> None:
        """The kopf delete handler of every kind: Orphan, provider gone and 404 end it;
        a provider outage or a configuration problem keeps the finalizer and says why."""
        meta, spec, status = self.live["metadata"], self.live.get("spec") or {}, self.live.get("status") or {}
        namespace, name = meta["namespace"], meta["name"]
        self.rt.triggers.pop((self.plural, namespace, name), None)
        if self.orphanable and spec.get("deletionPolicy") == "Orphan":
            kopf.info(self.live, reason="Orphaned",
                      message=f"left provider object {status.get('id')} in place (deletionPolicy Orphan)")
            await self.after_delete()
            return
        try:
            message = await self.delete_remote(memo)
        except DeletionPending as pending:
            # An expected wait: logged at INFO (see _logging.ExpectedWaitFilter).
            raise kopf.TemporaryError(WAITING + str(pending), delay=pending.delay) from None
        except ProviderError as error:
            _reason, text, _terminal = provider_error_reason(error)
            await self.blocked("DeletionBlocked", f"provider object {status.get('id') or ''} not "
                                                  f"deleted yet: {text}".replace("  ", " "))
            raise kopf.TemporaryError(text, delay=retry_delay(error, 5.0)) from None
        except ConfigProblem as problem:
            await self.blocked(problem.reason, f"cannot delete the provider object: {problem.message}; "
                                               "fix it, or set spec.deletionPolicy: Orphan to keep it"
                               if self.orphanable else problem.message)
            raise kopf.TemporaryError(problem.message, delay=10) from None
        if message:
            kopf.info(self.live, reason="Deleted", message=message)
        await self.after_delete()

    async def after_delete(self) -> None:
        """What follows the provider side of a deletion (a Cube takes its dependents)."""

    async def blocked(self, reason: str, message: str) -> None:
        meta = self.live.get("metadata", {})
        conditions = set_condition((self.live.get("status") or {}).get("conditions"), READY, False,
                                   reason, message, meta.get("generation"))
        conditions = with_kstatus(conditions, meta.get("generation"), TERMINAL_REASONS)
        try:
            await self.rt.kube.patch_status(self.plural, meta["namespace"], meta["name"],
                                            {"conditions": conditions})
        except NotFoundError:
            pass
        kopf.warn(self.live, reason=reason, message=message)
