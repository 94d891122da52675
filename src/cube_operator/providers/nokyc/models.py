"""NoKYC VPS domain types: the wire objects of servers, plans, SSH keys, snapshots,
firewall groups, webhooks and the balance. snake_case on the wire; unknown fields in
answers are ignored (the API adds fields within v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = [
    "NOKYC_DEFAULT_ENDPOINT",
    "Balance",
    "FirewallGroup",
    "FirewallRule",
    "Image",
    "Ipv4",
    "Ipv6",
    "Plan",
    "Region",
    "Server",
    "Snapshot",
    "SshKey",
    "Webhook",
]

NOKYC_DEFAULT_ENDPOINT = "https://api.nokycvps.com/v1"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Ipv4(_Model):
    address: str
    gateway: str | None = None
    rdns: str | None = None


class Ipv6(_Model):
    address: str
    prefix: str | None = None
    rdns: str | None = None


class Server(_Model):
    id: str
    name: str
    status: str = ""
    plan: str = ""
    region: str = ""
    image: str = ""
    ipv4: Ipv4 | None = None
    ipv6: Ipv6 | None = None
    ssh_keys: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Plan(_Model):
    id: str
    category: str = "vps"
    cpu: int
    ram_mb: int
    disk_gb: int
    price_usd_hour: float | None = None
    price_usd_month: float | None = None
    available_in: list[str] = Field(default_factory=list)


class Region(_Model):
    id: str
    name: str = ""
    country: str | None = None
    available: bool = True


class Image(_Model):
    id: str
    type: str = "official"
    family: str = ""
    version: str = ""
    variant: str | None = None
    cloud_init: bool | None = None
    deprecated_at: str | None = None


class SshKey(_Model):
    id: str
    name: str = ""
    type: str = ""
    fingerprint: str


class Snapshot(_Model):
    id: str
    server: str
    name: str | None = None
    size_gb: float | None = None
    status: str = ""
    created_at: datetime | None = None


class FirewallRule(_Model):
    id: str | None = None
    direction: str
    proto: str
    port: str | None = None
    source: str
    action: str
    note: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The rule as PUT .../rules takes it: no server-side id."""
        body = self.model_dump(exclude={"id"})
        return {k: v for k, v in body.items() if v is not None or k == "port"}


class FirewallGroup(_Model):
    id: str
    name: str = ""
    applied_to: list[str] = Field(default_factory=list)
    rules: list[FirewallRule] = Field(default_factory=list)
    default_action: str = "drop"


class Webhook(_Model):
    id: str
    url: str
    events: list[str] = Field(default_factory=list)
    active: bool = True
    #: Only in the create answer.
    secret: SecretStr | None = None


class Balance(_Model):
    usd: float
    runway_until: str | None = None
    active_servers: int = 0
    daily_cost_usd: float | None = None
