"""Krova behind the :class:`~..base.Provider` protocol."""

from __future__ import annotations

import hashlib

from ..base import (
    Capability,
    CreateAttempt,
    DomainBinding,
    ObservedVM,
    PortForward,
    ProviderBase,
    SnapshotInfo,
    TcpExposure,
    VMSpec,
    VMState,
    WebhookEndpoint,
)
from ..errors import Transient
from .client import KrovaClient
from .mapping import (
    domain_binding,
    observed_vm,
    port_forward,
    snapshot_info,
    tcp_exposure,
    webhook_endpoint,
)
from .models import CreateCubeRequest

__all__ = ["KROVA_CAPABILITIES", "KrovaProvider", "vm_name"]

#: Longest Cube name Krova accepts; longer Kubernetes names get a stable hashed suffix.
NAME_MAX = 64

KROVA_CAPABILITIES = frozenset({
    Capability.POWER, Capability.SSH_PORT, Capability.SERVER_DOMAIN, Capability.SNAPSHOTS,
    Capability.RESTORE, Capability.TCP_EXPOSURE, Capability.DOMAINS, Capability.WEBHOOKS,
    Capability.IDEMPOTENT_CREATE, Capability.USER_DATA, Capability.SNAPSHOT_DELETE,
})


def vm_name(object_name: str, owner_uid: str = "") -> str:
    """Krova shows the Kubernetes name as it is (users find their Cube by name in the
    dashboard); crash safety comes from the idempotency key, not the name. Names over
    64 characters are cut and get a stable hash suffix."""
    if len(object_name) <= NAME_MAX:
        return object_name
    digest = hashlib.sha256(object_name.encode()).hexdigest()[:8]
    return f"{object_name[: NAME_MAX - 9]}-{digest}"


class KrovaProvider(ProviderBase):
    """One Krova space. Every facet is present: Krova has them all."""

    client: KrovaClient
    name = "krova"
    capabilities = KROVA_CAPABILITIES

    # -- VMs ------------------------------------------------------------------------

    def validate_spec(self, spec: VMSpec) -> list[str]:
        problems = []
        if spec.plan is not None:
            problems.append("spec.plan: krova sizes Cubes by spec.resources {vcpu, ramGb, diskGb}, "
                            "not by plan; remove spec.plan")
        if spec.resources is None:
            problems.append("spec.resources {vcpu, ramGb, diskGb} is required for provider krova")
        if not spec.ssh_public_key:
            problems.append("spec.sshPublicKey or spec.sshPublicKeySecretRef is required for "
                            "provider krova")
        if spec.root_password:
            problems.append("spec.rootPasswordSecretRef: krova takes no root password; use an SSH key")
        return problems

    def vm_name(self, object_name: str, owner_uid: str) -> str:
        return vm_name(object_name, owner_uid)

    async def check_credentials(self) -> None:
        await self.client.check_credentials()

    async def list_vms(self) -> list[ObservedVM]:
        return [observed_vm(c) for c in await self.client.list_cubes()]

    async def get_vm(self, vm_id: str) -> ObservedVM:
        return observed_vm(await self.client.get_cube(vm_id))

    async def find_vms(self, name: str, attempt: CreateAttempt) -> list[ObservedVM]:
        # Krova keeps no tags: the name is the only handle besides the idempotency key.
        # A same-named Cube from another namespace also matches, and then the caller
        # sees two and refuses to guess.
        return [vm for vm in await self.list_vms()
                if vm.name == name and vm.state is not VMState.DELETED]

    async def create_vm(self, spec: VMSpec, attempt: CreateAttempt) -> ObservedVM:
        if spec.resources is None or not spec.ssh_public_key:
            raise ValueError("validate_spec first")  # never reached through the controllers
        request = CreateCubeRequest.model_validate({
            "name": spec.name,
            "image": spec.image,
            "region": spec.region,
            "resources": {"vcpu": spec.resources.vcpu, "ramGb": spec.resources.ram_gb,
                          "diskGb": spec.resources.disk_gb},
            "sshPublicKey": spec.ssh_public_key,
            "userData": spec.user_data,
        })
        cube = await self.client.create_cube(request, idempotency_key=attempt.idempotency_key)
        return observed_vm(cube, region=spec.region)

    async def delete_vm(self, vm_id: str) -> None:
        await self.client.delete_cube(vm_id)

    # -- power and SSH ----------------------------------------------------------------

    async def set_power(self, vm_id: str, running: bool) -> None:
        if running:
            await self.client.wake_cube(vm_id)
        else:
            await self.client.sleep_cube(vm_id)

    async def ssh_forward(self, vm_id: str) -> PortForward | None:
        ssh = next((m for m in await self.client.list_tcp_mappings(vm_id) if m.is_ssh), None)
        return port_forward(ssh) if ssh else None

    async def set_ssh_port(self, vm_id: str, vm_port: int) -> None:
        await self.client.set_ssh_port(vm_id, vm_port)

    # -- snapshots and restore --------------------------------------------------------

    async def list_snapshots(self, vm_id: str) -> list[SnapshotInfo]:
        return [snapshot_info(s) for s in await self.client.list_snapshots(vm_id)]

    async def create_snapshot(self, vm_id: str, name: str, attempt: CreateAttempt) -> SnapshotInfo:
        snapshot = await self.client.create_snapshot(
            vm_id, name=name, idempotency_key=attempt.idempotency_key)
        return snapshot_info(snapshot)

    async def delete_snapshot(self, vm_id: str, snapshot_id: str) -> None:
        await self.client.delete_snapshot(vm_id, snapshot_id)

    async def restore_snapshot(self, vm_id: str, snapshot_id: str) -> None:
        await self.client.restore_snapshot(vm_id, snapshot_id)

    # -- TCP exposure -----------------------------------------------------------------

    async def list_exposures(self, vm_id: str) -> list[TcpExposure]:
        return [tcp_exposure(m) for m in await self.client.list_tcp_mappings(vm_id) if not m.is_ssh]

    async def expose(self, vm_id: str, *, vm_port: int, label: str | None,
                     allowed_cidrs: list[str], attempt: CreateAttempt) -> TcpExposure:
        mapping = await self.client.create_tcp_mapping(
            vm_id, cube_port=vm_port, label=label, whitelisted_ips=list(allowed_cidrs),
            idempotency_key=attempt.idempotency_key)
        return tcp_exposure(mapping)

    async def unexpose(self, vm_id: str, exposure_id: str) -> None:
        await self.client.delete_tcp_mapping(vm_id, exposure_id)

    # -- domains ----------------------------------------------------------------------

    async def list_domains(self, vm_id: str) -> list[DomainBinding]:
        return [domain_binding(d) for d in await self.client.list_domains(vm_id)]

    async def add_domain(self, vm_id: str, *, domain: str, port: int,
                         attempt: CreateAttempt) -> DomainBinding:
        added = await self.client.add_domain(vm_id, domain=domain, port=port,
                                             idempotency_key=attempt.idempotency_key)
        return domain_binding(added)

    async def delete_domain(self, vm_id: str, domain_id: str) -> None:
        await self.client.delete_domain(vm_id, domain_id)

    # -- webhook subscriptions --------------------------------------------------------

    async def list_webhooks(self) -> list[WebhookEndpoint]:
        return [webhook_endpoint(w) for w in await self.client.list_webhooks()]

    async def get_webhook(self, webhook_id: str) -> WebhookEndpoint:
        return webhook_endpoint(await self.client.get_webhook(webhook_id))

    async def create_webhook(self, *, url: str, events: list[str]) -> WebhookEndpoint:
        created = await self.client.create_webhook(url=url, events=events)
        secret = created.secret.get_secret_value()
        if not secret:
            raise Transient("webhook created without a signing secret", provider=self.name)
        return webhook_endpoint(created, secret)

    async def delete_webhook(self, webhook_id: str) -> None:
        await self.client.delete_webhook(webhook_id)
