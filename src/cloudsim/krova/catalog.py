"""Krova's public catalogue: regions, images, pricing, and the cost formula.

The numbers are the seed's.  Each region has one simulated server; its public IPv4 is
the shared host gateway every Cube on it reports as ``publicIpv4`` (documentation range
203.0.113.0/24, so nothing real is ever addressed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Region:
    id: str
    slug: str
    name: str
    server_domain: str
    gateway_ipv4: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "slug": self.slug}


@dataclass(frozen=True)
class Image:
    id: str
    name: str
    version: str
    description: str
    default_user: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "defaultUser": self.default_user,
        }


REGIONS: tuple[Region, ...] = (
    Region("rgn_7c1e2a9f4b", "eu-nuremberg", "Germany (Nuremberg)",
           "sv1.eu-nuremberg.krova.cloud", "203.0.113.10"),
    Region("rgn_3d8b5f0c21", "us-east", "United States (Ashburn)",
           "sv1.us-east.krova.cloud", "203.0.113.20"),
    Region("rgn_9a4c6e1d77", "ap-singapore", "Singapore",
           "sv1.ap-singapore.krova.cloud", "203.0.113.30"),
)

IMAGES: tuple[Image, ...] = (
    Image("ubuntu-24.04", "Ubuntu 24.04 LTS", "24.04", "Ubuntu 24.04 LTS (Noble Numbat)", "ubuntu"),
    Image("ubuntu-22.04", "Ubuntu 22.04 LTS", "22.04", "Ubuntu 22.04 LTS (Jammy Jellyfish)", "ubuntu"),
    Image("debian-12", "Debian 12", "12", "Debian 12 (Bookworm)", "debian"),
)

REGIONS_BY_SLUG = {r.slug: r for r in REGIONS}
IMAGES_BY_ID = {i.id: i for i in IMAGES}

RATES = {"vcpuPerHour": 0.001, "ramGbPerHour": 0.0025, "diskGbPerHour": 0.00005}

TIERS: tuple[dict[str, Any], ...] = (
    {"minVcpus": 1, "maxVcpus": 2, "multiplier": 1.00, "label": "Standard"},
    {"minVcpus": 3, "maxVcpus": 4, "multiplier": 0.95, "label": "Plus"},
    {"minVcpus": 5, "maxVcpus": 8, "multiplier": 0.85, "label": "Pro"},
    {"minVcpus": 9, "maxVcpus": None, "multiplier": 0.80, "label": "Enterprise"},
)

PRICING: dict[str, Any] = {
    "currency": "USD",
    "rates": RATES,
    "tiers": list(TIERS),
    "note": (
        "Running Cubes pay vCPU + RAM + disk per hour; sleeping Cubes pay only "
        "diskGbPerHour × diskLimitGb × tierMultiplier per hour. RAM and disk are sold 1:1 "
        "with host resources — no overselling."
    ),
}


def tier_multiplier(vcpu: int) -> float:
    for tier in TIERS:
        if vcpu >= tier["minVcpus"] and (tier["maxVcpus"] is None or vcpu <= tier["maxVcpus"]):
            return float(tier["multiplier"])
    return 1.0


def cost_per_hour(vcpu: int, ram_gb: float, disk_gb: float, *, compute: bool) -> float:
    """Hourly price: compute + disk while the Cube holds compute, disk only otherwise.

    Rounded to 6 decimals so float noise (0.013500000000000002) never reaches clients.
    """
    disk = disk_gb * RATES["diskGbPerHour"]
    total = disk
    if compute:
        total += vcpu * RATES["vcpuPerHour"] + ram_gb * RATES["ramGbPerHour"]
    return round(total * tier_multiplier(vcpu), 6)
