"""The provider seam: a neutral model of VMs and the :class:`Provider` protocol.

Controllers speak only this module's language. Each provider plugin
(``providers/<name>/``) maps its own API onto it: its state words onto :class:`VMState`
(keeping the provider's word as ``provider_state``), its VM objects onto
:class:`ObservedVM`, and its way of surviving a crash mid-create onto
:class:`CreateAttempt` (an idempotency key where the provider has one, an owner tag or a
name carrying the owner's UID where it does not).

A capability a provider lacks is an absent facet (``provider.snapshots is None``) and a
missing member of ``provider.capabilities``; controllers check before any call.

This module imports no provider.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "CATALOGUE_HINT",
    "Capability",
    "Catalogue",
    "CatalogueEntry",
    "CreateAttempt",
    "DnsRecord",
    "DomainBinding",
    "DomainFacet",
    "Gpus",
    "ObservedVM",
    "PortForward",
    "PowerFacet",
    "ProgressFacet",
    "Provider",
    "ProviderBase",
    "Provisioning",
    "Resources",
    "RestoreFacet",
    "SnapshotFacet",
    "SnapshotInfo",
    "SnapshotState",
    "SshFacet",
    "TcpExposure",
    "TcpExposureFacet",
    "VMSpec",
    "VMState",
    "VerifiedEvent",
    "WebhookEndpoint",
    "WebhookFacet",
    "WebhookRejected",
    "WebhookRejection",
    "WebhookVerifier",
    "money_text",
    "not_offered",
    "one_of",
    "size_text",
]


class VMState(StrEnum):
    """A VM's lifecycle state, the same words for every provider."""

    PROVISIONING = "provisioning"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    ERROR = "error"
    SUSPENDED = "suspended"
    DELETING = "deleting"
    DELETED = "deleted"
    UNKNOWN = "unknown"


class Capability(StrEnum):
    """What a provider can do beyond create/observe/delete of a VM."""

    POWER = "power"  # stop/start (Krova: sleep/wake)
    SNAPSHOTS = "snapshots"
    RESTORE = "restore"
    TCP_EXPOSURE = "tcp-exposure"  # TcpMapping
    DOMAINS = "domains"
    WEBHOOKS = "webhooks"  # account-level event subscriptions
    SSH_PORT = "ssh-port"  # a forwarded SSH host port that follows spec.sshPort
    SERVER_DOMAIN = "server-domain"  # a host server domain name in status
    IDEMPOTENT_CREATE = "idempotent-create"  # replaying a create attempt returns the same VM
    USER_DATA = "user-data"  # cloud-init user data at create
    SNAPSHOT_DELETE = "snapshot-delete"  # snapshots can be deleted (CyberPanel's cannot)
    ROOT_PASSWORD = "root-password"  # a root password is set at create (given or generated)
    PROGRESS = "progress"  # provisioning progress can be read (ProgressFacet)
    CREATE_CALLBACK = "create-callback"  # a per-VM callback URL and secret are given at create


@dataclass(frozen=True, slots=True)
class Resources:
    vcpu: int
    ram_gb: float
    disk_gb: float


@dataclass(frozen=True, slots=True)
class Gpus:
    model: str
    count: int


@dataclass(frozen=True, slots=True)
class PortForward:
    """A provider-side forward of ``host:host_port`` to ``vm_port`` inside the VM."""

    vm_port: int
    host_port: int | None
    host: str | None = None
    protocol: str = "tcp"
    is_ssh: bool = False


@dataclass(frozen=True)
class Provisioning:
    """How far a provider's deployment of a VM has got (providers with :attr:`Capability.PROGRESS`)."""

    percent: int | None
    task: str | None
    #: The deployment stopped at ``task`` for good.
    failed: bool = False
    message: str | None = None
    done: bool = False


# Slots here and in its parts: the fleet view holds one per VM, ten thousand at a time.
@dataclass(frozen=True, slots=True)
class ObservedVM:
    """What the provider says about one VM, in neutral terms."""

    id: str
    name: str
    state: VMState
    #: The provider's own word for the state (``sleeping``, ``Online``, ...), for status.
    provider_state: str
    public_ipv4: str | None = None
    public_ipv6: str | None = None
    private_ipv4: str | None = None
    addresses: tuple[str, ...] = ()
    port_forwards: tuple[PortForward, ...] = ()
    cost_per_hour: float | None = None
    image: str | None = None
    region: str | None = None
    resources: Resources | None = None
    plan: str | None = None
    #: The owning object's UID as read back from the provider (tag, label, name), if any.
    owner_uid: str | None = None
    created_at: datetime | None = None
    gpus: tuple[Gpus, ...] = ()
    #: A problem the provider reports that the VM's state alone does not say
    #: (reason, message), e.g. ("Outbid", ...): Ready=False with that reason.
    problem: tuple[str, str] | None = None
    #: Provider-only facts a controller may show (``serverDomain`` ...), never required.
    extras: Mapping[str, Any] = field(default_factory=dict)
    #: False for a list row that lacks what ``get_vm`` tells (cost, plan, region): the
    #: controller keeps what it recorded from one ``get_vm`` instead of blanking it.
    detailed: bool = True

    @property
    def ssh_forward(self) -> PortForward | None:
        return next((p for p in self.port_forwards if p.is_ssh), None)


@dataclass(frozen=True)
class VMSpec:
    """What to create: the Cube's spec with Secrets resolved. Sizing is ``resources``
    for resource-based providers or ``plan`` for plan-based ones."""

    name: str
    image: str
    region: str | None = None
    resources: Resources | None = None
    plan: str | None = None
    gpus: Gpus | None = None
    ssh_public_key: str | None = field(default=None, repr=False)
    user_data: str | None = field(default=None, repr=False)
    root_password: str | None = field(default=None, repr=False)
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Where the provider reports the end of the deployment (:attr:`Capability.CREATE_CALLBACK`).
    callback_url: str | None = None
    callback_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CreateAttempt:
    """One try at creating the provider object for a Kubernetes object.

    Recorded in status before the call. With the owner's UID it yields the idempotency
    key (providers that have one) and the owner tag (providers that keep tags), so an
    operator that died mid-create finds its earlier try instead of making another.
    """

    owner_uid: str
    number: int = 1

    @property
    def idempotency_key(self) -> str:
        # One format for every kind: UIDs are unique across kinds already.
        return f"cube-operator-{self.owner_uid}-{self.number}"

    @property
    def owner_tag(self) -> str:
        return self.owner_uid


class SnapshotState(StrEnum):
    IN_PROGRESS = "in-progress"
    COMPLETE = "complete"
    FAILED = "failed"


@dataclass(frozen=True)
class SnapshotInfo:
    id: str
    vm_id: str
    name: str | None
    state: SnapshotState
    provider_state: str
    size_bytes: int | None = None
    completed_at: datetime | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class TcpExposure:
    """TCP port ``vm_port`` of a VM reachable at ``host:host_port`` from ``allowed_cidrs``
    (everyone, if empty)."""

    id: str
    vm_id: str
    vm_port: int
    host_port: int | None
    host: str | None
    label: str | None
    allowed_cidrs: tuple[str, ...]
    active: bool
    provider_state: str


@dataclass(frozen=True)
class DnsRecord:
    type: str
    name: str
    value: str


@dataclass(frozen=True)
class DomainBinding:
    id: str
    vm_id: str
    domain: str
    port: int | None
    active: bool
    provider_state: str
    #: The record the user must publish for the domain to route.
    dns_record: DnsRecord | None = None


@dataclass(frozen=True)
class WebhookEndpoint:
    id: str
    url: str
    events: tuple[str, ...]
    enabled: bool = True
    #: The signing secret: present only on the create answer, never logged.
    secret: str | None = field(default=None, repr=False)


# -- the catalogue: what spec.image, spec.region and spec.plan may be --------------------


@dataclass(frozen=True)
class CatalogueEntry:
    """One value a Cube field may take: ``id`` is what goes in the spec, ``description``
    says what it is for people ("2 vCPU, 4 GB RAM, 80 GB disk, $0.02/h")."""

    id: str
    description: str | None = None


@dataclass(frozen=True)
class Catalogue:
    """What one provider account offers, for ProviderConfig ``status.catalogue``.

    A part is None where the provider has no listing for it (Krova sizes by
    ``spec.resources`` and has no plans). ``plans`` are whatever ``spec.plan`` takes (plans,
    Voltage Park's presets); ``note`` says how sizing or pricing works where a list cannot.
    """

    images: tuple[CatalogueEntry, ...] | None = None
    regions: tuple[CatalogueEntry, ...] | None = None
    plans: tuple[CatalogueEntry, ...] | None = None
    note: str | None = None


#: Where a user reads the choices a validation message names in part.
CATALOGUE_HINT = "kubectl describe providerconfig lists them under Status: Catalogue"


def one_of(choices: Iterable[str], limit: int = 20) -> str:
    """``a, b, c`` (the first ``limit``, then how many more), or ``none`` for no choices."""
    shown = list(dict.fromkeys(choices))
    if not shown:
        return "none"
    text = ", ".join(shown[:limit])
    return text + (f", and {len(shown) - limit} more" if len(shown) > limit else "")


def not_offered(field: str, noun: str, wanted: object, provider: str, choices: Iterable[str],
                why: str = "is not offered by") -> str:
    """A validation message naming the valid choices::

        spec.image: image 'ubuntu-99' is not offered by krova; choose one of: ubuntu-24.04,
        debian-12 (kubectl describe providerconfig lists them under Status: Catalogue)
    """
    return (f"{field}: {noun} {str(wanted)!r} {why} {provider}; choose one of: {one_of(choices)} "
            f"({CATALOGUE_HINT})")


def money_text(value: float | None, per: str = "h") -> str | None:
    """``$0.0082/h``: up to four decimals, trailing zeros dropped; None for no price."""
    if value is None or not math.isfinite(value):
        return None
    return f"${f'{value:.4f}'.rstrip('0').rstrip('.')}/{per}"


def size_text(vcpu: float | None = None, ram_gb: float | None = None, disk_gb: float | None = None,
              *extra: str | None) -> str:
    """``2 vCPU, 4 GB RAM, 80 GB disk`` followed by the ``extra`` parts that are not None."""
    parts = []
    if vcpu:
        parts.append(f"{vcpu:g} vCPU")
    if ram_gb:
        parts.append(f"{ram_gb:g} GB RAM")
    if disk_gb:
        parts.append(f"{disk_gb:g} GB disk")
    parts += [e for e in extra if e]
    return ", ".join(parts)


# -- facets: optional capabilities ------------------------------------------------------


class PowerFacet(Protocol):
    async def set_power(self, vm_id: str, running: bool) -> None:
        """Ask for the VM to be running (True) or stopped (False). InvalidState when the
        VM's current state does not allow it (a wait, not a failure)."""


class SshFacet(Protocol):
    async def ssh_forward(self, vm_id: str) -> PortForward | None:
        """The VM's SSH forward, or None while it has none yet."""

    async def set_ssh_port(self, vm_id: str, vm_port: int) -> None:
        """Point the SSH forward at ``vm_port`` inside the VM."""


class SnapshotFacet(Protocol):
    def snapshot_name(self, wanted: str) -> str:
        """The name the provider will give a snapshot asked for as ``wanted``."""

    async def list_snapshots(self, vm_id: str) -> list[SnapshotInfo]: ...

    async def create_snapshot(self, vm_id: str, name: str, attempt: CreateAttempt) -> SnapshotInfo: ...

    async def delete_snapshot(self, vm_id: str, snapshot_id: str) -> None:
        """NotFound = already gone."""


class ProgressFacet(Protocol):
    async def provisioning(self, vm_id: str) -> Provisioning:
        """How far the VM's deployment has got (one call)."""


class RestoreFacet(Protocol):
    async def restore_snapshot(self, vm_id: str, snapshot_id: str) -> None:
        """Start restoring the VM from the snapshot; progress shows as VM state."""


class TcpExposureFacet(Protocol):
    async def list_exposures(self, vm_id: str) -> list[TcpExposure]:
        """User exposures of the VM (the SSH forward excluded)."""

    async def expose(
        self, vm_id: str, *, vm_port: int, label: str | None, allowed_cidrs: list[str],
        attempt: CreateAttempt,
    ) -> TcpExposure: ...

    async def unexpose(self, vm_id: str, exposure_id: str) -> None:
        """NotFound = already gone."""


class DomainFacet(Protocol):
    async def list_domains(self, vm_id: str) -> list[DomainBinding]: ...

    async def add_domain(
        self, vm_id: str, *, domain: str, port: int, attempt: CreateAttempt
    ) -> DomainBinding: ...

    async def delete_domain(self, vm_id: str, domain_id: str) -> None:
        """NotFound = already gone."""


class WebhookFacet(Protocol):
    async def list_webhooks(self) -> list[WebhookEndpoint]: ...

    async def get_webhook(self, webhook_id: str) -> WebhookEndpoint: ...

    async def create_webhook(self, *, url: str, events: list[str]) -> WebhookEndpoint:
        """The answer carries ``secret``, which the provider returns only this once."""

    async def delete_webhook(self, webhook_id: str) -> None:
        """NotFound = already gone."""


# -- the provider -----------------------------------------------------------------------


@runtime_checkable
class Provider(Protocol):
    """One provider account, as one ProviderConfig configures it.

    Guarantees every implementation gives:

    * ``validate_spec`` makes no call; it names the field to fix (``spec.plan: ...``).
    * ``list_vms`` is the one observation call per poll interval: every VM of the
      account, all pages walked, bounded.
    * ``find_vms`` never creates: it returns the VMs an earlier ``create_vm`` with this
      attempt may have made (by owner tag/label, or the deterministic name carrying the
      owner's UID). More than one is the caller's ``DuplicateExternalResource``.
    * ``create_vm`` with the same attempt twice makes at most one VM where the provider
      has idempotency keys (:attr:`Capability.IDEMPOTENT_CREATE`).
    * ``delete_vm`` raises NotFound when the VM is gone; anything else keeps it alive.
    * Errors are :class:`~cube_operator.providers.errors.ProviderError`, messages free of
      secrets.
    """

    name: str
    capabilities: frozenset[Capability]
    #: Which of a Cube's ``plan``, ``resources`` and ``gpus`` size its VM here.
    sizing_fields: frozenset[str]
    power: PowerFacet | None
    ssh: SshFacet | None
    snapshots: SnapshotFacet | None
    restore: RestoreFacet | None
    tcp: TcpExposureFacet | None
    domains: DomainFacet | None
    webhooks: WebhookFacet | None
    progress: ProgressFacet | None

    def validate_spec(self, spec: VMSpec) -> list[str]: ...

    def vm_name(self, object_name: str, owner_uid: str) -> str:
        """The provider-side name for the object, within the provider's naming rules."""

    async def check_credentials(self) -> None: ...

    async def list_vms(self) -> list[ObservedVM]: ...

    async def get_vm(self, vm_id: str) -> ObservedVM:
        """One VM, with details a list may lack. NotFound when absent."""

    async def find_vms(self, name: str, attempt: CreateAttempt) -> list[ObservedVM]:
        """VMs an earlier create with ``attempt`` for the VM named ``name`` may have made."""

    async def create_vm(self, spec: VMSpec, attempt: CreateAttempt) -> ObservedVM: ...

    async def delete_vm(self, vm_id: str) -> None: ...

    async def catalogue(self) -> Catalogue:
        """The images, regions and plans the account offers (for ProviderConfig status,
        asked rarely): from the provider's listings, and the caches ``create_vm`` checks a
        spec against. Parts without a listing are None."""

    async def aclose(self) -> None: ...


_FACETS = {
    "power": Capability.POWER, "ssh": Capability.SSH_PORT, "snapshots": Capability.SNAPSHOTS,
    "restore": Capability.RESTORE, "tcp": Capability.TCP_EXPOSURE, "domains": Capability.DOMAINS,
    "webhooks": Capability.WEBHOOKS, "progress": Capability.PROGRESS,
}


def sizing_problems(provider: str, sizing_fields: frozenset[str], *, plan: bool, resources: bool,
                    gpus: bool) -> list[str]:
    """What a Cube's sizing fields say that the provider would not act on: a field it
    does not read, or a second way of sizing it would silently ignore. No call is made."""
    given = {"plan": plan, "resources": resources, "gpus": gpus}
    problems = [f"spec.{field} does not apply to {provider}, which sizes VMs by "
                f"{' or '.join('spec.' + f for f in sorted(sizing_fields))}; remove spec.{field}"
                for field in ("plan", "resources", "gpus") if given[field] and field not in sizing_fields]
    ignored = [f"spec.{f}" for f in ("resources", "gpus") if given[f] and f in sizing_fields]
    if plan and "plan" in sizing_fields and ignored:
        problems.append(f"spec.plan and {' and '.join(ignored)} are both set: {provider} would use spec.plan "
                        f"and ignore {' and '.join(ignored)}; keep one way of sizing the VM")
    return problems


class ProviderBase:
    """Plumbing every provider class shares: each facet is the provider itself when it
    declares the capability, else None; repr names the client; closing closes it."""

    name: str
    capabilities: frozenset[Capability]
    sizing_fields: frozenset[str] = frozenset({"plan", "resources"})
    power: PowerFacet | None
    ssh: SshFacet | None
    snapshots: SnapshotFacet | None
    restore: RestoreFacet | None
    tcp: TcpExposureFacet | None
    domains: DomainFacet | None
    webhooks: WebhookFacet | None
    progress: ProgressFacet | None

    def __init__(self, client: Any) -> None:
        self.client = client
        for attribute, capability in _FACETS.items():
            setattr(self, attribute, self if capability in self.capabilities else None)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.client!r})"

    def snapshot_name(self, wanted: str) -> str:
        return wanted

    async def catalogue(self) -> Catalogue:
        return Catalogue()

    async def aclose(self) -> None:
        await self.client.aclose()


# -- inbound webhooks -------------------------------------------------------------------


class WebhookRejection(StrEnum):
    MISSING_SIGNATURE = "missing-signature"
    BAD_SIGNATURE = "bad-signature"
    STALE_TIMESTAMP = "stale-timestamp"
    REPLAY = "replay"
    MALFORMED = "malformed"


_REJECTION_STATUS = {
    WebhookRejection.MISSING_SIGNATURE: 401,
    WebhookRejection.BAD_SIGNATURE: 401,
    WebhookRejection.STALE_TIMESTAMP: 401,
    WebhookRejection.REPLAY: 409,
    WebhookRejection.MALFORMED: 400,
}


class WebhookRejected(Exception):
    """A delivery that must change nothing, and why (safe to log: no secret, no body)."""

    def __init__(self, reason: WebhookRejection, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    @property
    def http_status(self) -> int:
        return _REJECTION_STATUS[self.reason]


@dataclass(frozen=True)
class VerifiedEvent:
    event: str
    vm_id: str
    delivery_id: str
    #: The event says the VM is gone (drop it from the fleet view, don't GET it).
    vm_gone: bool = False


class WebhookVerifier(Protocol):
    def __call__(
        self, headers: Mapping[str, str], body: bytes, secret: str, now: float
    ) -> VerifiedEvent:
        """Verify one delivery (``now``: unix seconds) or raise :class:`WebhookRejected`."""
