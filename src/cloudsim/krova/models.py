"""Krova's resources as held in memory, and their JSON shapes.

The JSON shapes follow the seed and validate against the spec's schemas (every
``required`` field present, ``null`` only where the spec says ``nullable``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ..common.clock import utc_now_iso
from .catalog import cost_per_hour

# States in which the Cube holds vCPU and RAM and pays for them.  ``stopping`` is not
# one: the seed says compute billing stops as soon as a sleep is requested.
COMPUTE_STATES = frozenset({"pending", "booting", "running", "resizing"})
CUBE_STATES = (
    "pending", "booting", "running", "stopped", "stopping", "resizing", "error", "deleted",
)


@dataclass
class Space:
    id: str
    name: str
    tier: str = "standard"
    created_at: str = field(default_factory=utc_now_iso)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "tier": self.tier, "createdAt": self.created_at}


@dataclass
class ApiKey:
    key: str
    space_id: str
    can_manage: bool = True


@dataclass
class Cube:
    id: str
    space_id: str
    name: str
    region: str
    image: str
    vcpu: int
    ram_gb: float
    disk_gb: int
    ssh_public_key: str
    ssh_user: str
    server_domain: str
    user_data: str | None = None
    state: str = "pending"
    public_ipv4: str | None = None
    termination_protection: bool = False
    tp_changed_at: str | None = None
    tp_changed_by: str | None = None
    created_at: str = field(default_factory=utc_now_iso)
    updated_at: str = ""
    seq: int = 0  # creation order, for stable pagination
    deleting: bool = False
    restarting: bool = False
    host_keys: list[dict[str, str]] = field(default_factory=list)
    op_task: asyncio.Task[None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.updated_at:
            self.updated_at = self.created_at

    @property
    def hostname(self) -> str:
        """The Cube's own stable hostname (``host`` of its mappings and SSH info)."""
        return f"{self.id.replace('_', '-')}.cubes.krova.cloud"

    def cost(self) -> float:
        if self.state == "deleted":
            return 0.0
        compute = self.state in COMPUTE_STATES and not self.deleting
        return cost_per_hour(self.vcpu, self.ram_gb, self.disk_gb, compute=compute)

    def touch(self) -> None:
        self.updated_at = utc_now_iso()

    def to_json(self, *, with_server_domain: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "publicIpv4": self.public_ipv4,
            "resources": {"vcpu": self.vcpu, "ramGb": self.ram_gb, "diskGb": self.disk_gb},
            "image": self.image,
            "sshUser": self.ssh_user,
            "costPerHour": self.cost(),
            "terminationProtection": self.termination_protection,
            "terminationProtectionChangedAt": self.tp_changed_at,
            "terminationProtectionChangedBy": self.tp_changed_by,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }
        if with_server_domain:
            body["serverDomain"] = self.server_domain
        return body

    def event_data(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "publicIpv4": self.public_ipv4,
        }


@dataclass
class WhitelistEntry:
    id: str
    cidr: str


@dataclass
class TcpMapping:
    id: str
    cube_id: str
    server: str
    cube_port: int
    host_port: int
    host: str | None
    label: str | None
    is_ssh: bool
    udp_enabled: bool
    whitelist: list[WhitelistEntry]
    status: str = "active"
    created_at: str = field(default_factory=utc_now_iso)
    updated_at: str = ""

    def __post_init__(self) -> None:
        if not self.updated_at:
            self.updated_at = self.created_at

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "cubeId": self.cube_id,
            "cubePort": self.cube_port,
            "host": self.host,
            "hostPort": self.host_port,
            "label": self.label,
            "status": self.status,
            "isSsh": self.is_ssh,
            "udpEnabled": self.udp_enabled,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "whitelistedIps": [{"id": w.id, "cidr": w.cidr} for w in self.whitelist],
        }


@dataclass
class Snapshot:
    id: str
    cube_id: str
    space_id: str
    name: str
    status: str = "pending"  # pending | complete
    size_bytes: int | None = None
    kind: str = "manual"
    completed_at: str | None = None
    created_at: str = field(default_factory=utc_now_iso)
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "cubeId": self.cube_id,
            "spaceId": self.space_id,
            "name": self.name,
            "status": self.status,
            "sizeBytes": self.size_bytes,
            "kind": self.kind,
            "completedAt": self.completed_at,
            "createdAt": self.created_at,
        }


DNS_TARGET = "dns.krova.cloud"
ACME_TARGET = "acme.krova.cloud"


@dataclass
class Domain:
    id: str
    cube_id: str
    domain: str
    port: int
    status: str = "pending"  # pending | active
    security_headers_mode: str = "enforced"
    response_header_timeout_secs: int = 60
    max_request_body_mb: int | None = None
    response_compression: bool = False
    created_at: str = field(default_factory=utc_now_iso)
    updated_at: str = ""

    def __post_init__(self) -> None:
        if not self.updated_at:
            self.updated_at = self.created_at

    @property
    def is_wildcard(self) -> bool:
        return self.domain.startswith("*.")

    def to_json(self) -> dict[str, Any]:
        active = self.status == "active"
        return {
            "id": self.id,
            "cubeId": self.cube_id,
            "domain": self.domain,
            "port": self.port,
            "status": self.status,
            "ingressStatus": "ready" if active else "pending",
            "securityHeadersMode": self.security_headers_mode,
            "responseHeaderTimeoutSecs": self.response_header_timeout_secs,
            "responseHeaderOverrides": None,
            "requestHeaderOverrides": None,
            "maxRequestBodyMb": self.max_request_body_mb,
            "responseCompression": self.response_compression,
            "ipAllowList": None,
            "ipDenyList": None,
            "basicAuthUser": None,
            "basicAuthEnabled": False,
            "corsConfig": None,
            "isWildcard": self.is_wildcard,
            "wildcardCertState": (
                ("ready" if active else "pending_delegation") if self.is_wildcard else None
            ),
            "acmeDelegationTarget": (
                f"{self.id}.{ACME_TARGET}" if self.is_wildcard else None
            ),
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }

    def records(self) -> list[dict[str, Any]]:
        """The DNS records the user must publish (the spec's DnsRecord)."""
        base = self.domain[2:] if self.is_wildcard else self.domain
        routing = {
            "id": "routing",
            "type": "CNAME",
            "host": self.domain,
            "value": DNS_TARGET,
            "purpose": "routing",
            "note": "If your DNS is on Cloudflare, set this record to DNS-only (grey cloud).",
            "mustBeGrey": True,
            "proxyOk": False,
        }
        if not self.is_wildcard:
            return [routing]
        return [
            {
                "id": "ownership",
                "type": "TXT",
                "host": f"_krova.{base}",
                "value": f"krova-verify={self.id}",
                "purpose": "ownership",
                "note": None,
                "mustBeGrey": False,
                "proxyOk": True,
            },
            routing,
            {
                "id": "certificate",
                "type": "CNAME",
                "host": f"_acme-challenge.{base}",
                "value": f"{self.id}.{ACME_TARGET}",
                "purpose": "certificate",
                "note": None,
                "mustBeGrey": True,
                "proxyOk": False,
            },
        ]


@dataclass
class Webhook:
    id: str
    space_id: str
    url: str
    events: list[str]
    secret: str
    enabled: bool = True
    created_at: str = field(default_factory=utc_now_iso)
    updated_at: str = ""

    def __post_init__(self) -> None:
        if not self.updated_at:
            self.updated_at = self.created_at

    def to_json(self, *, with_secret: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "enabled": self.enabled,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }
        if with_secret:
            body["secret"] = self.secret
        return body
