"""Voltage Park's in-memory state and the VM lifecycle (see the simulator's docstring).

Transitions are evaluated lazily: a VM in a transitional status carries the simulated
time at which it moves on, and :meth:`VoltageParkEngine.tick` (run before every API
and admin request) applies every transition that is due.  No background tasks.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from ..common.clock import SimClock, utc_now_iso
from ..common.errors import ConfigError
from .catalog import (
    GPU_MODEL,
    HOSTNODES,
    LOCATIONS,
    NODE_GPUS,
    NODE_RAM_GB,
    NODE_STORAGE_GB,
    NODE_VCPUS,
    PER_GB_RAM_HR,
    PER_GB_STORAGE_HR,
    PER_GPU_HR,
    PER_VCPU_HR,
    PORTS_PER_NODE,
    PRESETS,
    HostNodeSpec,
    LocationSpec,
    Preset,
    money,
)
from .validation import HttpError

PROVISIONING = "Provisioning"
RUNNING = "Running"
STOPPING = "Stopping"
STOPPED = "Stopped"
STOPPED_DISASSOCIATED = "StoppedDisassociated"
STARTING = "Starting"
RELOCATING = "Relocating"
OUTBID = "Outbid"
TERMINATING = "Terminating"
TERMINATED = "Terminated"

STATUSES = (PROVISIONING, RUNNING, STOPPING, STOPPED, STOPPED_DISASSOCIATED, STARTING,
            RELOCATING, OUTBID, TERMINATING, TERMINATED)
# Statuses in which a VM holds GPUs/compute on its host node (and bills them).
HOLDING = frozenset({PROVISIONING, RUNNING, STOPPING, STOPPED, STARTING, RELOCATING})
POWER_STATUSES = ("started", "stopped", "stopped_disassociated")


@dataclass
class VoltageParkSettings:
    """Provider knobs, changeable at runtime through ``PUT /_sim/config``."""

    provision_delay: float = 30.0
    start_delay: float = 10.0
    stop_delay: float = 10.0
    relocate_delay: float = 20.0
    terminate_delay: float = 10.0
    outbid_after: float = 0.0  # Running this long -> Outbid; 0 = never
    relocate_on_start: bool = False  # starting a disassociated VM always relocates

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    def checked(self, changes: dict[str, Any]) -> dict[str, Any]:
        updates: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in self.names():
                continue
            if isinstance(getattr(self, key), bool):
                if not isinstance(value, bool):
                    raise ConfigError(f"{key} must be a boolean")
            elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{key} must be a non-negative number")
            else:
                value = float(value)
            updates[key] = value
        return updates


@dataclass
class HostNode:
    spec: HostNodeSpec
    gpu_capacity: int = NODE_GPUS  # GPUs this node can hand out in total
    gpus_used: int = 0
    vcpus_used: int = 0
    ram_used: int = 0
    storage_used: int = 0
    ports_used: set[int] = field(default_factory=set)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def free_gpus(self) -> int:
        return max(0, self.gpu_capacity - self.gpus_used)

    def fits(self, preset: Preset) -> bool:
        return self.free_gpus >= preset.gpus and len(self.ports_used) < PORTS_PER_NODE

    def available_ports(self) -> list[int]:
        first = self.spec.first_port
        return [p for p in range(first, first + PORTS_PER_NODE) if p not in self.ports_used]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "location_id": self.spec.location_id,
            "available_resources": {
                "gpus": {GPU_MODEL: {"count": self.free_gpus}},
                "ram_gb": max(0, NODE_RAM_GB - self.ram_used),
                "storage_gb": max(0, NODE_STORAGE_GB - self.storage_used),
                "vcpu_count": max(0, NODE_VCPUS - self.vcpus_used),
            },
            "pricing": {
                "per_gpu_hr": {GPU_MODEL: money(PER_GPU_HR)},
                "per_vcpu_hr": money(PER_VCPU_HR),
                "per_gb_ram_hr": money(PER_GB_RAM_HR),
                "per_gb_storage_hr": money(PER_GB_STORAGE_HR),
            },
            "available_ports": self.available_ports(),
        }


@dataclass
class SshKey:
    id: str
    org: str
    name: str
    content: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "content": self.content}


@dataclass
class Vm:
    id: str
    seq: int
    org: str
    name: str
    preset: Preset
    hostnode_id: str
    status: str
    tags: list[str]
    password: str | None
    ssh_keys: list[str]
    cloud_init: dict[str, Any] | None
    timestamp_creation: str = field(default_factory=utc_now_iso)
    allocated: bool = False  # holds GPUs etc. on its host node
    port: int | None = None  # external port forwarded to 22
    booted: bool = False  # has been Running at least once with this allocation
    next_status: str | None = None
    due: float | None = None  # simulated time of next_status
    running_since: float | None = None

    def pricing(self) -> dict[str, str]:
        p = self.preset
        gpus = PER_GPU_HR * p.gpus
        vcpus = PER_VCPU_HR * p.vcpu_count
        ram = PER_GB_RAM_HR * p.ram_gb
        storage = PER_GB_STORAGE_HR * p.storage_gb
        return {
            "gpus_per_hr": money(gpus), "vcpus_per_hr": money(vcpus),
            "ram_per_hr": money(ram), "storage_per_hr": money(storage),
            "total_associated_per_hr": money(gpus + vcpus + ram + storage),
            "total_disassociated_per_hr": money(storage),
        }

    def hourly_rate(self) -> Decimal:
        """What this VM costs per hour now: all resources while it holds them, storage
        only while disassociated (or outbid), nothing once terminating."""
        if self.status in (TERMINATING, TERMINATED):
            return Decimal(0)
        rates = self.pricing()
        key = "total_associated_per_hr" if self.allocated else "total_disassociated_per_hr"
        return Decimal(rates[key])

    def to_json(self, public_ip: str | None) -> dict[str, Any]:
        shown = self.allocated and self.booted and self.port is not None
        return {
            "id": self.id,
            "hostnode_id": self.hostnode_id,
            "type": "ondem",
            "status": self.status,
            "name": self.name,
            "resources": self.preset.resources(),
            "operating_system": self.preset.operating_system,
            "pricing": self.pricing(),
            "public_ip": public_ip if shown else None,
            "port_forwards": [{"internal_port": 22, "external_port": self.port}] if shown
            else [],
            "timestamp_creation": self.timestamp_creation,
            "tags": list(self.tags),
        }


class VoltageParkEngine:
    def __init__(self, clock: SimClock, settings: VoltageParkSettings | None = None) -> None:
        self.clock = clock
        self.settings = settings or VoltageParkSettings()
        self.locations: dict[str, LocationSpec] = {loc.id: loc for loc in LOCATIONS}
        self.hostnodes: dict[str, HostNode] = {n.id: HostNode(n) for n in HOSTNODES}
        self.vms: dict[str, Vm] = {}
        self.ssh_keys: dict[str, SshKey] = {}
        self._seq = 0

    def configure(self, changes: dict[str, Any]) -> None:
        for key, value in self.settings.checked(changes).items():
            setattr(self.settings, key, value)

    # ---- capacity ----------------------------------------------------------------------

    def location_nodes(self, location_id: str) -> list[HostNode]:
        return [self.hostnodes[n] for n in self.locations[location_id].hostnodes]

    def locations_with_availability(self, preset: Preset) -> list[str]:
        return [loc for loc in self.locations
                if any(n.fits(preset) for n in self.location_nodes(loc))]

    def location_gpus(self, location_id: str) -> dict[str, int]:
        nodes = self.location_nodes(location_id)
        return {"gpus": sum(n.free_gpus for n in nodes),
                "capacity": sum(n.gpu_capacity for n in nodes),
                "used": sum(n.gpus_used for n in nodes)}

    def set_location_capacity(self, location_id: str, gpus: int) -> None:
        """Make ``gpus`` GPUs free in the location (on top of those in use), filling its
        host nodes in order, up to 8 free per node, the rest on the last node."""
        nodes = self.location_nodes(location_id)
        left = gpus
        for i, node in enumerate(nodes):
            free = left if i == len(nodes) - 1 else min(left, NODE_GPUS)
            node.gpu_capacity = node.gpus_used + free
            left -= free

    def _allocate(self, vm: Vm, node: HostNode) -> None:
        p = vm.preset
        node.gpus_used += p.gpus
        node.vcpus_used += p.vcpu_count
        node.ram_used += p.ram_gb
        node.storage_used += p.storage_gb
        port = node.available_ports()[0]
        node.ports_used.add(port)
        vm.hostnode_id, vm.port, vm.allocated, vm.booted = node.id, port, True, False

    def _release(self, vm: Vm) -> None:
        if not vm.allocated:
            return
        node = self.hostnodes[vm.hostnode_id]
        p = vm.preset
        node.gpus_used -= p.gpus
        node.vcpus_used -= p.vcpu_count
        node.ram_used -= p.ram_gb
        node.storage_used -= p.storage_gb
        if vm.port is not None:
            node.ports_used.discard(vm.port)
        vm.allocated, vm.port, vm.booted = False, None, False

    def _pick_node(self, preset: Preset, prefer: str | None = None) -> HostNode | None:
        if prefer is not None and self.hostnodes[prefer].fits(preset):
            return self.hostnodes[prefer]
        for loc in self.locations:
            for node in self.location_nodes(loc):
                if node.fits(preset):
                    return node
        return None

    # ---- lifecycle ---------------------------------------------------------------------

    def _schedule(self, vm: Vm, status: str, then: str, delay: float) -> None:
        vm.status, vm.next_status, vm.due = status, then, self.clock.now() + delay
        vm.running_since = None

    def _enter(self, vm: Vm, status: str, at: float) -> None:
        vm.next_status = vm.due = None
        vm.status = status
        vm.running_since = None
        if status == RUNNING:
            vm.booted = vm.allocated
            vm.running_since = at
        elif status in (STOPPED_DISASSOCIATED, OUTBID, TERMINATED):
            self._release(vm)

    def tick(self) -> None:
        now = self.clock.now()
        outbid = self.settings.outbid_after
        for vm in list(self.vms.values()):
            for _ in range(4):  # a due transition may schedule another one
                if vm.due is not None and vm.next_status is not None and vm.due <= now:
                    self._enter(vm, vm.next_status, vm.due)
                elif (outbid > 0 and vm.status == RUNNING and vm.running_since is not None
                      and vm.running_since + outbid <= now):
                    self._enter(vm, OUTBID, vm.running_since + outbid)
                else:
                    break

    def create_vm(self, org: str, *, preset: Preset, name: str, password: str | None,
                  ssh_keys: list[str], cloud_init: dict[str, Any] | None,
                  tags: list[str]) -> Vm:
        node = self._pick_node(preset)
        if node is None:
            raise HttpError(400, "No capacity available for the requested instant deploy "
                                 "configuration")
        self._seq += 1
        vm = Vm(id=str(uuid.uuid4()), seq=self._seq, org=org, name=name, preset=preset,
                hostnode_id=node.id, status=PROVISIONING, tags=tags, password=password,
                ssh_keys=ssh_keys, cloud_init=cloud_init)
        self._allocate(vm, node)
        self._schedule(vm, PROVISIONING, RUNNING, self.settings.provision_delay)
        self.vms[vm.id] = vm
        return vm

    def vm(self, org: str, vm_id: str) -> Vm:
        vm = self.vms.get(vm_id)
        if vm is None or vm.org != org or vm.status == TERMINATED:
            raise HttpError(404, "Virtual machine not found")
        return vm

    def owned(self, org: str) -> list[Vm]:
        return sorted((v for v in self.vms.values()
                       if v.org == org and v.status != TERMINATED), key=lambda v: v.seq)

    def set_power(self, vm: Vm, wanted: str) -> None:
        s = self.settings
        if vm.status == TERMINATING:
            raise HttpError(400, "Virtual machine is being terminated")
        if wanted == "started":
            if vm.status in (RUNNING, STARTING, RELOCATING, PROVISIONING):
                return
            if vm.status == STOPPED:
                self._schedule(vm, STARTING, RUNNING, s.start_delay)
                return
            if vm.status in (STOPPED_DISASSOCIATED, OUTBID):
                prefer = None if s.relocate_on_start else vm.hostnode_id
                node = self._pick_node(vm.preset, prefer)
                if node is None:
                    raise HttpError(400, "No capacity available to start this virtual "
                                         "machine")
                moved = node.id != vm.hostnode_id
                self._allocate(vm, node)
                if moved:
                    self._schedule(vm, RELOCATING, RUNNING, s.relocate_delay)
                else:
                    self._schedule(vm, STARTING, RUNNING, s.start_delay)
                return
            raise HttpError(400, f"Cannot start a virtual machine while it is {vm.status}")
        target = STOPPED if wanted == "stopped" else STOPPED_DISASSOCIATED
        if vm.status in (STOPPED_DISASSOCIATED, OUTBID) or vm.status == target:
            return
        if vm.status == STOPPED:  # already off: disassociate at once
            self._enter(vm, target, self.clock.now())
            return
        if vm.status == STOPPING:
            vm.next_status = target
            return
        if vm.status == RUNNING:
            self._schedule(vm, STOPPING, target, s.stop_delay)
            return
        raise HttpError(400, f"Cannot stop a virtual machine while it is {vm.status}")

    def terminate(self, vm: Vm) -> None:
        if vm.status == TERMINATING:
            return
        self._schedule(vm, TERMINATING, TERMINATED, self.settings.terminate_delay)

    def force_status(self, vm: Vm, status: str) -> None:
        """Admin: put ``vm`` in ``status`` now, as the provider would out of band."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        now = self.clock.now()
        if status in HOLDING and not vm.allocated:
            node = self._pick_node(vm.preset, vm.hostnode_id) or self.hostnodes[vm.hostnode_id]
            self._allocate(vm, node)  # forced: may oversubscribe the node
        if status == TERMINATING:
            self._schedule(vm, TERMINATING, TERMINATED, self.settings.terminate_delay)
            return
        self._enter(vm, status, now)

    def hourly_rate(self, org: str) -> Decimal:
        return sum((vm.hourly_rate() for vm in self.owned(org)), Decimal(0))

    # ---- SSH keys ------------------------------------------------------------------------

    def org_keys(self, org: str) -> list[SshKey]:
        return [k for k in self.ssh_keys.values() if k.org == org]

    def add_key(self, org: str, name: str, content: str) -> SshKey:
        if any(k.name == name for k in self.org_keys(org)):
            raise HttpError(400, f"An SSH key named {name!r} already exists")
        key = SshKey(str(uuid.uuid4()), org, name, content)
        self.ssh_keys[key.id] = key
        return key

    def remove_key(self, org: str, key_id: str) -> None:
        key = self.ssh_keys.get(key_id)
        if key is None or key.org != org:
            raise HttpError(404, "SSH key not found")
        del self.ssh_keys[key_id]

    def presets(self) -> tuple[Preset, ...]:
        return PRESETS
