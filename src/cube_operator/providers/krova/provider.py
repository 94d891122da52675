"""Krova behind the :class:`~..base.Provider` protocol."""

from __future__ import annotations

import hashlib
import time

from ..base import (
    Capability,
    Catalogue,
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
    not_offered,
)
from ..errors import Invalid, NotFound, SpecRejected, Transient
from .client import KrovaClient
from .mapping import (
    catalogue_of,
    domain_binding,
    observed_vm,
    port_forward,
    snapshot_info,
    tcp_exposure,
    webhook_endpoint,
)
from .models import CreateCubeRequest, Image, Region

__all__ = ["KROVA_CAPABILITIES", "KrovaProvider", "vm_name"]

#: Longest Cube name Krova accepts; longer Kubernetes names get a stable hashed suffix.
NAME_MAX = 64
#: How long the image and region lists a create is checked against are kept.
_OFFERED_TTL = 600.0
#: A spec naming something the cached lists lack reads them again, at most this often.
_RECHECK_AFTER = 30.0

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

    def __init__(self, client: KrovaClient) -> None:
        super().__init__(client)
        self._offered: tuple[list[Image], list[Region]] | None = None
        self._offered_at = 0.0

    # -- catalogue (public, unauthenticated reads: no rate budget) ------------------------

    async def offered(self, *, fresh: bool = False) -> tuple[list[Image], list[Region]]:
        """The images and regions Krova lists, kept for a few minutes."""
        if fresh or self._offered is None or time.monotonic() - self._offered_at > _OFFERED_TTL:
            self._offered = (await self.client.list_images(), await self.client.list_regions())
            self._offered_at = time.monotonic()
        return self._offered

    async def catalogue(self) -> Catalogue:
        images, regions = await self.offered(fresh=True)
        return catalogue_of(images, regions, await self.client.get_pricing())

    async def check_offered(self, spec: VMSpec) -> None:
        """SpecRejected naming the choices when Krova does not list the image or region
        (instead of its ``see /images``). An unreadable listing leaves it to Krova."""
        def missing(images: list[Image], regions: list[Region]) -> list[str]:
            out = []
            if images and spec.image not in {i.id for i in images}:
                out.append(not_offered("spec.image", "image", spec.image, self.name, [i.id for i in images]))
            if regions and spec.region and spec.region not in {r.slug for r in regions}:
                out.append(not_offered("spec.region", "region", spec.region, self.name, [r.slug for r in regions]))
            return out

        try:
            problems = missing(*await self.offered())
            if problems and time.monotonic() - self._offered_at > _RECHECK_AFTER:
                problems = missing(*await self.offered(fresh=True))  # a new image may have appeared
        except (Transient, Invalid, NotFound):  # no listing to check against: the provider decides
            return
        if problems:
            raise SpecRejected("; ".join(problems), provider=self.name)
    sizing_fields = frozenset({"resources"})

    # -- VMs ------------------------------------------------------------------------

    def validate_spec(self, spec: VMSpec) -> list[str]:
        problems = []
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
        await self.check_offered(spec)
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
