"""CyberPanel Cloud's fixed catalogue: plans, locations (with their IP pools and Proxmox
nodes), OS templates, permission scopes and the ten deployment tasks.

The seed lists plans 1 (Starter) and 2 (Basic), locations ``la`` and ``de`` and seven
templates; plans 3-5 and location ``eu`` are the simulator's (hourly price = monthly /
730, rounded to 4 decimals, as the seed's two plans are).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Plan:
    id: int
    name: str
    cpu_cores: int
    ram_mb: int
    disk_gb: int
    bandwidth_gb: int
    monthly_price: Decimal
    price_hourly: Decimal

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "cpu_cores": self.cpu_cores,
                "ram_mb": self.ram_mb, "disk_gb": self.disk_gb,
                "bandwidth_gb": self.bandwidth_gb, "monthly_price": f"{self.monthly_price:.2f}",
                "price_hourly": f"{self.price_hourly:.4f}"}

    def ref(self) -> dict[str, object]:
        """The plan as VPS details show it (``price`` is the monthly price)."""
        return {"id": self.id, "name": self.name, "cpu_cores": self.cpu_cores,
                "ram_mb": self.ram_mb, "disk_gb": self.disk_gb,
                "bandwidth_gb": self.bandwidth_gb, "price": f"{self.monthly_price:.2f}"}


def _plan(id_: int, name: str, cores: int, ram: int, disk: int, bw: int, monthly: str) -> Plan:
    price = Decimal(monthly)
    hourly = (price / 730).quantize(Decimal("0.0001"))
    return Plan(id_, name, cores, ram, disk, bw, price, hourly)


PLANS: tuple[Plan, ...] = (
    _plan(1, "Starter", 1, 1024, 25, 1000, "6.00"),
    _plan(2, "Basic", 2, 2048, 50, 2000, "12.00"),
    _plan(3, "Standard", 4, 4096, 80, 3000, "24.00"),
    _plan(4, "Professional", 6, 8192, 160, 4000, "48.00"),
    _plan(5, "Business", 8, 16384, 320, 5000, "96.00"),
)
PLANS_BY_ID = {p.id: p for p in PLANS}


@dataclass(frozen=True)
class LocationSpec:
    code: str
    name: str
    country: str
    server_hostname: str  # the Proxmox node's FQDN (console URL, VPS details "server")
    ip_pool: tuple[str, ...]

    @property
    def node(self) -> str:
        return self.server_hostname.split(".", 1)[0]


def _pool(prefix: str, first: int, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}.{first + i}" for i in range(count))


LOCATIONS: tuple[LocationSpec, ...] = (
    LocationSpec("la", "Los Angeles, USA", "US", "lax-power.cyberpersons.com",
                 _pool("74.81.40", 145, 15)),
    LocationSpec("de", "Falkenstein, Germany", "DE", "fsn-power.cyberpersons.com",
                 _pool("88.198.52", 10, 8)),
    LocationSpec("eu", "Amsterdam, Netherlands", "NL", "ams-power.cyberpersons.com",
                 _pool("185.107.80", 20, 12)),
)
LOCATIONS_BY_CODE = {loc.code: loc for loc in LOCATIONS}


@dataclass(frozen=True)
class Template:
    id: str
    name: str
    os: str
    description: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "os": self.os, "description": self.description}


TEMPLATES: tuple[Template, ...] = (
    Template("101", "CyberPanel", "AlmaLinux 8", "CyberPanel pre-installed with OpenLiteSpeed"),
    Template("9000", "Ubuntu 22.04", "Ubuntu 22.04 LTS", "Clean Ubuntu 22.04 LTS installation"),
    Template("9022", "Ubuntu 24.04", "Ubuntu 24.04 LTS", "Clean Ubuntu 24.04 LTS installation"),
    Template("9010", "Debian 12", "Debian 12", "Clean Debian 12 installation"),
    Template("9001", "AlmaLinux 8", "AlmaLinux 8", "Clean AlmaLinux 8 installation"),
    Template("9008", "AlmaLinux 9", "AlmaLinux 9", "Clean AlmaLinux 9 installation"),
    Template("9125", "Windows Server 2022", "Windows Server 2022",
             "Windows Server 2022 (requires $20 min balance)"),
)
TEMPLATES_BY_ID = {t.id: t for t in TEMPLATES}
WINDOWS_TEMPLATE = "9125"
WINDOWS_MIN_BALANCE = Decimal("20.00")

# Every scope of the seed's table (what a key may hold)...
SCOPES: tuple[str, ...] = (
    "vps:read", "vps:write", "vps:delete", "account:read", "account:write", "billing:read",
    "billing:write", "support:read", "support:write", "email:read", "email:write", "all",
)
# ... and what GET /scopes lists (the seed's answer, verbatim).
PUBLIC_SCOPES: tuple[tuple[str, str], ...] = (
    ("vps:read", "VPS - Read"),
    ("vps:write", "VPS - Create/Modify"),
    ("vps:delete", "VPS - Delete"),
    ("billing:read", "Billing - Read"),
    ("billing:write", "Billing - Add Funds"),
    ("account:read", "Account - Read Info"),
    ("all", "Full Access - All Permissions"),
)

TASKS: tuple[str, ...] = (
    "validate_resources", "allocate_ip", "create_vm", "configure_hardware", "apply_cloud_init",
    "start_vm", "configure_network", "wait_for_guest_agent", "verify_connectivity", "finalize",
)
# Once this task has completed the VM exists and runs on the node (live status).
VM_RUNNING_AFTER = TASKS.index("start_vm")
