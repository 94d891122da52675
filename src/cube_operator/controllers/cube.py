"""Cube controller: one daemon per Cube reconciles it against the provider.

Why a daemon and not on-create/on-update handlers alone: observed state comes from the
provider (a shared list per ProviderConfig, or a webhook), not from Kubernetes events.
The daemon reconciles when kicked (spec change, webhook) or when its delay passes, so
every Cube is handled by one loop at a time and no two handlers race on its status.
"""
from __future__ import annotations

import hashlib
import time
from typing import Any

import kopf
from pydantic import ValidationError

from ..api import GROUP, VERSION, CubeSpec
from ..providers import (
    CreateCubeRequest,
    CubeState,
    InvalidState,
    KrovaCube,
    NotFound,
    ProviderError,
    Transient,
)
from ._common import (
    EXTERNAL_NAME_ANNOTATION,
    PROVIDER_EVENT_ANNOTATION,
    provider_error_reason,
    retry_delay,
    spec_error,
)
from ._conditions import READY, now_rfc3339, set_condition
from ._kube import NotFoundError
from ._reconciler import Reconciler
from ._registry import registry
from ._runtime import Runtime, get_runtime
from ._sessions import ConfigProblem, ProviderSession, decode_secret_value
from ._wiring import register_reconciler

PLURAL = "cubes"
CONVERGING_DELAY = 1.0
# Longest name Krova accepts; longer Kubernetes names get a stable hashed suffix.
PROVIDER_NAME_MAX = 64


def provider_name(name: str) -> str:
    if len(name) <= PROVIDER_NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: PROVIDER_NAME_MAX - 9]}-{digest}"


def idempotency_key(uid: str, attempt: int) -> str:
    return f"cube-operator-{uid}-{attempt}"


def desired_state(power_state: str) -> CubeState:
    return CubeState.STOPPED if power_state == "Stopped" else CubeState.RUNNING


def ready_for(observed: KrovaCube, power_state: str) -> tuple[bool, str, str]:
    want = desired_state(power_state)
    state = observed.state
    if state == want:
        word = "running" if want == CubeState.RUNNING else "stopped (sleeping)"
        return True, "Running" if want == CubeState.RUNNING else "Stopped", f"Cube is {word}"
    if state == CubeState.ERROR:
        return False, "ProviderError", "the provider reports the Cube in state error"
    if state in (CubeState.PENDING, CubeState.BOOTING):
        return False, "Provisioning", f"waiting for the Cube to be {want.value} (now {observed.raw_state})"
    return False, "Converging", f"waiting for the Cube to be {want.value} (now {observed.raw_state})"


def cost_text(value: float | None) -> str | None:
    return None if value is None else f"{value:.6f}".rstrip("0").rstrip(".")


class CubeReconciler(Reconciler):
    plural = PLURAL

    def __init__(self, runtime: Runtime, body: kopf.Body, logger: Any) -> None:
        super().__init__(runtime, body, logger)
        # Power action we asked for and when; until an observation newer than that
        # arrives, the fleet view may still show the old state and must not re-trigger it.
        self.pending_power: tuple[CubeState, float] | None = None
        self.seen_provider_event: str | None = None

    # --- reconcile ------------------------------------------------------------------
    async def reconcile(self) -> float:
        obj = self.current()
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            return 60.0
        if await self.paused(obj):
            return 30.0
        try:
            spec = CubeSpec.model_validate(obj.get("spec") or {})
        except ValidationError as error:
            await self.invalid_spec(obj, spec_error(error))
            return 300.0
        try:
            session = await self.session_for(obj, spec)
            return await self.reconcile_with(session, obj, spec)
        except ConfigProblem as problem:
            await self.set_conditions(
                obj, ready=(False, problem.reason, problem.message),
                synced=(False, problem.reason, problem.message),
            )
            return 5.0
        except ProviderError as error:
            reason, message, terminal = provider_error_reason(error)
            ready = None if (obj.get("status") or {}).get("id") and not terminal else (False, reason, message)
            await self.set_conditions(self.current(), ready=ready, synced=(False, reason, message))
            return retry_delay(error, 30.0 if terminal else 3.0)

    async def session_for(self, obj: dict[str, Any], spec: CubeSpec) -> ProviderSession:
        return await self.provider_session(obj["metadata"]["namespace"], spec.provider_config_ref)

    async def secret_value(self, namespace: str, ref: Any, field: str) -> str:
        try:
            secret = await self.rt.kube.get_secret(namespace, ref.name)
        except NotFoundError:
            raise ConfigProblem("SecretNotFound", f"{field}: Secret {namespace}/{ref.name} does not exist") from None
        value = decode_secret_value(secret, ref.key)
        if value is None:
            raise ConfigProblem("SecretKeyMissing", f"{field}: Secret {namespace}/{ref.name} has no key {ref.key!r}")
        return value

    async def create_request(self, obj: dict[str, Any], spec: CubeSpec) -> CreateCubeRequest:
        namespace = obj["metadata"]["namespace"]
        ssh_key = spec.ssh_public_key
        if spec.ssh_public_key_secret_ref:
            ssh_key = await self.secret_value(namespace, spec.ssh_public_key_secret_ref, "spec.sshPublicKeySecretRef")
        if not ssh_key:
            raise ConfigProblem(
                "InvalidSpec", "spec.sshPublicKey or spec.sshPublicKeySecretRef is required for provider krova"
            )
        user_data = spec.user_data
        if spec.user_data_secret_ref:
            user_data = await self.secret_value(namespace, spec.user_data_secret_ref, "spec.userDataSecretRef")
        if spec.resources is None:
            raise ConfigProblem("InvalidSpec", "spec.resources {vcpu, ramGb, diskGb} is required for provider krova")
        return CreateCubeRequest.model_validate({
            "name": provider_name(obj["metadata"]["name"]),
            "image": spec.image,
            "region": spec.region,
            "resources": {"vcpu": spec.resources.vcpu, "ramGb": spec.resources.ram_gb,
                          "diskGb": spec.resources.disk_gb},
            "sshPublicKey": ssh_key,
            "userData": user_data,
        })

    async def reconcile_with(self, session: ProviderSession, obj: dict[str, Any], spec: CubeSpec) -> float:
        status = obj.get("status") or {}
        meta = obj["metadata"]
        cube_id = status.get("id")
        if not cube_id and meta.get("annotations", {}).get(EXTERNAL_NAME_ANNOTATION):
            return await self.adopt(session, obj, meta["annotations"][EXTERNAL_NAME_ANNOTATION])
        if not cube_id:
            return await self.create(session, obj, spec)
        marker = (meta.get("annotations") or {}).get(PROVIDER_EVENT_ANNOTATION)
        if marker and marker != self.seen_provider_event:
            # Another replica received a provider event for this Cube: look now.
            self.seen_provider_event = marker
            try:
                session.fleet.put(await session.client.get_cube(cube_id))
            except NotFound:
                session.fleet.forget(cube_id)
        fleet = await session.fleet.get(max_age=session.poll_interval)
        observed = fleet.get(cube_id)
        if observed is None or observed.state == CubeState.DELETED:
            return await self.handle_missing(session, obj, cube_id)
        return await self.converge(session, obj, spec, observed)

    async def adopt(self, session: ProviderSession, obj: dict[str, Any], cube_id: str) -> float:
        try:
            observed = await session.client.get_cube(cube_id)
        except NotFound:
            raise ConfigProblem(
                "ExternalResourceNotFound",
                f"annotation {EXTERNAL_NAME_ANNOTATION}={cube_id} names no Cube at {session.provider}",
            ) from None
        session.fleet.put(observed)
        obj = await self.patch_status(obj, {"id": observed.id, "state": observed.raw_state})
        self.event(obj, "Normal", "Adopted", f"adopted existing {session.provider} cube {observed.id}")
        return 0.0

    async def create(self, session: ProviderSession, obj: dict[str, Any], spec: CubeSpec) -> float:
        status = obj.get("status") or {}
        request = await self.create_request(obj, spec)
        attempt = int(status.get("createAttempt") or 1)
        if not status.get("createRequestedAt") or status.get("createAttempt") is None:
            # Record the key before the call: a crash after the provider accepted the
            # create replays the same key on restart and gets the same cube back.
            obj = await self.set_conditions(
                obj,
                ready=(False, "Creating", f"creating the Cube at {session.provider}"),
                synced=(True, "Creating", "create requested"),
                createAttempt=attempt,
                createRequestedAt=now_rfc3339(),
            )
        uid = obj["metadata"]["uid"]
        created = await session.client.create_cube(request, idempotency_key=idempotency_key(uid, attempt))
        session.fleet.put(created)
        obj = await self.set_conditions(
            obj,
            ready=(False, "Provisioning", f"waiting for the Cube to be running (now {created.raw_state})"),
            synced=(True, "Created", f"created {session.provider} cube {created.id}"),
            id=created.id,
            state=created.raw_state,
            costPerHour=cost_text(created.cost_per_hour),
            image=created.image,
        )
        self.event(obj, "Normal", "Created", f"created {session.provider} cube {created.id}")
        return CONVERGING_DELAY

    async def handle_missing(self, session: ProviderSession, obj: dict[str, Any], cube_id: str) -> float:
        try:
            observed = await session.client.get_cube(cube_id)
        except NotFound:
            observed = None
        if observed is not None and observed.state != CubeState.DELETED:
            session.fleet.put(observed)  # the list was older than the cube
            return CONVERGING_DELAY
        status = obj.get("status") or {}
        attempt = int(status.get("createAttempt") or 1) + 1
        message = (f"{session.provider} cube {cube_id} was deleted outside Kubernetes; "
                   f"creating a replacement (attempt {attempt})")
        self.logger.warning(message)
        self.event(obj, "Warning", "ExternallyDeleted", message)
        await self.set_conditions(
            obj,
            ready=(False, "ExternallyDeleted", message),
            synced=(True, "ExternallyDeleted", message),
            id=None, state=None, publicIpv4=None, serverDomain=None, sshHostPort=None, sshPort=None,
            costPerHour=None, createAttempt=attempt, createRequestedAt=None,
        )
        return CONVERGING_DELAY

    async def converge(self, session: ProviderSession, obj: dict[str, Any], spec: CubeSpec,
                       observed: KrovaCube) -> float:
        status = obj.get("status") or {}
        fields: dict[str, Any] = {
            "state": observed.raw_state,
            "publicIpv4": observed.public_ipv4,
            "costPerHour": cost_text(observed.cost_per_hour),
        }
        notes: list[str] = []
        converging = False

        # Power state: act only on a view newer than our last action.
        want = desired_state(spec.power_state)
        if self.pending_power and session.fleet.observed_at(observed.id) < self.pending_power[1]:
            converging = True
        elif observed.state in (CubeState.RUNNING, CubeState.STOPPED) and observed.state != want:
            converging = True
            outside = status.get("state") == want.value
            try:
                if want == CubeState.RUNNING:
                    await session.client.wake_cube(observed.id)
                    verb = "woke"
                else:
                    await session.client.sleep_cube(observed.id)
                    verb = "put to sleep"
            except InvalidState as error:
                notes.append(f"power change deferred: {error.message}")
            else:
                self.pending_power = (want, time.monotonic())
                why = " (its state was changed outside Kubernetes)" if outside else ""
                self.event(obj, "Normal", "PowerStateChanged", f"{verb} cube {observed.id}{why}")
        else:
            self.pending_power = None

        # SSH port and the public host port, read from the Cube's SSH mapping.
        if observed.state == CubeState.RUNNING and (
            status.get("sshPort") != spec.ssh_port or status.get("sshHostPort") is None
        ):
            fields.update(await self.sync_ssh(session, obj, observed.id, spec.ssh_port, notes))
        if observed.state == CubeState.RUNNING and not status.get("serverDomain"):
            detailed = await session.client.get_cube(observed.id)
            fields["serverDomain"] = detailed.server_domain

        ready, reason, message = ready_for(observed, spec.power_state)
        immutable = self.immutable_drift(spec, observed)
        if immutable:
            ready, reason, message = False, "ImmutableFieldChanged", immutable
        if ready and not notes and (observed.state == CubeState.RUNNING and fields.get("sshHostPort", status.get("sshHostPort")) is None):
            ready, reason, message = False, "Provisioning", "waiting for the SSH port mapping"
        converging = converging or not ready or bool(notes)
        previous_state = status.get("state")
        obj = await self.set_conditions(
            obj,
            ready=(ready, reason, message),
            synced=(True, "ReconcileSuccess", "; ".join(notes) or "in sync with the provider"),
            **fields,
        )
        if previous_state != observed.raw_state and previous_state is not None:
            self.event(obj, "Normal", "StateChanged", f"{previous_state} → {observed.raw_state}")
        return CONVERGING_DELAY if converging else session.poll_interval

    @staticmethod
    def immutable_drift(spec: CubeSpec, observed: KrovaCube) -> str | None:
        drift = []
        if observed.image and observed.image != spec.image:
            drift.append(f"spec.image is {spec.image!r} but the Cube runs {observed.image!r}")
        if spec.resources and observed.resources and (
            observed.resources.vcpu != spec.resources.vcpu
            or float(observed.resources.ram_gb) != float(spec.resources.ram_gb)
            or float(observed.resources.disk_gb) != float(spec.resources.disk_gb)
        ):
            drift.append("spec.resources differ from the Cube's resources")
        if not drift:
            return None
        return "; ".join(drift) + " — these fields cannot change in place; recreate the Cube to change them"

    async def sync_ssh(self, session: ProviderSession, obj: dict[str, Any], cube_id: str,
                       port: int, notes: list[str]) -> dict[str, Any]:
        mappings = await session.client.list_tcp_mappings(cube_id)
        ssh = next((m for m in mappings if m.is_ssh), None)
        if ssh is None:
            notes.append("waiting for the SSH mapping")
            return {}
        if ssh.cube_port != port:
            try:
                await session.client.set_ssh_port(cube_id, port)
            except ProviderError as error:
                if isinstance(error, Transient):
                    raise
                notes.append(f"SSH port change to {port} deferred: {error.message}")
                return {"sshHostPort": ssh.host_port, "sshPort": ssh.cube_port}
            self.event(obj, "Normal", "SshPortChanged", f"SSH now forwarded to port {port} inside the Cube")
        return {"sshHostPort": ssh.host_port, "sshPort": port}


# --- kopf wiring ------------------------------------------------------------------------

register_reconciler(PLURAL, CubeReconciler)


@kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
async def cube_deleted(body: kopf.Body, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta,
                       name: str, namespace: str | None, memo: kopf.Memo, logger: kopf.Logger,
                       retry: int, **_: Any) -> None:
    namespace = str(namespace)
    runtime = get_runtime()
    runtime.triggers.pop((PLURAL, namespace, name), None)
    if spec.get("deletionPolicy", "Delete") == "Orphan":
        kopf.info(body, reason="Orphaned", message=f"left provider cube {status.get('id')} in place (deletionPolicy Orphan)")
        return
    ref_name = (spec.get("providerConfigRef") or {}).get("name", "")
    cube_id = status.get("id") or (meta.get("annotations") or {}).get(EXTERNAL_NAME_ANNOTATION)
    if not cube_id and not status.get("createRequestedAt"):
        return  # never reached the provider
    try:
        session = await runtime.sessions.session(namespace, ref_name, require_ready=False)
    except ConfigProblem as problem:
        await _blocked(runtime, namespace, name, body, problem.reason,
                       f"cannot delete the provider cube: {problem.message}; fix it, or set "
                       "spec.deletionPolicy: Orphan to keep the VM")
        raise kopf.TemporaryError(problem.message, delay=10) from None
    try:
        if not cube_id:
            # Created but the id never reached status: replaying the recorded key
            # returns the cube that create made (or makes it, which we then delete).
            reconciler = CubeReconciler(runtime, body, logger)
            request = await reconciler.create_request(dict(body), CubeSpec.model_validate(dict(spec)))
            cube = await session.client.create_cube(
                request, idempotency_key=idempotency_key(meta["uid"], int(status.get("createAttempt") or 1)))
            cube_id = cube.id
        if not memo.get("delete_requested"):
            try:
                await session.client.delete_cube(cube_id)
            except NotFound:
                kopf.info(body, reason="Deleted", message=f"provider cube {cube_id} is gone")
                return
            memo["delete_requested"] = True
            kopf.info(body, reason="Deleting", message=f"asked {session.provider} to delete cube {cube_id}")
        try:
            remaining = await session.client.get_cube(cube_id)
        except NotFound:
            kopf.info(body, reason="Deleted", message=f"provider cube {cube_id} is gone")
            return
        raise kopf.TemporaryError(f"waiting for {session.provider} to delete cube {cube_id} "
                                  f"(state {remaining.raw_state})", delay=2)
    except ProviderError as error:
        _reason, message, _terminal = provider_error_reason(error)
        await _blocked(runtime, namespace, name, body, "DeletionBlocked",
                       f"provider cube {cube_id} not deleted yet: {message}")
        raise kopf.TemporaryError(message, delay=retry_delay(error, 5.0)) from None
    except ConfigProblem as problem:
        await _blocked(runtime, namespace, name, body, problem.reason, problem.message)
        raise kopf.TemporaryError(problem.message, delay=10) from None


async def _blocked(runtime: Runtime, namespace: str, name: str, body: kopf.Body,
                   reason: str, message: str) -> None:
    generation = body.get("metadata", {}).get("generation")
    conditions = set_condition((body.get("status") or {}).get("conditions"), READY, False,
                               reason, message, generation)
    try:
        await runtime.kube.patch_status(PLURAL, namespace, name, {"conditions": conditions})
    except NotFoundError:
        pass
    kopf.warn(body, reason=reason, message=message)

