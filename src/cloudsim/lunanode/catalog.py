"""LunaNode's public catalogue: regions, plans and the public (template / ISO) images.

Shapes follow what LunaNode's own clients read: numeric-string ids, every number in an
answer a string, template names ending in `` (template)`` and ISOs in `` (ISO)`` (the
Go ``cloug`` client tells public images by that suffix).  Plans carry LunaNode's plan
names (``m.1s``, ``m.2`` ...) and numeric ids; a client may pass either as ``plan_id``.

Images are per region, as on LunaNode: the same template has a different ``image_id``
in every region and a VM can only boot an image of its own region.  Sizes are bytes.

Addresses come from the documentation ranges (192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24, 2001:db8::/32) so nothing real is ever addressed; private addresses
from 10.0.0.0/8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HOURS_PER_MONTH = 730


def money(value: float) -> str:
    """``3.5`` -> ``"3.5"``, ``7.0`` -> ``"7"`` (LunaNode's ``$3.5`` style)."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Region:
    id: str
    name: str
    public_network: str  # IPv4 addresses are its hosts after the gateway (.1)
    private_network: str
    ipv6_network: str  # a /48; VM n gets ::n out of it


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    category: str
    vcpu: int
    ram_mb: int
    storage_gb: int
    bandwidth_gb: int  # monthly transfer
    price_monthly: float  # USD
    regions: tuple[str, ...]

    @property
    def price_hourly(self) -> float:
        return self.price_monthly / HOURS_PER_MONTH

    def to_json(self) -> dict[str, Any]:
        return {
            "plan_id": self.id,
            "name": self.name,
            "category": self.category,
            "vcpu": str(self.vcpu),
            "ram": str(self.ram_mb),
            "storage": str(self.storage_gb),
            "bandwidth": str(self.bandwidth_gb),
            "price": money(self.price_monthly),
            "price_hourly": f"{self.price_hourly:.4f}",
            "price_monthly_nice": f"${money(self.price_monthly)}",
            "price_hourly_nice": f"${self.price_hourly:.4f}/hr",
            "regions": list(self.regions),
            "regions_nice": ", ".join(REGIONS_BY_ID[r].name for r in self.regions),
        }


@dataclass(frozen=True)
class Template:
    """A public image family; :data:`PUBLIC_IMAGES` has one image per region."""

    name: str
    username: str | None  # login_details "username: U; password: P"; None: "password: P"
    size_bytes: int
    iso: bool = False


@dataclass(frozen=True)
class PublicImage:
    id: str
    region: str
    template: Template


REGIONS: tuple[Region, ...] = (
    Region("toronto", "Toronto", "192.0.2.0/24", "10.10.0.0/16", "2001:db8:10::/48"),
    Region("montreal", "Montreal", "198.51.100.0/24", "10.20.0.0/16", "2001:db8:20::/48"),
    Region("roubaix", "Roubaix", "203.0.113.0/24", "10.30.0.0/16", "2001:db8:30::/48"),
)
REGIONS_BY_ID = {r.id: r for r in REGIONS}
DEFAULT_REGION = "toronto"
_ALL = tuple(r.id for r in REGIONS)

PLANS: tuple[Plan, ...] = (
    Plan("134", "m.1s", "General Purpose", 1, 1024, 15, 1000, 3.5, _ALL),
    Plan("87", "m.2", "General Purpose", 1, 2048, 30, 2000, 7.0, _ALL),
    Plan("88", "m.4", "General Purpose", 2, 4096, 60, 3000, 14.0, _ALL),
    Plan("89", "m.8", "General Purpose", 4, 8192, 120, 4000, 28.0, _ALL),
    # Not sold in Roubaix: exercises "plan not available in this region".
    Plan("90", "m.16", "General Purpose", 6, 16384, 240, 5000, 56.0, ("toronto", "montreal")),
)
PLANS_BY_ID = {p.id: p for p in PLANS}
PLANS_BY_NAME = {p.name: p for p in PLANS}

UBUNTU_2404 = Template("Ubuntu 24.04 64-bit (template)", "ubuntu", 2_684_354_560)
UBUNTU_2204 = Template("Ubuntu 22.04 64-bit (template)", "ubuntu", 2_361_393_152)
DEBIAN_12 = Template("Debian 12 64-bit (template)", "debian", 1_073_741_824)
ROCKY_9 = Template("Rocky Linux 9 64-bit (template)", "rocky", 1_610_612_736)
ALMA_9 = Template("AlmaLinux 9 64-bit (template)", "almalinux", 1_610_612_736)
UBUNTU_ISO = Template("Ubuntu 24.04 Server 64-bit (ISO)", None, 2_773_874_688, iso=True)
TEMPLATES: tuple[Template, ...] = (UBUNTU_2404, UBUNTU_2204, DEBIAN_12, ROCKY_9, ALMA_9,
                                   UBUNTU_ISO)

# Per-region ids (Toronto's Ubuntu 22.04 is the id LunaNode's CLI examples use).
_IDS: dict[str, tuple[str, ...]] = {
    "toronto": ("702761", "630902", "654881", "612304", "612305", "702770"),
    "montreal": ("702762", "630903", "654882", "612306", "612307", "702771"),
    "roubaix": ("702763", "630904", "654883", "612308", "612309", "702772"),
}
PUBLIC_IMAGES: tuple[PublicImage, ...] = tuple(
    PublicImage(image_id, region, template)
    for region in _ALL
    for image_id, template in zip(_IDS[region], TEMPLATES, strict=True)
)
PUBLIC_IMAGES_BY_ID = {i.id: i for i in PUBLIC_IMAGES}


def public_image(region: str, name: str) -> PublicImage:
    """The public image called ``name`` in ``region`` (for tests and fixtures)."""
    for image in PUBLIC_IMAGES:
        if image.region == region and image.template.name == name:
            return image
    raise KeyError(f"no public image {name!r} in {region}")
