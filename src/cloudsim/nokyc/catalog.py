"""NoKYC's public catalogue: plans, regions, images and the webhook event names.

Prices are whole cents per hour (money is rendered with two decimals, so an hourly
price that needs more would round away); the monthly price is 730 hours of it.  Every
address handed out is from the documentation ranges (198.51.100.0/24, 203.0.113.0/24,
2001:db8::/32), so nothing real is ever addressed.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class Plan:
    id: str
    category: str
    cpu: int
    cpu_model: str
    ram_mb: int
    disk_gb: int
    transfer_tb: float
    price_usd_hour: float
    available_in: tuple[str, ...]

    @property
    def price_usd_month(self) -> float:
        return round(self.price_usd_hour * HOURS_PER_MONTH, 2)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "plan",
            "category": self.category,
            "cpu": self.cpu,
            "cpu_model": self.cpu_model,
            "ram_mb": self.ram_mb,
            "disk_gb": self.disk_gb,
            "transfer_tb": self.transfer_tb,
            "price_usd_month": self.price_usd_month,
            "price_usd_hour": self.price_usd_hour,
            "available_in": list(self.available_in),
        }


@dataclass(frozen=True)
class Region:
    id: str
    name: str
    country: str
    pop_id: str
    tor_onion: str | None
    ipv4_network: str  # servers get its hosts after the first (the gateway)
    ipv6_network: str  # a /48; each server gets one routed /64 out of it
    ipv4_pool: int  # initial ipv4_pool_remaining


@dataclass(frozen=True)
class Image:
    id: str
    family: str
    version: str
    variant: str | None
    arch: tuple[str, ...]
    size_gb: float
    cloud_init: bool
    released_at: str
    deprecated_at: str | None = None
    type: str = "official"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "image",
            "type": self.type,
            "family": self.family,
            "version": self.version,
            "variant": self.variant,
            "arch": list(self.arch),
            "size_gb": self.size_gb,
            "cloud_init": self.cloud_init,
            "released_at": self.released_at,
            "deprecated_at": self.deprecated_at,
        }


def _onion(seed: str) -> str:
    """A well-formed (v3: key, checksum, version) but fictitious onion address."""
    key = hashlib.sha256(f"nokyc-{seed}".encode()).digest()
    checksum = hashlib.sha3_256(b".onion checksum" + key + b"\x03").digest()[:2]
    return base64.b32encode(key + checksum + b"\x03").decode().lower() + ".onion"


_MILAN = "AMD EPYC 7763 (Milan)"
_ALL = ("par", "rkv", "zrh", "buh")

PLANS: tuple[Plan, ...] = (
    Plan("vps-s1", "vps", 1, _MILAN, 1024, 25, 1.0, 0.01, _ALL),
    Plan("vps-s2", "vps", 2, _MILAN, 2048, 50, 2.0, 0.02, _ALL),
    Plan("vps-m4", "vps", 4, _MILAN, 8192, 160, 4.0, 0.06, _ALL),
    # Not in Bucharest: the regional pool has no large hypervisors.
    Plan("vps-l8", "vps", 8, _MILAN, 16384, 320, 8.0, 0.12, ("par", "rkv", "zrh")),
    Plan("ded-e24", "dedicated", 24, "AMD EPYC 9254 (Genoa)", 131072, 3840, 20.0, 0.45,
         ("par", "zrh")),
)

REGIONS: tuple[Region, ...] = (
    Region("par", "Paris", "FR", "nky-par-01", _onion("par"),
           "198.51.100.0/25", "2001:db8:10::/48", 412),
    Region("rkv", "Reykjavík", "IS", "nky-rkv-01", _onion("rkv"),
           "203.0.113.0/25", "2001:db8:20::/48", 187),
    Region("zrh", "Zürich", "CH", "nky-zrh-01", _onion("zrh"),
           "198.51.100.128/25", "2001:db8:30::/48", 96),
    Region("buh", "Bucharest", "RO", "nky-buh-01", None,
           "203.0.113.128/25", "2001:db8:40::/48", 38),
)

IMAGES: tuple[Image, ...] = (
    Image("debian-13-minimal", "debian", "13", "minimal", ("amd64", "arm64"), 1.2, True,
          "2025-08-09"),
    Image("debian-12-minimal", "debian", "12", "minimal", ("amd64", "arm64"), 1.1, True,
          "2023-06-10", deprecated_at="2026-02-01"),
    Image("ubuntu-24.04-cloud", "ubuntu", "24.04", "cloud", ("amd64", "arm64"), 2.4, True,
          "2024-04-25"),
    Image("ubuntu-22.04-cloud", "ubuntu", "22.04", "cloud", ("amd64", "arm64"), 2.2, True,
          "2022-04-21"),
    Image("alpine-3.22-minimal", "alpine", "3.22", "minimal", ("amd64", "arm64"), 0.2, False,
          "2025-05-30"),
    Image("rocky-9-cloud", "rocky", "9", "cloud", ("amd64",), 1.9, True, "2024-11-19"),
)

PLANS_BY_ID = {p.id: p for p in PLANS}
REGIONS_BY_ID = {r.id: r for r in REGIONS}
IMAGES_BY_ID = {i.id: i for i in IMAGES}

# The seed's event catalogue, in its order.
EVENT_TYPES: tuple[str, ...] = (
    "server.created", "server.running", "server.stopped", "server.rebooted",
    "server.rebuilt", "server.suspended", "server.destroyed", "snapshot.ready",
    "volume.attached", "volume.detached", "topup.pending", "topup.confirmed",
    "topup.expired", "billing.charged", "billing.low_balance", "token.created",
    "token.revoked", "firewall.applied",
)
