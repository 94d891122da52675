"""NoKYC's resources as held in memory, and their JSON shapes (the seed's field names,
an ``object`` field on every object, RFC 3339 UTC timestamps to the second)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import string
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SERVER_STATUSES = (
    "provisioning", "installing", "running", "stopped", "suspended", "destroying",
)
_ALNUM = string.ascii_lowercase + string.digits
TOKEN_PREFIX = "nkv_live_"
TOKEN_BODY_LENGTH = 52


def rfc3339(at: float | None = None) -> str:
    """``2026-05-12T08:47:12Z`` for unix time ``at`` (default now)."""
    moment = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def maybe_rfc3339(at: float | None) -> str | None:
    return None if at is None else rfc3339(at)


def new_token() -> str:
    """A fresh plaintext API token: ``nkv_live_`` + 52 lowercase alphanumerics."""
    return TOKEN_PREFIX + "".join(secrets.choice(_ALNUM) for _ in range(TOKEN_BODY_LENGTH))


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class ApiToken:
    id: str
    name: str
    scope: str
    digest: str  # SHA-256 of the plaintext; the plaintext itself is not kept
    expires_at: float | None = None  # unix seconds
    created_at: float = field(default_factory=time.time)
    last_used_at: float | None = None
    last_used_sim: float | None = None
    seq: int = 0

    def to_json(self, *, plaintext: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "api_token",
            "name": self.name,
            "scope": self.scope,
            "last_used_at": maybe_rfc3339(self.last_used_at),
            "expires_at": maybe_rfc3339(self.expires_at),
            "created_at": rfc3339(self.created_at),
        }
        if plaintext is not None:
            body["token"] = plaintext
        return body


@dataclass
class Server:
    id: str
    name: str
    plan: str
    region: str
    image: str
    ssh_keys: list[str]
    tags: list[str]
    labels: dict[str, str]
    user_data_b64: str | None  # write-only: never rendered
    seq: int
    status: str = "provisioning"
    ipv4: dict[str, Any] | None = None
    ipv6: dict[str, Any] | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = 0.0
    op: str | None = None  # the power/disk operation in progress, if any
    op_task: asyncio.Task[None] | None = field(default=None, repr=False)
    address: str | None = None  # reserved IPv4 (shown as ipv4 once running)
    ipv6_index: int | None = None
    base_image: str = ""  # the official image under ``image`` (which may be a snap_ id)

    def __post_init__(self) -> None:
        if not self.updated_at:
            self.updated_at = self.created_at
        if not self.base_image:
            self.base_image = self.image

    def touch(self) -> None:
        self.updated_at = time.time()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "server",
            "name": self.name,
            "status": self.status,
            "plan": self.plan,
            "region": self.region,
            "image": self.image,
            "ipv4": dict(self.ipv4) if self.ipv4 is not None else None,
            "ipv6": dict(self.ipv6) if self.ipv6 is not None else None,
            "ssh_keys": list(self.ssh_keys),
            "tags": list(self.tags),
            "labels": dict(self.labels),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }


@dataclass
class SshKey:
    id: str
    name: str
    type: str
    fingerprint: str
    public_key: str
    seq: int
    created_at: float = field(default_factory=time.time)

    def to_json(self, *, with_public_key: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "ssh_key",
            "name": self.name,
            "type": self.type,
            "fingerprint": self.fingerprint,
        }
        if with_public_key:
            body["public_key"] = self.public_key
        body["created_at"] = rfc3339(self.created_at)
        return body


@dataclass
class Snapshot:
    id: str
    server: str
    name: str
    seq: int
    source_image: str
    source_disk_gb: int
    status: str = "creating"  # creating | ready | error
    size_gb: float | None = None
    expires_at: float | None = None
    created_at: float = field(default_factory=time.time)
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    expiry_task: asyncio.Task[None] | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "snapshot",
            "server": self.server,
            "name": self.name,
            "size_gb": self.size_gb,
            "status": self.status,
            "expires_at": maybe_rfc3339(self.expires_at),
            "created_at": rfc3339(self.created_at),
        }


@dataclass
class FirewallRule:
    id: str
    direction: str
    proto: str
    port: str | None
    source: str
    action: str
    note: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "direction": self.direction,
            "proto": self.proto,
            "port": self.port,
            "source": self.source,
            "action": self.action,
            "note": self.note,
        }


@dataclass
class FirewallGroup:
    id: str
    name: str
    default_action: str
    seq: int
    applied_to: list[str] = field(default_factory=list)
    rules: list[FirewallRule] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "firewall_group",
            "name": self.name,
            "applied_to": list(self.applied_to),
            "rules": [r.to_json() for r in self.rules],
            "default_action": self.default_action,
            "created_at": rfc3339(self.created_at),
        }


@dataclass
class Webhook:
    id: str
    url: str
    events: list[str]
    secret: str
    seq: int
    active: bool = True
    created_at: float = field(default_factory=time.time)

    def subscribed(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events

    def to_json(self, *, with_secret: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "webhook",
            "url": self.url,
            "events": list(self.events),
            "active": self.active,
            "secret_hint": self.secret[-4:],
            "created_at": rfc3339(self.created_at),
        }
        if with_secret:
            body["secret"] = self.secret
        return body


@dataclass
class AuditEvent:
    id: str
    action: str
    resource: str | None
    actor_token: str | None
    request_id: str
    ip_country: str
    result: str  # ok | error | denied
    seq: int
    at_sim: float = 0.0  # simulated time, for the 90-day retention
    created_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "audit_event",
            "action": self.action,
            "resource": self.resource,
            "actor_token": self.actor_token,
            "actor_session": None,
            "request_id": self.request_id,
            "ip_country": self.ip_country,
            "result": self.result,
            "created_at": rfc3339(self.created_at),
        }
