"""Krova's objects in the neutral model of :mod:`..base`."""

from __future__ import annotations

from ..base import (
    Catalogue,
    CatalogueEntry,
    DnsRecord,
    DomainBinding,
    ObservedVM,
    PortForward,
    Resources,
    SnapshotInfo,
    SnapshotState,
    TcpExposure,
    VMState,
    WebhookEndpoint,
)
from .models import (
    KROVA_DNS_TARGET,
    CubeState,
    Domain,
    Image,
    KrovaCube,
    Pricing,
    Region,
    Snapshot,
    TcpMapping,
    Webhook,
)

__all__ = [
    "catalogue_of",
    "domain_binding",
    "observed_vm",
    "port_forward",
    "snapshot_info",
    "tcp_exposure",
    "vm_state",
    "webhook_endpoint",
]

_STATES = {
    CubeState.PENDING: VMState.PROVISIONING,
    CubeState.BOOTING: VMState.PROVISIONING,
    CubeState.RUNNING: VMState.RUNNING,
    CubeState.STOPPED: VMState.STOPPED,  # also the seed's "sleeping"
    CubeState.STOPPING: VMState.STOPPING,
    CubeState.RESIZING: VMState.PROVISIONING,
    CubeState.ERROR: VMState.ERROR,
    CubeState.DELETED: VMState.DELETED,
    CubeState.UNKNOWN: VMState.UNKNOWN,
}
_SNAPSHOT_DONE = {"complete", "completed", "available"}
_SNAPSHOT_FAILED = {"failed", "error"}


def vm_state(state: CubeState) -> VMState:
    return _STATES.get(state, VMState.UNKNOWN)


def observed_vm(cube: KrovaCube, *, region: str | None = None) -> ObservedVM:
    extras: dict[str, str] = {}
    if cube.server_domain:
        extras["serverDomain"] = cube.server_domain
    if cube.ssh_user:
        extras["sshUser"] = cube.ssh_user
    return ObservedVM(
        id=cube.id,
        name=cube.name,
        state=vm_state(cube.state),
        provider_state=cube.raw_state or cube.state.value,
        public_ipv4=cube.public_ipv4,
        addresses=(cube.public_ipv4,) if cube.public_ipv4 else (),
        cost_per_hour=cube.cost_per_hour,
        image=cube.image,
        region=region,
        resources=Resources(cube.resources.vcpu, cube.resources.ram_gb, cube.resources.disk_gb),
        created_at=cube.created_at,
        extras=extras,
    )


def port_forward(mapping: TcpMapping) -> PortForward:
    return PortForward(vm_port=mapping.cube_port, host_port=mapping.host_port, host=mapping.host,
                       is_ssh=mapping.is_ssh)


def tcp_exposure(mapping: TcpMapping) -> TcpExposure:
    return TcpExposure(
        id=mapping.id, vm_id=mapping.cube_id, vm_port=mapping.cube_port,
        host_port=mapping.host_port, host=mapping.host, label=mapping.label,
        allowed_cidrs=tuple(c for c in mapping.whitelisted_ips if c),
        active=mapping.status == "active", provider_state=mapping.status,
    )


def snapshot_info(snapshot: Snapshot) -> SnapshotInfo:
    word = snapshot.status.lower()
    state = (SnapshotState.COMPLETE if word in _SNAPSHOT_DONE
             else SnapshotState.FAILED if word in _SNAPSHOT_FAILED else SnapshotState.IN_PROGRESS)
    return SnapshotInfo(
        id=snapshot.id, vm_id=snapshot.cube_id, name=snapshot.name, state=state,
        provider_state=snapshot.status, size_bytes=snapshot.size_bytes,
        completed_at=snapshot.completed_at, created_at=snapshot.created_at,
    )


def domain_binding(domain: Domain) -> DomainBinding:
    cname = next((r for r in domain.records if r.type.upper() == "CNAME"), None)
    record = DnsRecord(type="CNAME", name=cname.host if cname else domain.domain,
                       value=cname.value if cname else KROVA_DNS_TARGET)
    return DomainBinding(
        id=domain.id, vm_id=domain.cube_id, domain=domain.domain, port=domain.port,
        active=domain.status == "active", provider_state=domain.status, dns_record=record,
    )


def webhook_endpoint(hook: Webhook, secret: str | None = None) -> WebhookEndpoint:
    return WebhookEndpoint(id=hook.id, url=hook.url, events=tuple(hook.events),
                           enabled=hook.enabled, secret=secret)


def _rate(value: float) -> str:
    """``0.00005``, not ``5e-05``."""
    return f"{value:.8f}".rstrip("0").rstrip(".")


def catalogue_of(images: list[Image], regions: list[Region], pricing: Pricing | None) -> Catalogue:
    """Krova's public listings as the neutral catalogue: images by id, regions by slug
    (what ``spec.region`` takes), no plans (Cubes are sized by ``spec.resources``), and the
    per-resource prices as the note."""
    note = "krova sizes Cubes by spec.resources {vcpu, ramGb, diskGb}; there are no plans"
    if pricing is not None:
        rates = pricing.rates
        note += (f"; {pricing.currency} per hour: {_rate(rates.vcpu_per_hour)} per vCPU, "
                 f"{_rate(rates.ram_gb_per_hour)} per GB RAM, {_rate(rates.disk_gb_per_hour)} per GB disk")
        if pricing.tiers:
            note += "; tiers: " + ", ".join(
                f"{t.label} {t.min_vcpus}{'-' + str(t.max_vcpus) if t.max_vcpus else '+'} vCPU x{t.multiplier:g}"
                for t in pricing.tiers)
    return Catalogue(
        images=tuple(CatalogueEntry(i.id, i.description or i.name or None) for i in images),
        regions=tuple(CatalogueEntry(r.slug, r.name or None) for r in regions),
        plans=None,
        note=note,
    )
