"""Voltage Park behind the :class:`~..base.Provider` protocol: GPU VMs from instant-deploy
presets.

- Sizing: ``spec.plan`` is a preset id, or ``spec.resources`` + ``spec.gpus`` pick the
  cheapest preset with exactly those GPUs and at least those resources, available in
  ``spec.region`` (a location id). A preset that exists but is sold out is NoCapacity
  (a wait with backoff); none that matches is InvalidSpec. ``image`` must be the preset's
  operating system.
- ``userData`` (``#cloud-config`` YAML) becomes the structured ``cloud_init`` (packages,
  write_files, runcmd only) and is checked with ``POST /validate/cloudinit`` first.
- No idempotency key: the owner UID is a tag (``cube-operator-uid:<uid>``), and an earlier
  create attempt is found by it.
- ``powerState: Stopped`` stops, or stops disassociated (storage billed only) per
  ``spec.voltagepark.stopMode``. Outbid is Ready=False, reason Outbid.
"""

from __future__ import annotations

import time
from typing import Any

import yaml

from ..base import (
    Capability,
    Catalogue,
    CatalogueEntry,
    CreateAttempt,
    Gpus,
    ObservedVM,
    PortForward,
    ProviderBase,
    VMSpec,
    VMState,
    money_text,
    not_offered,
    size_text,
)
from ..errors import Invalid, NoCapacity, NotFound, SpecRejected, Transient
from .client import VoltageParkClient
from .models import Location, Preset, VirtualMachine

__all__ = ["OWNER_TAG", "VOLTAGEPARK_CAPABILITIES", "VoltageParkProvider", "catalogue_of", "choose_preset",
           "cloud_init_of"]

VOLTAGEPARK_CAPABILITIES = frozenset({Capability.POWER, Capability.USER_DATA})
OWNER_TAG = "cube-operator-uid:"
CLOUD_INIT_KEYS = ("packages", "write_files", "runcmd")
_STATES = {
    "provisioning": VMState.PROVISIONING, "starting": VMState.PROVISIONING, "relocating": VMState.PROVISIONING,
    "running": VMState.RUNNING, "stopping": VMState.STOPPING, "stopped": VMState.STOPPED,
    "stoppeddisassociated": VMState.STOPPED, "outbid": VMState.ERROR, "terminating": VMState.DELETING,
    "terminated": VMState.DELETED,
}
_STORAGE_ONLY = ("stoppeddisassociated", "outbid")
_LOCATIONS_TTL = 600.0


def _word(status: str) -> str:
    return status.replace(" ", "").replace("_", "").lower()


def cloud_init_of(user_data: str) -> dict[str, Any]:
    """``#cloud-config`` YAML as Voltage Park's structured cloud_init; SpecRejected naming
    the offending key otherwise (offline: no call)."""
    try:
        parsed = yaml.safe_load(user_data)
    except yaml.YAMLError as error:
        raise SpecRejected(f"spec.userData is not YAML: {str(error).splitlines()[0]}", provider="voltagepark") from None
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise SpecRejected("spec.userData must be #cloud-config YAML (a mapping)", provider="voltagepark")
    extra = sorted(set(parsed) - set(CLOUD_INIT_KEYS))
    if extra:
        raise SpecRejected(f"spec.userData: voltagepark takes only {', '.join(CLOUD_INIT_KEYS)} in cloud-init, "
                           f"not {', '.join(extra)}", provider="voltagepark")
    return dict(parsed)


def gpus_of(preset_or_vm: Preset | VirtualMachine) -> tuple[Gpus, ...]:
    return tuple(Gpus(model, g.count) for model, g in preset_or_vm.resources.gpus.items() if g.count)


def gpu_text(preset_or_vm: Preset | VirtualMachine) -> str:
    return " + ".join(f"{g.count}x {g.model}" for g in gpus_of(preset_or_vm)) or "no GPU"


def preset_entry(preset: Preset, places: dict[str, str] | None = None) -> CatalogueEntry:
    where = [(places or {}).get(loc, loc) for loc in preset.location_ids_with_availability]
    r = preset.resources
    size = size_text(r.vcpu_count, r.ram_gb, r.storage_gb, preset.operating_system or None,
                     money_text(preset.hourly), f"available in {'; '.join(where)}" if where else "sold out now")
    return CatalogueEntry(preset.id, f"{gpu_text(preset)}, {size}")


def catalogue_of(presets: list[Preset], locations: list[Location]) -> Catalogue:
    """Voltage Park's instant-deploy presets (what ``spec.plan`` takes), their operating
    systems (``spec.image``) and the locations (``spec.region``, a location id)."""
    places = {loc.id: loc.place or loc.id for loc in locations}
    systems = sorted({p.operating_system for p in presets if p.operating_system})
    return Catalogue(
        images=tuple(CatalogueEntry(os, f"{sum(p.operating_system == os for p in presets)} preset(s)")
                     for os in systems),
        regions=tuple(CatalogueEntry(loc.id, loc.place or None) for loc in locations),
        plans=tuple(preset_entry(p, places) for p in sorted(presets, key=lambda p: (p.hourly, p.id))),
        note="spec.plan takes a preset id; or give spec.gpus with spec.resources and the cheapest matching "
             "preset is chosen. spec.image must be the preset's operating system",
    )


def choose_preset(presets: list[Preset], available: set[str], spec: VMSpec) -> Preset:
    """The preset for ``spec``; ``available`` holds the ids that can be deployed now."""
    if spec.plan:
        found = next((p for p in presets if p.id == spec.plan), None)
        if found is None:
            raise SpecRejected(not_offered("spec.plan", "preset", spec.plan, "voltagepark",
                                           [f"{p.id} ({gpu_text(p)})" for p in presets]), provider="voltagepark")
        matching = [found]
    else:
        if spec.gpus is None or spec.resources is None:
            raise SpecRejected("spec.resources and spec.gpus (or spec.plan, a preset id) are required for "
                               "provider voltagepark", provider="voltagepark")
        want, gpus = spec.resources, spec.gpus
        matching = [p for p in presets if gpus_of(p) == (gpus,) and p.resources.vcpu_count >= want.vcpu
                    and p.resources.ram_gb >= want.ram_gb and p.resources.storage_gb >= want.disk_gb]
        if not matching:
            offered = sorted({f"{g.count}x {g.model}" for p in presets for g in gpus_of(p)})
            raise SpecRejected(f"spec.gpus/spec.resources: no voltagepark preset has {gpus.count}x {gpus.model} with "
                               f"at least {want.vcpu} vCPU, {want.ram_gb:g} GB RAM, {want.disk_gb:g} GB disk "
                               f"(presets offer {', '.join(offered)})", provider="voltagepark")
    systems = sorted({p.operating_system for p in matching})
    matching = [p for p in matching if p.operating_system == spec.image]
    if not matching:
        raise SpecRejected(not_offered("spec.image", "image", spec.image, "voltagepark",
                                       [repr(s) for s in systems], why="is not the operating system of any matching preset at"),
                           provider="voltagepark")
    ready = [p for p in matching if p.id in available
             and (not spec.region or spec.region in p.location_ids_with_availability)]
    if not ready:
        where = f" in location {spec.region}" if spec.region else ""
        raise NoCapacity(f"no preset matching the spec can be deployed{where} now", provider="voltagepark")
    return min(ready, key=lambda p: p.hourly)


class VoltageParkProvider(ProviderBase):
    client: VoltageParkClient
    name = "voltagepark"
    capabilities = VOLTAGEPARK_CAPABILITIES
    sizing_fields = frozenset({"plan", "resources", "gpus"})

    def __init__(self, client: VoltageParkClient, *, stop_mode: str = "Stopped") -> None:
        super().__init__(client)
        self.stop_mode = stop_mode
        self._locations: tuple[float, list[Location]] | None = None

    async def locations(self, *, fresh: bool = False) -> list[Location]:
        """Voltage Park's locations, kept for 10 minutes."""
        if fresh or self._locations is None or time.monotonic() - self._locations[0] > _LOCATIONS_TTL:
            self._locations = (time.monotonic(), await self.client.locations())
        return self._locations[1]

    async def catalogue(self) -> Catalogue:
        return catalogue_of(await self.client.presets(), await self.locations(fresh=True))

    async def check_region(self, presets: list[Preset], region: str | None) -> None:
        """SpecRejected naming the locations when ``region`` is none of Voltage Park's (a
        location merely sold out is NoCapacity later). Locations are read only then."""
        if not region or any(region in p.location_ids_with_availability for p in presets):
            return
        try:
            locations = await self.locations()
        except (Transient, Invalid, NotFound):  # no listing to check against: the provider decides
            return
        if locations and region not in {loc.id for loc in locations}:
            raise SpecRejected(not_offered("spec.region", "location", region, self.name,
                                           [f"{loc.id} ({loc.place})" if loc.place else loc.id for loc in locations]),
                               provider=self.name)


    @staticmethod
    def observe(vm: VirtualMachine) -> ObservedVM:
        word = _word(vm.status)
        price = vm.pricing.total_disassociated_per_hr if word in _STORAGE_ONLY else vm.pricing.total_associated_per_hr
        try:
            cost = float(price) if price is not None else None
        except ValueError:
            cost = None
        forwards = tuple(PortForward(vm_port=p.internal_port, host_port=p.external_port, host=vm.public_ip,
                                     is_ssh=p.internal_port == 22) for p in vm.port_forwards)
        owner = next((t[len(OWNER_TAG):] for t in vm.tags if t.startswith(OWNER_TAG)), None)
        problem = (("Outbid", ("voltagepark outbid the VM: its GPUs went to a higher bid; it bills storage only "
                              "until it is started again")) if word == "outbid" else None)
        return ObservedVM(
            id=vm.id, name=vm.name, state=_STATES.get(word, VMState.UNKNOWN), provider_state=vm.status,
            public_ipv4=vm.public_ip, addresses=(vm.public_ip,) if vm.public_ip else (), port_forwards=forwards,
            cost_per_hour=cost, image=vm.operating_system, gpus=gpus_of(vm), owner_uid=owner, problem=problem,
        )

    def validate_spec(self, spec: VMSpec) -> list[str]:
        problems = []
        if spec.plan is None and (spec.resources is None or spec.gpus is None):
            problems.append("spec.plan (a preset id), or spec.resources with spec.gpus, is required for "
                            "provider voltagepark")
        if not spec.ssh_public_key:
            problems.append("spec.sshPublicKey or spec.sshPublicKeySecretRef is required for provider voltagepark")
        if spec.user_data:
            try:
                cloud_init_of(spec.user_data)
            except SpecRejected as error:
                problems.append(error.message)
        return problems

    def vm_name(self, object_name: str, owner_uid: str) -> str:
        return object_name

    async def check_credentials(self) -> None:
        # Both headers: a key that works for VMs but not the organization API shows now.
        await self.client.list_vms()
        await self.client.organization_ssh_keys()

    async def list_vms(self) -> list[ObservedVM]:
        return [self.observe(vm) for vm in await self.client.list_vms()]

    async def get_vm(self, vm_id: str) -> ObservedVM:
        return self.observe(await self.client.get_vm(vm_id))

    async def find_vms(self, name: str, attempt: CreateAttempt) -> list[ObservedVM]:
        tag = OWNER_TAG + attempt.owner_uid
        return [self.observe(vm) for vm in await self.client.list_vms()
                if tag in vm.tags and _word(vm.status) not in ("terminating", "terminated")]

    async def create_vm(self, spec: VMSpec, attempt: CreateAttempt) -> ObservedVM:
        presets = await self.client.presets()
        await self.check_region(presets, spec.region)
        available = {p.id for p in await self.client.presets(available=True)}
        preset = choose_preset(presets, available, spec)
        body: dict[str, Any] = {
            "config_id": preset.id, "name": spec.name,
            "organization_ssh_keys": {"mode": "none"},
            "ssh_keys": [spec.ssh_public_key] if spec.ssh_public_key else [],
            "tags": [OWNER_TAG + attempt.owner_uid],
        }
        if spec.user_data:
            cloud_init = cloud_init_of(spec.user_data)
            refused = await self.client.validate_cloud_init(cloud_init)
            if refused:
                raise SpecRejected(f"spec.userData: voltagepark refused the cloud-init: {refused}",
                                   provider=self.name)
            body["cloud_init"] = cloud_init
        try:
            vm_id = await self.client.create_instant(body)
        except Invalid as error:
            if "capacity" in error.message.lower() or "available" in error.message.lower():
                raise NoCapacity(error.message, provider=self.name) from None
            raise
        return await self.get_vm(vm_id)

    async def delete_vm(self, vm_id: str) -> None:
        await self.client.delete_vm(vm_id)

    async def set_power(self, vm_id: str, running: bool) -> None:
        status = "started" if running else ("stopped_disassociated" if self.stop_mode == "Disassociated"
                                           else "stopped")
        try:
            await self.client.power(vm_id, status)
        except Invalid as error:
            if "capacity" in error.message.lower():
                raise NoCapacity(error.message, provider=self.name) from None
            raise
