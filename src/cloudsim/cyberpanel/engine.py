"""CyberPanel's in-memory account and the lifecycle behind the API (see the simulator's
docstring for the rules).

Transitions are evaluated lazily from simulated timestamps: a deployment knows when
it started and how long each of its ten tasks takes, a power action carries the
simulated time it takes effect, billing remembers up to when each VPS has been
charged.  :meth:`CyberPanelEngine.tick` applies everything that is due; the simulator
runs it before every API and admin request and from a short background loop, so
deployment webhooks and hourly charges happen on time even when nobody is polling.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from typing import Any

from ..common.clock import SimClock
from ..common.errors import ConfigError
from .catalog import (
    LOCATIONS,
    SCOPES,
    TASKS,
    VM_RUNNING_AFTER,
    WINDOWS_MIN_BALANCE,
    WINDOWS_TEMPLATE,
    LocationSpec,
)
from .errors import CyberPanelError, bad_request, invalid_api_key, no_api_key
from .models import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    INVOICE_HISTORY,
    KEY_PREFIX_LENGTH,
    RUNNING,
    STOPPED,
    Account,
    ApiKey,
    Invoice,
    Snapshot,
    UsageLog,
    Vps,
    key_digest,
    money,
    parse_iso,
)
from .validation import CreateSpec, SnapshotSpec, location_not_found

KEY_PATTERN = re.compile(r"^cyp_live_[0-9a-f]{64}$")
FORCE_STATUSES = ("running", "stopped", "suspended", "unsuspend", "deleted", "gone")
DEFAULT_SUSPENSION_REASON = "Suspended by administrator"
FIRST_VPS_ID = 1
FIRST_VMID = 101

# on_deployment_end(vps, failed)
DeploymentListener = Callable[[Vps, bool], None]


class FieldError(ValueError):
    """A bad field in an admin request or a constructor argument (a 400 from admin)."""


@dataclass
class CyberPanelSettings:
    """Provider knobs, changeable at runtime through ``PUT /_sim/config``."""

    deploy_delay: float = 180.0
    start_delay: float = 3.0
    stop_delay: float = 3.0
    restart_delay: float = 5.0
    fail_next_deployments: int = 0
    fail_at_task: str = "create_vm"
    billing_interval: float = 3600.0
    rate_limit_per_hour: int = 1000
    max_snapshots: int = 10
    webhook_timeout: float = 10.0
    webhook_retries: int = 3
    webhook_retry_delay: float = 30.0
    tick_interval: float = 0.05  # real seconds between background ticks

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    def checked(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """The changes this class knows, validated (``ConfigError`` on a bad value)."""
        updates: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in self.names():
                continue
            current = getattr(self, key)
            if key == "fail_at_task":
                if value not in TASKS:
                    raise ConfigError(f"fail_at_task must be one of {', '.join(TASKS)}")
            elif key == "tick_interval":
                if (isinstance(value, bool) or not isinstance(value, int | float)
                        or not 0.001 <= value <= 5):
                    raise ConfigError("tick_interval must be a number in 0.001..5")
                value = float(value)
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ConfigError(f"{key} must be a non-negative integer")
            elif (isinstance(value, bool) or not isinstance(value, int | float) or value < 0
                  or not math.isfinite(value)):
                raise ConfigError(f"{key} must be a non-negative number")
            else:
                value = float(value)
            updates[key] = value
        return updates


@dataclass
class LocationState:
    spec: LocationSpec
    is_available: bool = True
    free_ips: list[str] = field(default_factory=list)
    _next: int = 0  # next fresh address beyond the pool (as an int)

    def __post_init__(self) -> None:
        self.free_ips = list(self.spec.ip_pool)
        self._next = int(ipaddress.IPv4Address(self.spec.ip_pool[-1])) + 1

    def take_ip(self) -> str:
        return self.free_ips.pop(0)

    def give_back(self, ip: str) -> None:
        if ip not in self.free_ips:
            self.free_ips.append(ip)

    def set_available_ips(self, count: int) -> None:
        del self.free_ips[count:]
        while len(self.free_ips) < count:
            self.free_ips.append(str(ipaddress.IPv4Address(self._next)))
            self._next += 1

    def to_json(self) -> dict[str, Any]:
        return {"code": self.spec.code, "name": self.spec.name, "country": self.spec.country,
                "available_ips": len(self.free_ips), "is_available": self.is_available}


def _money_value(name: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FieldError(f"{name} must be a number or a decimal string")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise FieldError(f"{name} must be a number or a decimal string") from None
    if not amount.is_finite():
        raise FieldError(f"{name} must be finite")
    return amount


def _limit_value(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FieldError(f"{name} must be a non-negative integer (0 = unlimited) or null")
    return value


def _scopes_value(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [s.strip() for s in value.split(",") if s.strip()]
    if not isinstance(value, list | tuple) or not value or \
            any(not isinstance(s, str) for s in value):
        raise FieldError("scopes must be a non-empty list of scope names")
    unknown = sorted(set(value) - set(SCOPES))
    if unknown:
        raise FieldError(f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return list(dict.fromkeys(value))


def _whitelist_value(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
        raise FieldError("ip_whitelist must be a list of IP addresses or networks")
    for entry in value:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise FieldError(f"ip_whitelist: {entry!r} is not an IP address or network") \
                from None
    return list(value)


class CyberPanelEngine:
    def __init__(self, clock: SimClock, settings: CyberPanelSettings | None = None) -> None:
        self.clock = clock
        self.settings = settings or CyberPanelSettings()
        self.account = Account()
        self.keys: dict[int, ApiKey] = {}
        self._by_digest: dict[str, ApiKey] = {}
        self.vps: dict[int, Vps] = {}
        self.locations: dict[str, LocationState] = {
            loc.code: LocationState(loc) for loc in LOCATIONS}
        self.invoices: deque[Invoice] = deque(maxlen=INVOICE_HISTORY)
        self._key_ids = itertools.count(1)
        self._vps_ids = itertools.count(FIRST_VPS_ID)
        self._vmids = itertools.count(FIRST_VMID)
        self._invoice_ids = itertools.count(1)
        self.listeners: list[DeploymentListener] = []

    def configure(self, changes: Mapping[str, Any]) -> None:
        for key, value in self.settings.checked(changes).items():
            setattr(self.settings, key, value)

    def wall(self, sim: float, now: float | None = None) -> float:
        """The wall-clock time of simulated instant ``sim``."""
        now = self.clock.now() if now is None else now
        return time.time() - self.clock.to_real(now - sim)

    # ---- API keys --------------------------------------------------------------------

    def add_key(self, plaintext: str | None = None, *, scopes: Any = ("all",),
                name: str | None = None, is_active: bool = True, ip_whitelist: Any = None,
                expires_at: Any = None, expires_in: Any = None,
                rate_limit_per_minute: Any = None, rate_limit_per_hour: Any = None,
                ) -> tuple[ApiKey, str]:
        """Register a key (a fresh one when ``plaintext`` is None); ``ValueError`` on a
        malformed or duplicate key or a bad field.  Returns the key and its plaintext."""
        if plaintext is None:
            plaintext = "cyp_live_" + secrets.token_hex(32)
        if not isinstance(plaintext, str) or not KEY_PATTERN.match(plaintext):
            raise FieldError("API keys must look like cyp_live_<64 lowercase hex characters>")
        digest = key_digest(plaintext)
        if digest in self._by_digest:
            raise FieldError("that API key is already registered")
        key_id = next(self._key_ids)
        key = ApiKey(id=key_id, name=f"API Key {key_id}", digest=digest,
                     prefix=plaintext[:KEY_PREFIX_LENGTH], scopes=_scopes_value(list(scopes)
                     if not isinstance(scopes, str) else scopes))
        self.update_key(key, {"name": name, "is_active": is_active,
                              "ip_whitelist": ip_whitelist, "expires_at": expires_at,
                              "expires_in": expires_in,
                              "rate_limit_per_minute": rate_limit_per_minute,
                              "rate_limit_per_hour": rate_limit_per_hour}, creating=True)
        self.keys[key.id] = key
        self._by_digest[digest] = key
        return key, plaintext

    def update_key(self, key: ApiKey, changes: Mapping[str, Any], *,
                   creating: bool = False) -> ApiKey:
        """Validate every change, then apply them all; ``ValueError`` on a bad one."""
        known = {"name", "scopes", "is_active", "ip_whitelist", "expires_at", "expires_in",
                 "rate_limit_per_minute", "rate_limit_per_hour"}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise FieldError(f"unknown key field(s): {', '.join(unknown)}")
        updates: dict[str, Any] = {}
        if "name" in changes and changes["name"] is not None:
            if not isinstance(changes["name"], str) or not changes["name"].strip():
                raise FieldError("name must be a non-empty string")
            updates["name"] = changes["name"].strip()
        if "scopes" in changes:
            updates["scopes"] = _scopes_value(changes["scopes"])
        if "is_active" in changes:
            if not isinstance(changes["is_active"], bool):
                raise FieldError("is_active must be a boolean")
            updates["is_active"] = changes["is_active"]
        if "ip_whitelist" in changes:
            updates["ip_whitelist"] = _whitelist_value(changes["ip_whitelist"])
        if changes.get("expires_in") is not None:
            seconds = changes["expires_in"]
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                raise FieldError("expires_in must be a number of simulated seconds")
            updates["expires_at"] = time.time() + self.clock.to_real(float(seconds))
        elif "expires_at" in changes:
            value = changes["expires_at"]
            if value is None:
                updates["expires_at"] = None
            elif isinstance(value, int | float) and not isinstance(value, bool):
                updates["expires_at"] = float(value)
            elif isinstance(value, str):
                try:
                    updates["expires_at"] = parse_iso(value)
                except ValueError:
                    raise FieldError("expires_at must be an ISO 8601 timestamp, unix "
                                     "seconds or null") from None
            else:
                raise FieldError("expires_at must be an ISO 8601 timestamp, unix seconds "
                                 "or null")
        for limit in ("rate_limit_per_minute", "rate_limit_per_hour"):
            if limit in changes:
                updates[limit] = _limit_value(limit, changes[limit])
        if creating:
            updates = {k: v for k, v in updates.items() if v is not None or k == "expires_at"}
        for name, value in updates.items():
            setattr(key, name, value)
        return key

    def remove_key(self, key: ApiKey) -> None:
        self.keys.pop(key.id, None)
        self._by_digest.pop(key.digest, None)

    def authenticate(self, header: str | None, ip: str) -> ApiKey:
        """The key of an ``Authorization: Bearer`` header, or the seed's 401/403."""
        if header is None or not header.strip():
            raise no_api_key()
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer":
            raise invalid_api_key("Use the Bearer scheme: 'Authorization: Bearer cyp_live_...'")
        if not value:
            raise no_api_key()
        if not KEY_PATTERN.match(value):
            raise invalid_api_key("The API key is malformed (expected cyp_live_<64 hex>)")
        key = self._by_digest.get(key_digest(value))
        if key is None:
            raise invalid_api_key("The API key is invalid")
        if not key.is_active:
            raise CyberPanelError(401, "INACTIVE_API_KEY", "API key has been deactivated",
                                  "This API key has been deactivated")
        if key.expired():
            raise CyberPanelError(401, "EXPIRED_API_KEY", "API key has expired",
                                  "This API key has expired")
        if not key.ip_allowed(ip):
            raise CyberPanelError(403, "IP_NOT_ALLOWED", "IP address not allowed",
                                  f"Requests from {ip} are not allowed for this API key")
        return key

    def limits_of(self, key: ApiKey, per_minute_default: int) -> tuple[int, int]:
        per_minute = (key.rate_limit_per_minute if key.rate_limit_per_minute is not None
                      else per_minute_default)
        per_hour = (key.rate_limit_per_hour if key.rate_limit_per_hour is not None
                    else self.settings.rate_limit_per_hour)
        return per_minute, per_hour

    @staticmethod
    def record_use(key: ApiKey, ip: str) -> None:
        key.request_count += 1
        key.last_used_at = time.time()
        key.last_used_ip = ip

    @staticmethod
    def log_usage(key: ApiKey, entry: UsageLog) -> None:
        key.usage.append(entry)

    # ---- locations -------------------------------------------------------------------

    def set_location(self, code: str, changes: Mapping[str, Any]) -> LocationState:
        location = self.locations[code]
        unknown = sorted(set(changes) - {"is_available", "available_ips"})
        if unknown:
            raise FieldError(f"unknown location field(s): {', '.join(unknown)}")
        available = changes.get("is_available", location.is_available)
        if not isinstance(available, bool):
            raise FieldError("is_available must be a boolean")
        count = changes.get("available_ips", len(location.free_ips))
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 4096:
            raise FieldError("available_ips must be an integer 0..4096")
        location.is_available = available
        location.set_available_ips(count)
        return location

    # ---- VPS lifecycle ---------------------------------------------------------------

    def live(self, vps_id: int) -> Vps | None:
        return self.vps.get(vps_id)

    def listed(self) -> list[Vps]:
        """Non-deleted VPSes, newest first."""
        return sorted((v for v in self.vps.values() if not v.deleted), key=lambda v: -v.id)

    def check_location(self, code: str) -> LocationState:
        """The location new VPSes may go to; 400 ``LOCATION_NOT_FOUND`` otherwise."""
        location = self.locations.get(code)
        if location is None:
            raise location_not_found(code)
        if not location.is_available or not location.free_ips:
            raise location_not_found(code, unavailable=True)
        return location

    def create(self, spec: CreateSpec, password_digest: str) -> Vps:
        location = self.check_location(spec.location_code)
        if not self.account.vps_ordering_enabled:
            raise CyberPanelError(403, "VPS_ORDERING_DISABLED", "VPS ordering disabled",
                                  "VPS ordering is disabled for this account")
        balance = self.account.balance
        hourly = spec.plan.price_hourly
        if balance < hourly:
            raise bad_request("INSUFFICIENT_BALANCE", "Account balance too low",
                              f"Insufficient balance: ${money(balance)} available, at least "
                              f"${hourly:.4f} (one hour of {spec.plan.name}) required")
        if spec.template.id == WINDOWS_TEMPLATE and balance < WINDOWS_MIN_BALANCE:
            raise bad_request("INSUFFICIENT_BALANCE", "Account balance too low",
                              f"Insufficient balance: ${money(balance)} available, "
                              f"${WINDOWS_MIN_BALANCE} minimum required for Windows Server")
        settings = self.settings
        fail_at = None
        if settings.fail_next_deployments > 0:
            settings.fail_next_deployments -= 1
            fail_at = settings.fail_at_task
        now_sim, now = self.clock.now(), time.time()
        vps = Vps(
            id=next(self._vps_ids), vmid=next(self._vmids), name=spec.hostname,
            plan=spec.plan, location=location.spec, template=spec.template,
            ip_address=location.take_ip(), ssh_key=spec.ssh_key,
            password_digest=password_digest, webhook_url=spec.webhook_url,
            webhook_secret=spec.webhook_secret, created_at=now, created_sim=now_sim,
            deploy_delay=settings.deploy_delay, fail_at=fail_at, updated_at=now,
            billed_sim=now_sim, last_billed=now,
        )
        self.vps[vps.id] = vps
        self._advance(vps, now_sim)
        return vps

    def tick(self) -> None:
        now = self.clock.now()
        for vps in list(self.vps.values()):
            if not vps.deleted:
                self._advance(vps, now)
        self._bill(now)

    def _advance(self, vps: Vps, now: float) -> None:
        if vps.deployment == IN_PROGRESS:
            step = vps.deploy_delay / len(TASKS)
            done = vps.completed_tasks(now)
            if vps.fail_at is not None and done > TASKS.index(vps.fail_at):
                at = vps.created_sim + (TASKS.index(vps.fail_at) + 1) * step
                vps.deployment, vps.failed_task = FAILED, vps.fail_at
                self._finish(vps, at, now, failed=True)
            elif done >= len(TASKS):
                at = vps.created_sim + vps.deploy_delay
                vps.deployment = COMPLETED
                if vps.suspended:  # suspension stops the VM
                    vps.power, vps.booted_sim = STOPPED, None
                else:
                    vps.power = RUNNING
                    vps.booted_sim = vps.created_sim + (VM_RUNNING_AFTER + 1) * step
                self._finish(vps, at, now, failed=False)
        if vps.pending_power is not None and vps.pending_due is not None \
                and vps.pending_due <= now:
            target, due = vps.pending_power, vps.pending_due
            vps.pending_power = vps.pending_due = None
            if target == STOPPED:
                vps.power, vps.booted_sim = STOPPED, None
            else:  # running or restart
                vps.power, vps.booted_sim = RUNNING, due
            vps.updated_at = self.wall(due, now)

    def _finish(self, vps: Vps, at: float, now: float, *, failed: bool) -> None:
        vps.finished_sim = at
        vps.finished_at = vps.updated_at = self.wall(at, now)
        for listener in self.listeners:
            listener(vps, failed)

    def power(self, vps: Vps, action: str) -> bool:
        """Start (``running``), stop (``stopped``) or ``restart`` a deployed VPS; the
        change lands after the action's delay.  True when nothing had to be done."""
        effective = vps.pending_power or vps.power
        if action == RUNNING and effective in (RUNNING, "restart"):
            return True
        if action == STOPPED and effective == STOPPED:
            return True
        delay = {RUNNING: self.settings.start_delay, STOPPED: self.settings.stop_delay,
                 "restart": self.settings.restart_delay}[action]
        now = self.clock.now()
        vps.pending_power, vps.pending_due = action, now + delay
        self._advance(vps, now)
        return False

    def delete(self, vps: Vps) -> None:
        vps.deleted, vps.deleted_at = True, time.time()
        vps.updated_at = vps.deleted_at
        vps.pending_power = vps.pending_due = None
        vps.snapshots.clear()
        self.locations[vps.location.code].give_back(vps.ip_address)

    def forget(self, vps: Vps) -> None:
        """Gone at once, as if removed from the platform's database."""
        if not vps.deleted:
            self.locations[vps.location.code].give_back(vps.ip_address)
        self.vps.pop(vps.id, None)

    def suspend(self, vps: Vps, reason: str) -> None:
        """Suspension stops the VM; unsuspending leaves it stopped (for the owner to start)."""
        if vps.deployment == COMPLETED:
            vps.power, vps.booted_sim = STOPPED, None
        vps.pending_power = vps.pending_due = None
        vps.suspended, vps.suspension_reason = True, reason
        vps.updated_at = time.time()

    def unsuspend(self, vps: Vps) -> None:
        vps.suspended, vps.suspension_reason = False, None
        vps.updated_at = time.time()

    def force_status(self, vps: Vps, status: str, reason: str | None = None) -> None:
        """The admin's out-of-band change (``ValueError`` when it makes no sense)."""
        if status not in FORCE_STATUSES:
            raise FieldError(f"status must be one of {', '.join(FORCE_STATUSES)}")
        if status == "gone":
            self.forget(vps)
            return
        if vps.deleted:
            raise FieldError("the VPS is deleted")
        if status == "deleted":
            self.delete(vps)
        elif status == "suspended":
            self.suspend(vps, reason or DEFAULT_SUSPENSION_REASON)
        elif status == "unsuspend":
            self.unsuspend(vps)
        else:
            if vps.deployment != COMPLETED:
                raise FieldError(f"the VPS's deployment is {vps.deployment}; only a deployed "
                                 "VPS can be forced running or stopped")
            now = self.clock.now()
            vps.pending_power = vps.pending_due = None
            if status != vps.power:
                vps.power = status
                vps.booted_sim = now if status == RUNNING else None
            vps.suspended, vps.suspension_reason = False, None
            vps.updated_at = time.time()

    # ---- snapshots -------------------------------------------------------------------

    def create_snapshot(self, vps: Vps, spec: SnapshotSpec) -> Snapshot:
        if any(s.name == spec.name for s in vps.snapshots):
            raise bad_request("SNAPSHOT_EXISTS", "Snapshot already exists",
                              f"A snapshot named '{spec.name}' already exists for this VPS")
        limit = self.settings.max_snapshots
        if limit and len(vps.snapshots) >= limit:
            raise bad_request("SNAPSHOT_LIMIT_REACHED", "Snapshot limit reached",
                              f"A VPS can have at most {limit} snapshots")
        snapshot = Snapshot(spec.name, spec.description, time.time(),
                            spec.include_ram and vps.power == RUNNING)
        vps.snapshots.append(snapshot)
        return snapshot

    # ---- billing ---------------------------------------------------------------------

    def _invoice(self, description: str, amount: Decimal, at: float) -> None:
        kind = "debit" if amount < 0 else "credit"
        self.invoices.append(Invoice(next(self._invoice_ids), description, amount, kind, at))
        self.account.balance += amount

    def _charge(self, vps: Vps, hours: int, at: float) -> Decimal:
        amount = vps.plan.price_hourly * hours
        label = f"VPS Hourly Charge - {vps.name}"
        if hours <= 24:
            for _ in range(hours):
                self._invoice(label, -vps.plan.price_hourly, at)
        else:  # a long gap (huge time scale): one line
            self._invoice(f"{label} ({hours} hours)", -amount, at)
        vps.last_billed = at
        return amount

    def _auto_fund(self, at: float) -> None:
        account = self.account
        if account.auto_funding_enabled and account.balance < account.auto_funding_threshold:
            self._invoice("Auto-funding", account.auto_funding_amount, at)

    def _bill(self, now: float) -> None:
        interval = self.settings.billing_interval
        if interval <= 0:
            return
        charged = False
        for vps in sorted(self.vps.values(), key=lambda v: v.id):
            if not vps.billable:
                continue
            hours = int((now - vps.billed_sim) // interval)
            if hours <= 0:
                continue
            vps.billed_sim += hours * interval
            self._charge(vps, hours, self.wall(vps.billed_sim, now))
            charged = True
        if charged:
            self._auto_fund(time.time())

    def charge_now(self, hours: int) -> Decimal:
        """The admin's "bill N hours now" for every billable VPS."""
        total = Decimal(0)
        at = time.time()
        for vps in sorted(self.vps.values(), key=lambda v: v.id):
            if vps.billable and hours > 0:
                total += self._charge(vps, hours, at)
        if total:
            self._auto_fund(at)
        return total

    def set_account(self, changes: Mapping[str, Any]) -> Account:
        """``ValueError`` on an unknown field or a bad value (nothing changed then)."""
        account = self.account
        plain = {"email", "full_name", "status", "registration_date"}
        flags = {"two_factor_enabled", "vps_ordering_enabled"}
        funding = {"auto_funding"}
        unknown = sorted(set(changes) - plain - flags - funding - {"balance"})
        if unknown:
            raise FieldError(f"unknown account field(s): {', '.join(unknown)}")
        updates: dict[str, Any] = {}
        if "balance" in changes:
            updates["balance"] = _money_value("balance", changes["balance"])
        for name in plain & set(changes):
            if not isinstance(changes[name], str) or not changes[name]:
                raise FieldError(f"{name} must be a non-empty string")
            updates[name] = changes[name]
        for name in flags & set(changes):
            if not isinstance(changes[name], bool):
                raise FieldError(f"{name} must be a boolean")
            updates[name] = changes[name]
        if "auto_funding" in changes:
            spec = changes["auto_funding"]
            if not isinstance(spec, dict) or set(spec) - {"enabled", "threshold", "amount"}:
                raise FieldError("auto_funding must be {enabled?, threshold?, amount?}")
            if "enabled" in spec:
                if not isinstance(spec["enabled"], bool):
                    raise FieldError("auto_funding.enabled must be a boolean")
                updates["auto_funding_enabled"] = spec["enabled"]
            for part in ("threshold", "amount"):
                if part in spec:
                    updates[f"auto_funding_{part}"] = _money_value(f"auto_funding.{part}",
                                                                   spec[part])
        for name, value in updates.items():
            setattr(account, name, value)
        return account

    def recent_invoices(self, limit: int = 10) -> Iterable[Invoice]:
        return list(reversed(self.invoices))[:limit]
