"""The simulated Voltage Park fleet: locations, their host nodes, prices and the
instant-deploy presets.  Ids are fixed UUIDs (uuid5 of a name), so they are the same
in every run."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

_NS = uuid.UUID("5f0c3a4e-1d7b-4c38-9a0e-7a1b0d2c3e4f")

GPU_MODEL = "h100-sxm5-80gb"
PER_GPU_HR = Decimal("3.500000")
PER_VCPU_HR = Decimal("0.000030")
PER_GB_RAM_HR = Decimal("0.000001")
PER_GB_STORAGE_HR = Decimal("0.000001")

NODE_GPUS = 8
NODE_VCPUS = 208
NODE_RAM_GB = 960
NODE_STORAGE_GB = 14000
PORTS_PER_NODE = 100


def fixed_id(name: str) -> str:
    return str(uuid.uuid5(_NS, name))


def money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.000001'))}"


@dataclass(frozen=True)
class LocationSpec:
    id: str
    city: str
    region: str
    country: str
    hostnodes: tuple[str, ...]


@dataclass(frozen=True)
class HostNodeSpec:
    id: str
    location_id: str
    public_ip: str
    first_port: int


@dataclass(frozen=True)
class Preset:
    id: str
    gpus: int
    vcpu_count: int
    ram_gb: int
    storage_gb: int
    operating_system: str

    def compute_rate(self) -> Decimal:
        return (PER_GPU_HR * self.gpus + PER_VCPU_HR * self.vcpu_count
                + PER_GB_RAM_HR * self.ram_gb)

    def storage_rate(self) -> Decimal:
        return PER_GB_STORAGE_HR * self.storage_gb

    def resources(self) -> dict[str, object]:
        return {"gpus": {GPU_MODEL: {"count": self.gpus}}, "vcpu_count": self.vcpu_count,
                "ram_gb": self.ram_gb, "storage_gb": self.storage_gb}


def _locations() -> tuple[tuple[LocationSpec, ...], tuple[HostNodeSpec, ...]]:
    places = [("seattle", "Seattle", "Washington", "United States"),
              ("allen", "Allen", "Texas", "United States")]
    locations: list[LocationSpec] = []
    nodes: list[HostNodeSpec] = []
    for li, (slug, city, region, country) in enumerate(places):
        location_id = fixed_id(f"location:{slug}")
        node_ids = []
        for ni in range(2):
            node_id = fixed_id(f"hostnode:{slug}:{ni}")
            node_ids.append(node_id)
            nodes.append(HostNodeSpec(node_id, location_id, f"147.185.{40 + li}.{10 + ni}",
                                      20000 + 1000 * li + PORTS_PER_NODE * ni))
        locations.append(LocationSpec(location_id, city, region, country, tuple(node_ids)))
    return tuple(locations), tuple(nodes)


LOCATIONS, HOSTNODES = _locations()

PRESETS: tuple[Preset, ...] = (
    Preset(fixed_id("preset:1x"), 1, 4, 16, 40, "Ubuntu 22.04 LTS"),
    Preset(fixed_id("preset:2x"), 2, 52, 240, 1000, "Ubuntu 22.04 LTS"),
    Preset(fixed_id("preset:4x"), 4, 104, 480, 2000, "Ubuntu 22.04 LTS"),
    Preset(fixed_id("preset:8x"), 8, 208, 960, 4000, "Ubuntu 22.04 LTS"),
)
PRESETS_BY_ID = {p.id: p for p in PRESETS}
