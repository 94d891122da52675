"""CyberPanel's in-memory records: the account, API keys with their usage logs,
invoices, VPSes and their snapshots.

Timestamps are wall-clock unix seconds (shown as ``2026-01-05T14:30:00Z``, the seed's
format); the ``*_sim`` fields are simulated monotonic seconds driving the lifecycle.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .catalog import TASKS, LocationSpec, Plan, Template

KEY_PREFIX_LENGTH = 12
USAGE_HISTORY = 10000  # usage log entries kept per key
INVOICE_HISTORY = 10000

# Deployment states (``deployment_status``).
IN_PROGRESS, COMPLETED, FAILED = "in_progress", "completed", "failed"
# VPS statuses.
DEPLOYING, RUNNING, STOPPED, SUSPENDED, DELETED = (
    "deploying", "running", "stopped", "suspended", "deleted")
STATUSES = (DEPLOYING, RUNNING, STOPPED, SUSPENDED, FAILED, DELETED)


def iso(ts: float | None) -> str | None:
    """Unix seconds as ``YYYY-MM-DDTHH:MM:SSZ`` (None stays None)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> float:
    """An ISO 8601 timestamp (``Z`` or an offset; naive means UTC) as unix seconds."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def money(value: Decimal, places: int = 2) -> str:
    return f"{value.quantize(Decimal(1).scaleb(-places)):.{places}f}"


def key_digest(plaintext: str) -> str:
    """Keys are stored SHA-256 hashed, as the seed says the platform does."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


@dataclass
class Account:
    id: int = 123
    email: str = "user@example.com"
    full_name: str = "John Doe"
    balance: Decimal = Decimal("150.00")
    status: str = "active"
    two_factor_enabled: bool = True
    vps_ordering_enabled: bool = True
    registration_date: str = "2024-01-15T10:30:00Z"
    auto_funding_enabled: bool = False
    auto_funding_threshold: Decimal = Decimal("10.00")
    auto_funding_amount: Decimal = Decimal("50.00")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "email": self.email, "full_name": self.full_name,
                "balance": money(self.balance), "status": self.status,
                "two_factor_enabled": self.two_factor_enabled,
                "vps_ordering_enabled": self.vps_ordering_enabled,
                "registration_date": self.registration_date}

    def auto_funding(self) -> dict[str, Any]:
        return {"enabled": self.auto_funding_enabled,
                "threshold": money(self.auto_funding_threshold),
                "amount": money(self.auto_funding_amount)}


@dataclass
class UsageLog:
    endpoint: str
    method: str
    ip_address: str
    response_status: int
    response_time_ms: int
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "method": self.method,
                "ip_address": self.ip_address, "response_status": self.response_status,
                "response_time_ms": self.response_time_ms, "created_at": iso(self.created_at)}


@dataclass
class ApiKey:
    id: int
    name: str
    digest: str
    prefix: str
    scopes: list[str]
    is_active: bool = True
    ip_whitelist: list[str] = field(default_factory=list)
    expires_at: float | None = None  # wall clock
    rate_limit_per_minute: int | None = None  # None: the simulator's default
    rate_limit_per_hour: int | None = None
    last_used_at: float | None = None
    last_used_ip: str | None = None
    request_count: int = 0
    created_at: float = field(default_factory=time.time)
    usage: deque[UsageLog] = field(default_factory=lambda: deque(maxlen=USAGE_HISTORY))

    def has_scope(self, *accepted: str) -> bool:
        return "all" in self.scopes or any(s in self.scopes for s in accepted)

    def ip_allowed(self, ip: str) -> bool:
        if not self.ip_whitelist:
            return True
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        for entry in self.ip_whitelist:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
        return False

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or time.time())

    def to_json(self, per_minute: int, per_hour: int) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "key_prefix": self.prefix,
            "scopes": list(self.scopes), "is_active": self.is_active,
            "ip_whitelist": list(self.ip_whitelist), "expires_at": iso(self.expires_at),
            "last_used_at": iso(self.last_used_at), "last_used_ip": self.last_used_ip,
            "request_count": self.request_count,
            "rate_limit_per_minute": per_minute, "rate_limit_per_hour": per_hour,
            "created_at": iso(self.created_at),
        }


@dataclass
class Invoice:
    id: int
    description: str
    amount: Decimal  # negative for a debit
    type: str  # debit | credit
    date: float

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "description": self.description,
                "amount": money(self.amount, 4), "type": self.type, "date": iso(self.date)}


@dataclass
class Snapshot:
    name: str
    description: str
    created_at: float
    vmstate: bool

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "created_at": iso(self.created_at), "vmstate": self.vmstate}


@dataclass
class Vps:
    id: int
    vmid: int
    name: str
    plan: Plan
    location: LocationSpec
    template: Template
    ip_address: str
    ssh_key: str | None
    password_digest: str  # the root password is never kept in the clear
    webhook_url: str | None
    webhook_secret: str | None
    created_at: float
    created_sim: float
    deploy_delay: float
    fail_at: str | None  # the task this deployment fails at (the failure knob)
    updated_at: float = 0.0
    deployment: str = IN_PROGRESS
    finished_sim: float | None = None
    finished_at: float | None = None
    failed_task: str | None = None
    power: str = STOPPED  # the VM's state once deployed: running | stopped
    pending_power: str | None = None  # running | stopped | restart
    pending_due: float | None = None
    booted_sim: float | None = None  # when the VM last (re)booted
    suspended: bool = False
    suspension_reason: str | None = None
    deleted: bool = False
    deleted_at: float | None = None
    billed_sim: float = 0.0  # billed up to this simulated time
    last_billed: float | None = None
    snapshots: list[Snapshot] = field(default_factory=list)
    webhook_sent: bool = False

    @property
    def status(self) -> str:
        if self.deleted:
            return DELETED
        if self.suspended:
            return SUSPENDED
        if self.deployment == IN_PROGRESS:
            return DEPLOYING
        if self.deployment == FAILED:
            return FAILED
        return self.power

    @property
    def billable(self) -> bool:
        return not self.deleted and self.deployment != FAILED

    def completed_tasks(self, now: float) -> int:
        """Tasks completed by simulated time ``now`` (ignoring a failure)."""
        if self.deployment == COMPLETED:
            return len(TASKS)
        if self.deploy_delay <= 0:
            return len(TASKS)
        step = self.deploy_delay / len(TASKS)
        return min(len(TASKS), int((now - self.created_sim) // step))

    def row(self) -> dict[str, Any]:
        """The ``GET /vps`` row."""
        return {"id": self.id, "vmid": self.vmid, "name": self.name, "status": self.status,
                "ip_address": self.ip_address, "is_suspended": self.suspended,
                "created_at": iso(self.created_at)}

    def power_json(self) -> dict[str, Any]:
        """What start / stop / restart answer."""
        return {"id": self.id, "vmid": self.vmid, "name": self.name, "status": self.status,
                "ip_address": self.ip_address}
