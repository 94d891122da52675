"""An in-memory provider and Kubernetes API for unit-testing the reconcilers' state
machine without kubectl, HTTP or a simulator.

:class:`FakeProvider` implements the :class:`~cube_operator.providers.Provider` protocol
with scripted faults; :class:`FakeKube` implements the few calls the controllers make on
:class:`~cube_operator.controllers._kube.Kube`. The real reconcilers, session registry and
conditions code run on top. One fake stands in for every provider: ``PROFILES`` gives it
each provider's capabilities (DESIGN.md's table), so each rule is checked per provider.
"""
from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import kopf
from kopf._core.engines import posting

from cube_operator.api.providerconfig import KrovaSettings
from cube_operator.controllers._kube import KubeError, NotFoundError
from cube_operator.controllers._runtime import Runtime
from cube_operator.providers import (
    KNOWN_PROVIDERS,
    BudgetDefault,
    CallKind,
    Capability,
    CreateAttempt,
    CredentialKey,
    NotFound,
    ObservedVM,
    ProviderPlugin,
    Provisioning,
    TcpExposure,
    VMSpec,
    VMState,
)

C = Capability
_ALL_BUT_IDEMPOTENCY = frozenset(C) - {C.IDEMPOTENT_CREATE}
#: Capabilities per provider, as DESIGN.md's table has them.
PROFILES: dict[str, frozenset[Capability]] = {
    "krova": frozenset(C) - {C.ROOT_PASSWORD, C.PROGRESS, C.CREATE_CALLBACK},
    "nokyc": frozenset({C.POWER, C.SNAPSHOTS, C.RESTORE, C.TCP_EXPOSURE, C.WEBHOOKS, C.IDEMPOTENT_CREATE,
                        C.USER_DATA, C.SNAPSHOT_DELETE}),
    "cyberpanel": frozenset({C.POWER, C.SNAPSHOTS, C.ROOT_PASSWORD, C.PROGRESS, C.CREATE_CALLBACK}),
    "voltagepark": frozenset({C.POWER, C.USER_DATA}),
    "lunanode": frozenset({C.POWER, C.SNAPSHOTS, C.RESTORE, C.TCP_EXPOSURE, C.SNAPSHOT_DELETE}),
}
assert set(PROFILES) == set(KNOWN_PROVIDERS)
assert _ALL_BUT_IDEMPOTENCY


def provider_word(state: VMState) -> str:
    """The fake provider's own word for a state, deliberately unlike the neutral one: code
    that compares the provider's word with a VMState fails here, not on a real provider."""
    return "Fake" + state.value.title()


class Crash(Exception):
    """The operator process died here (raised by a scripted fault)."""


@dataclass
class Call:
    name: str
    args: tuple[Any, ...] = ()


@dataclass
class FakeProvider:
    """One provider account held in memory."""

    name: str
    capabilities: frozenset[Capability]
    vms: dict[str, ObservedVM] = field(default_factory=dict)
    sizing_fields: frozenset[str] = frozenset({"plan", "resources", "gpus"})
    exposures: dict[str, TcpExposure] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    #: method name -> exceptions to raise on its next calls (None: proceed).
    faults: dict[str, list[BaseException | None]] = field(default_factory=dict)
    #: create_vm commits the VM, then raises this (the answer never arrived).
    fail_after_commit: BaseException | None = None
    #: idempotency key -> VM id, for providers that replay.
    replay: dict[str, str] = field(default_factory=dict)
    on_create: Callable[[], None] | None = None
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        has = self.capabilities.__contains__
        self.power = self if has(C.POWER) else None
        self.ssh = self if has(C.SSH_PORT) else None
        self.tcp = self if has(C.TCP_EXPOSURE) else None
        self.progress = self if has(C.PROGRESS) else None
        self.snapshots = self.restore = self.domains = self.webhooks = None
        #: What provisioning() answers (providers with C.PROGRESS).
        self.deployment = Provisioning(percent=40, task="FakeTaskConfigure")

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append(Call(name, args))
        pending = self.faults.get(name)
        if pending:
            fault = pending.pop(0)
            if fault is not None:
                raise fault

    def called(self, name: str) -> int:
        return sum(1 for c in self.calls if c.name == name)

    def alive(self) -> list[ObservedVM]:
        return [v for v in self.vms.values() if v.state is not VMState.DELETED]

    # -- the protocol ----------------------------------------------------------------
    def validate_spec(self, spec: VMSpec) -> list[str]:
        return [] if spec.ssh_public_key else ["spec.sshPublicKey is required"]

    def vm_name(self, object_name: str, owner_uid: str) -> str:
        return f"{object_name}-{owner_uid[:8]}"

    async def check_credentials(self) -> None:
        self._call("check_credentials")

    async def list_vms(self) -> list[ObservedVM]:
        self._call("list_vms")
        return list(self.vms.values())

    async def get_vm(self, vm_id: str) -> ObservedVM:
        self._call("get_vm", vm_id)
        vm = self.vms.get(vm_id)
        if vm is None:
            raise NotFound(f"no VM {vm_id}", provider=self.name, status=404)
        return vm

    async def find_vms(self, name: str, attempt: CreateAttempt) -> list[ObservedVM]:
        self._call("find_vms", name, attempt)
        return [v for v in self.alive() if v.owner_uid == attempt.owner_uid]

    def make_vm(self, name: str, owner_uid: str | None, state: VMState = VMState.PROVISIONING) -> ObservedVM:
        vm = ObservedVM(id=f"vm-{next(self.ids)}", name=name, state=state, provider_state=provider_word(state),
                        image="ubuntu-24.04", owner_uid=owner_uid, public_ipv4="192.0.2.10")
        self.vms[vm.id] = vm
        return vm

    async def create_vm(self, spec: VMSpec, attempt: CreateAttempt) -> ObservedVM:
        self._call("create_vm", spec, attempt)
        if self.on_create:
            self.on_create()
        key = attempt.idempotency_key
        if C.IDEMPOTENT_CREATE in self.capabilities and key in self.replay:
            return self.vms[self.replay[key]]
        vm = self.make_vm(spec.name, attempt.owner_uid)
        self.replay[key] = vm.id
        if self.fail_after_commit is not None:
            failure, self.fail_after_commit = self.fail_after_commit, None
            raise failure
        return vm

    async def delete_vm(self, vm_id: str) -> None:
        self._call("delete_vm", vm_id)
        if vm_id not in self.vms:
            raise NotFound(f"no VM {vm_id}", provider=self.name, status=404)
        del self.vms[vm_id]

    async def set_power(self, vm_id: str, running: bool) -> None:
        self._call("set_power", vm_id, running)
        vm = self.vms[vm_id]
        state = VMState.RUNNING if running else VMState.STOPPED
        self.vms[vm_id] = replace(vm, state=state, provider_state=provider_word(state))

    async def provisioning(self, vm_id: str) -> Provisioning:
        self._call("provisioning", vm_id)
        return self.deployment

    async def ssh_forward(self, vm_id: str) -> Any:
        from cube_operator.providers import PortForward

        self._call("ssh_forward", vm_id)
        return PortForward(vm_port=22, host_port=2201, is_ssh=True)

    async def set_ssh_port(self, vm_id: str, vm_port: int) -> None:
        self._call("set_ssh_port", vm_id, vm_port)

    async def list_exposures(self, vm_id: str) -> list[TcpExposure]:
        self._call("list_exposures", vm_id)
        return [e for e in self.exposures.values() if e.vm_id == vm_id]

    async def expose(self, vm_id: str, *, vm_port: int, label: str | None, allowed_cidrs: list[str],
                     attempt: CreateAttempt) -> TcpExposure:
        self._call("expose", vm_id, vm_port)
        exposure = TcpExposure(id=f"tcp-{next(self.ids)}", vm_id=vm_id, vm_port=vm_port, host_port=vm_port,
                               host="192.0.2.10", label=label, allowed_cidrs=tuple(allowed_cidrs),
                               active=True, provider_state="active")
        self.exposures[exposure.id] = exposure
        return exposure

    async def unexpose(self, vm_id: str, exposure_id: str) -> None:
        self._call("unexpose", vm_id, exposure_id)
        if self.exposures.pop(exposure_id, None) is None:
            raise NotFound("gone", provider=self.name, status=404)

    async def aclose(self) -> None:
        pass

    def set_state(self, vm_id: str, state: VMState) -> None:
        self.vms[vm_id] = replace(self.vms[vm_id], state=state, provider_state=provider_word(state))


class FakeKube:
    """The controllers' Kubernetes calls, in memory. Bodies are updated in place, as
    kopf updates the body a daemon holds."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.version = itertools.count(1)
        #: plural -> exceptions for the next patch_status calls.
        self.status_faults: list[BaseException] = []

    def add(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("generation", 1)
        meta["resourceVersion"] = str(next(self.version))
        obj.setdefault("status", {})
        self.objects[(plural, meta["namespace"], meta["name"])] = obj
        return obj

    def body(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        return self.objects[(plural, namespace, name)]

    async def get_custom(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        try:
            return copy.deepcopy(self.objects[(plural, namespace, name)])
        except KeyError:
            raise NotFoundError(404, "NotFound", f"{plural} {name} not found") from None

    async def list_custom_all(self, plural: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for (p, _, _), o in self.objects.items() if p == plural]

    async def list_custom(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for (p, ns, _), o in self.objects.items() if p == plural and ns == namespace]

    async def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        if self.status_faults:
            raise self.status_faults.pop(0)
        obj = self.objects.get((plural, namespace, name))
        if obj is None:
            raise NotFoundError(404, "NotFound", name)
        merged = dict(obj.get("status") or {})
        for key, value in status.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = copy.deepcopy(value)
        obj["status"] = merged
        obj["metadata"]["resourceVersion"] = str(next(self.version))
        return copy.deepcopy(obj)

    async def patch_metadata(self, plural: str, namespace: str, name: str, metadata: dict[str, Any]) -> dict[str, Any]:
        obj = self.objects[(plural, namespace, name)]
        obj["metadata"].setdefault("annotations", {}).update(metadata.get("annotations") or {})
        if "ownerReferences" in metadata:
            obj["metadata"]["ownerReferences"] = copy.deepcopy(metadata["ownerReferences"])
        obj["metadata"]["resourceVersion"] = str(next(self.version))
        return copy.deepcopy(obj)

    async def delete_custom(self, plural: str, namespace: str, name: str) -> None:
        # No finalizers here: the object is gone at once.
        if self.objects.pop((plural, namespace, name), None) is None:
            raise NotFoundError(404, "NotFound", name)

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            return self.secrets[(namespace, name)]
        except KeyError:
            raise NotFoundError(404, "NotFound", name) from None

    async def create_secret(self, namespace: str, name: str, data: dict[str, str],
                            owner: dict[str, Any]) -> dict[str, Any]:
        if (namespace, name) in self.secrets:
            raise KubeError(409, "AlreadyExists", name)
        self.secrets[(namespace, name)] = {"metadata": {"name": name, "ownerReferences": [owner]}, "data": dict(data)}
        return self.secrets[(namespace, name)]

    async def apply_secret_data(self, namespace: str, name: str, data: dict[str, str],
                                owner: dict[str, Any] | None = None) -> None:
        secret = self.secrets.setdefault((namespace, name), {"metadata": {"name": name}, "data": {}})
        secret.setdefault("data", {}).update(data)

    async def aclose(self) -> None:
        pass


class EventLog:
    """Stands in for kopf's event poster: what kopf.event/info/warn would have posted."""

    def __init__(self) -> None:
        self.events: list[posting.K8sEvent] = []

    def put_nowait(self, event: posting.K8sEvent) -> None:
        self.events.append(event)

    def reasons(self, name: str | None = None) -> list[str]:
        return [e.reason for e in self.events if name is None or e.ref.get("name") == name]


NAMESPACE = "team-a"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUnitTestKey unit@test"


@dataclass
class Harness:
    kube: FakeKube
    provider: FakeProvider
    runtime: Runtime
    events: EventLog

    def cube(self, name: str = "web-1", **spec: Any) -> dict[str, Any]:
        body = {"providerConfigRef": {"name": "pc"}, "image": "ubuntu-24.04",
                "resources": {"vcpu": 1, "ramGb": 1, "diskGb": 10}, "sshPublicKey": SSH_KEY}
        body.update(spec)
        if "sshPublicKeySecretRef" in spec:
            body.pop("sshPublicKey")  # one source of the key, as the CRD requires
        return self.kube.add("cubes", {"apiVersion": "cube-operator.io/v1alpha1", "kind": "Cube",
                                       "metadata": {"name": name, "namespace": NAMESPACE}, "spec": body})

    def reconciler(self, cls: type, obj: dict[str, Any]) -> Any:
        return cls(self.runtime, kopf.Body(obj), _Logger())

    def condition(self, obj: dict[str, Any], type_: str = "Ready") -> dict[str, Any]:
        return next((c for c in obj["status"].get("conditions", []) if c["type"] == type_), {})


class _Logger:
    def __getattr__(self, _name: str) -> Callable[..., None]:
        return lambda *a, **k: None


def fake_plugin(provider: FakeProvider) -> ProviderPlugin:
    return ProviderPlugin(
        name=provider.name, settings_field=provider.name,
        settings_model=KrovaSettings if provider.name == "krova" else None,
        settings_required=provider.name == "krova",
        capabilities=provider.capabilities,
        credential_keys=(CredentialKey("apiKey", "key"),),
        budgets=(BudgetDefault("writes", 10, 60.0, frozenset({CallKind.MUTATE, CallKind.PROVISION})),),
        build=lambda _connection: provider,
        verify_webhook=_never_verified if provider.capabilities & {C.WEBHOOKS, C.CREATE_CALLBACK} else None,
    )


def _never_verified(headers: Any, body: bytes, secret: str, now: float) -> Any:
    """The fake's deliveries are never checked here (the receiver has its own tests)."""
    from cube_operator.providers import WebhookRejected, WebhookRejection

    raise WebhookRejected(WebhookRejection.BAD_SIGNATURE, "the fake provider sends no deliveries")


