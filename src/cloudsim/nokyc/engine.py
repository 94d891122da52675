"""NoKYC's in-memory account and the asynchronous lifecycle behind the API.

One simulator is one account.  Server status flows (delays are simulated seconds, see
:class:`NoKycSettings`):

* create: ``provisioning`` -(provision_delay)-> ``installing`` -(install_delay)->
  ``running``.  The IPv4 address is reserved from the region's pool when provisioning
  ends (a region whose ``ipv4_pool_remaining`` is 0 stalls there until an address is
  freed or the pool knob is raised); ``ipv4`` and ``ipv6`` stay ``null`` until the
  server first reaches running and are kept from then on until it is destroyed.
* stop: ``running`` -(stop_delay)-> ``stopped``.  start: ``stopped`` -(boot_delay)->
  ``running``.  reboot: stays ``running``; ``server.rebooted`` after reboot_delay.
  The status does not change while such an operation is pending (the seed has no
  ``stopping``/``starting``), but a second operation meanwhile is a 409.
* rebuild / restore: ``installing`` at once -(install_delay)-> ``running``
  (``server.running`` then ``server.rebuilt``; a stopped server comes back running).
  ``image`` becomes the new image id, or for a restore the ``snap_…`` id ("rebuild from
  snap_…").
* DELETE: ``destroying`` -(destroy_delay)-> gone (``server.destroyed``; 404 and absent
  from lists).  Its addresses go back to the pool and it leaves every firewall group;
  its snapshots stay (their ``server`` is frozen); one still ``creating`` ends ``error``.
* ``suspended``: when the balance is at or below zero (the ``balance_usd`` knob, or the
  daily charge eating it), every running server is suspended (``server.suspended``),
  and a server that finishes booting is suspended instead of running.  Raising the
  balance above zero again moves suspended servers to ``stopped`` (no event); until
  then start is a 409 and create/start are 422.

Operations not allowed in the current status (or while another operation is pending)
are 409 ``conflict_state``.  Snapshots: ``creating`` -(snapshot_delay)-> ``ready``
(``snapshot.ready``, ``size_gb`` set) or ``error`` while ``fail_next_snapshots`` > 0.

Absolute timestamps (token and snapshot ``expires_at``) are compared with the wall
clock; every duration (delays, retry schedule, idempotency TTL, rate limits, the
30 s clock-skew tolerance, the daily charge) is simulated time.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import random
import re
import secrets
import string
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from ..common.clock import SimClock
from ..common.errors import ConfigError
from ..common.stats import RequestStats
from .catalog import IMAGES_BY_ID, PLANS_BY_ID, REGIONS, REGIONS_BY_ID
from .errors import NoKycError, conflict, not_found, problem, unprocessable
from .models import (
    SERVER_STATUSES,
    TOKEN_BODY_LENGTH,
    TOKEN_PREFIX,
    ApiToken,
    AuditEvent,
    FirewallGroup,
    FirewallRule,
    Server,
    Snapshot,
    SshKey,
    Webhook,
    new_token,
    rfc3339,
    token_digest,
)
from .validation import (
    GroupSpec,
    RuleSpec,
    ServerPatch,
    ServerSpec,
    SnapshotSpec,
    SshKeySpec,
    TokenSpec,
    WebhookSpec,
    scope_rank,
)
from .webhooks import RETRY_SCHEDULE, NoKycDispatcher

log = logging.getLogger(__name__)

TOKEN_PATTERN = re.compile(rf"^{TOKEN_PREFIX}[a-z0-9]{{{TOKEN_BODY_LENGTH}}}$")
_HEX = "0123456789abcdef"
_ALNUM = string.ascii_letters + string.digits
LAST_USED_GRANULARITY = 60.0  # "Updated at most once per minute"
DAY = 86400.0
AUDIT_RETENTION = 90 * DAY

# Knobs that are not plain non-negative numbers / integers / booleans.
_SPECIAL = {"balance_usd", "webhook_ca_file", "webhook_retry_schedule", "ip_country"}


@dataclass
class NoKycSettings:
    """Provider knobs, changeable at runtime through ``PUT /_sim/config``."""

    provision_delay: float = 20.0
    install_delay: float = 40.0
    boot_delay: float = 10.0
    stop_delay: float = 5.0
    reboot_delay: float = 10.0
    destroy_delay: float = 10.0
    snapshot_delay: float = 30.0
    fail_next_snapshots: int = 0
    balance_usd: float = 100.0
    charge_interval: float = DAY
    low_balance_days: float = 7.0
    allow_http_webhooks: bool = False
    webhook_ca_file: str | None = None
    webhook_timeout: float = 10.0
    webhook_retry_schedule: list[float] = field(default_factory=lambda: list(RETRY_SCHEDULE))
    token_skew_tolerance: float = 30.0
    ip_country: str = "ZZ"
    idempotency_ttl: float = DAY
    rate_burst: int = 10
    provisioning_rate_limit: int = 200
    provisioning_rate_burst: int = 200

    def to_json(self) -> dict[str, Any]:
        body = {f.name: getattr(self, f.name) for f in fields(self)}
        body["webhook_retry_schedule"] = list(self.webhook_retry_schedule)
        return body

    @classmethod
    def names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    def checked(self, changes: dict[str, Any]) -> dict[str, Any]:
        """The changes this class knows, validated (``ConfigError`` on a bad value)."""
        updates: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in self.names():
                continue
            current = getattr(self, key)
            if key == "balance_usd":
                if (
                    isinstance(value, bool) or not isinstance(value, int | float)
                    or not math.isfinite(value)
                ):
                    raise ConfigError("balance_usd must be a number")
                value = round(float(value), 2)
            elif key == "webhook_ca_file":
                if value is not None and (not isinstance(value, str) or not value):
                    raise ConfigError("webhook_ca_file must be a file path or null")
            elif key == "webhook_retry_schedule":
                if (
                    not isinstance(value, list) or not 1 <= len(value) <= 20
                    or any(isinstance(v, bool) or not isinstance(v, int | float) or v < 0
                           for v in value)
                ):
                    raise ConfigError("webhook_retry_schedule must be a list of 1-20 "
                                      "non-negative numbers (seconds after the previous "
                                      "attempt)")
                value = [float(v) for v in value]
            elif key == "ip_country":
                if not isinstance(value, str) or not re.fullmatch(r"[A-Z]{2}", value):
                    raise ConfigError("ip_country must be an ISO 3166-1 alpha-2 code")
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ConfigError(f"{key} must be a boolean")
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ConfigError(f"{key} must be a non-negative integer")
            elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{key} must be a non-negative number")
            else:
                value = float(value)
            updates[key] = value
        return updates


def _ipv6_prefix(region_id: str, index: int) -> ipaddress.IPv6Network:
    base = ipaddress.IPv6Network(REGIONS_BY_ID[region_id].ipv6_network)
    return ipaddress.IPv6Network((int(base.network_address) + (index << 64), 64))


class NoKycEngine:
    def __init__(
        self, clock: SimClock, stats: RequestStats, settings: NoKycSettings | None = None
    ) -> None:
        self.clock = clock
        self.settings = settings or NoKycSettings()
        self.servers: dict[str, Server] = {}
        self.ssh_keys: dict[str, SshKey] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self.groups: dict[str, FirewallGroup] = {}
        self.webhooks: dict[str, Webhook] = {}
        self.tokens: dict[str, ApiToken] = {}  # by id
        self._by_digest: dict[str, ApiToken] = {}
        self.audit: list[AuditEvent] = []
        self.ipv4_pool: dict[str, int] = {r.id: r.ipv4_pool for r in REGIONS}
        self._used_addresses: dict[str, set[str]] = {r.id: set() for r in REGIONS}
        self._ipv6_next: dict[str, int] = {r.id: 1 for r in REGIONS}
        self._ids: set[str] = set()
        self._seq = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._billing: asyncio.Task[None] | None = None
        self._started = False
        self._low_balance_warned = False
        self._accrued = 0.0  # USD used but not charged yet (less than a cent)
        self._random = random.Random()
        self.dispatcher = NoKycDispatcher(
            clock, stats, lookup=self._hook_target, on_gone=self._pause_webhook,
            new_delivery_id=lambda: self.new_id("del"),
        )

    # ---- ids, tasks, lifecycle ----------------------------------------------------------

    def new_id(self, prefix: str, length: int = 8) -> str:
        while True:
            candidate = f"{prefix}_" + "".join(secrets.choice(_HEX) for _ in range(length))
            if candidate not in self._ids:
                self._ids.add(candidate)
                return candidate

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._guard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @staticmethod
    async def _guard(coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in a lifecycle step must not vanish silently
            log.exception("cloudsim nokyc: background task failed")

    def _run_op(self, server: Server, op: str, coro: Coroutine[Any, Any, None]) -> None:
        self._cancel_op(server)
        server.op = op
        server.op_task = self.spawn(coro)

    @staticmethod
    def _cancel_op(server: Server) -> None:
        task = server.op_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
        server.op_task = None
        server.op = None

    async def start(self) -> None:
        self._started = True
        await self.dispatcher.start()
        self._restart_billing()

    async def stop(self) -> None:
        self._started = False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.dispatcher.stop()

    # ---- settings -----------------------------------------------------------------------

    def configure(self, changes: dict[str, Any]) -> None:
        """Apply validated knob changes with their side effects."""
        updates = self.settings.checked(changes)
        balance = updates.pop("balance_usd", None)
        for key, value in updates.items():
            setattr(self.settings, key, value)
        if balance is not None:
            self.set_balance(balance)
        if "charge_interval" in updates:
            self._restart_billing()

    def set_ipv4_pool(self, pools: Any) -> None:
        if not isinstance(pools, dict) or any(
            region not in REGIONS_BY_ID or isinstance(count, bool) or not isinstance(count, int)
            or count < 0 for region, count in pools.items()
        ):
            raise ConfigError("ipv4_pool_remaining must map region ids (par, rkv, zrh, buh) to "
                              "non-negative integers")
        self.ipv4_pool.update(pools)

    # ---- tokens and auth ----------------------------------------------------------------

    def add_token(
        self, plaintext: str, scope: str, *, name: str | None = None,
        expires_at: float | None = None,
    ) -> ApiToken:
        """Register (or update) a token known at startup or through the admin API."""
        if not TOKEN_PATTERN.match(plaintext):
            raise ValueError(
                f"token {plaintext[:16]!r}... is not nkv_live_ followed by 52 characters a-z0-9"
            )
        if scope not in ("read", "write", "billing"):
            raise ValueError(f"token scope must be read, write or billing, not {scope!r}")
        digest = token_digest(plaintext)
        existing = self._by_digest.get(digest)
        if existing is not None:
            existing.scope = scope
            existing.expires_at = expires_at
            if name is not None:
                existing.name = name
            return existing
        token_id = f"tok_{digest[:8]}"
        if token_id in self._ids:
            token_id = self.new_id("tok")
        self._ids.add(token_id)
        token = ApiToken(id=token_id, name=name or f"sandbox-{scope}", scope=scope,
                         digest=digest, expires_at=expires_at, seq=self.next_seq())
        self.tokens[token.id] = token
        self._by_digest[digest] = token
        return token

    def authenticate(self, plaintext: str) -> ApiToken:
        """The live token for ``plaintext``; a 401 ``NoKycError`` otherwise."""
        if not TOKEN_PATTERN.match(plaintext):
            raise NoKycError(401, "Malformed bearer token; expected nkv_live_<52 characters>.")
        token = self._by_digest.get(token_digest(plaintext))
        if token is None:
            raise NoKycError(401, "Unknown or revoked bearer token.")
        skew = self.clock.to_real(self.settings.token_skew_tolerance)
        if token.expires_at is not None and time.time() > token.expires_at + skew:
            raise NoKycError(401, f"Bearer token expired at {rfc3339(token.expires_at)}.")
        now = self.clock.now()
        if token.last_used_sim is None or now - token.last_used_sim >= LAST_USED_GRANULARITY:
            token.last_used_sim = now
            token.last_used_at = time.time()
        return token

    def create_token(self, spec: TokenSpec, actor: ApiToken) -> tuple[ApiToken, str]:
        if scope_rank(spec.scope) > scope_rank(actor.scope):
            raise NoKycError(403, f"A {actor.scope} token cannot mint a {spec.scope} token.",
                             [problem("scope", "exceeds_own_scope", max=actor.scope)])
        if spec.expires_at is not None and spec.expires_at <= time.time():
            raise unprocessable("expires_at must be in the future.",
                                problem("expires_at", "in_past"))
        plaintext = new_token()
        token = self.add_token(plaintext, spec.scope, name=spec.name, expires_at=spec.expires_at)
        token.created_at = time.time()
        self.emit("token.created", {"api_token": token.to_json()})
        return token, plaintext

    def token(self, token_id: str) -> ApiToken:
        token = self.tokens.get(token_id)
        if token is None:
            raise not_found("api_token", token_id)
        return token

    def revoke_token(self, token_id: str, actor: ApiToken) -> None:
        token = self.token(token_id)
        if scope_rank(token.scope) > scope_rank(actor.scope):
            raise NoKycError(403, f"A {actor.scope} token cannot revoke a {token.scope} token.")
        del self.tokens[token.id]
        self._by_digest.pop(token.digest, None)
        self.emit("token.revoked", {"api_token": token.to_json()})

    # ---- events -------------------------------------------------------------------------

    def _event_body(self, event_type: str, data: dict[str, Any]) -> tuple[str, bytes]:
        event_id = self.new_id("evt")
        payload = {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created_at": rfc3339(),
            "data": data,
        }
        return event_id, json.dumps(payload, separators=(",", ":")).encode()

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        hooks = sorted(
            (h for h in self.webhooks.values() if h.active and h.subscribed(event_type)),
            key=lambda h: h.seq,
        )
        if not hooks:
            return
        event_id, body = self._event_body(event_type, data)
        for hook in hooks:
            self.dispatcher.send(hook.id, event_type, event_id, body)

    def ping(self, hook: Webhook) -> Any:
        if not hook.active:
            raise conflict("The subscription is paused (active=false); activate it first.")
        event_id, body = self._event_body("ping", {"webhook": hook.to_json()})
        return self.dispatcher.send(hook.id, "ping", event_id, body)

    def _hook_target(self, webhook_id: str) -> tuple[str, str, bool] | None:
        hook = self.webhooks.get(webhook_id)
        return None if hook is None else (hook.url, hook.secret, hook.active)

    def _pause_webhook(self, webhook_id: str) -> None:
        hook = self.webhooks.get(webhook_id)
        if hook is not None:
            hook.active = False

    def _server_event(self, event_type: str, server: Server) -> None:
        self.emit(event_type, {"server": server.to_json()})

    # ---- servers --------------------------------------------------------------------------

    def server(self, server_id: str) -> Server:
        server = self.servers.get(server_id)
        if server is None:
            raise not_found("server", server_id)
        return server

    def _set_status(self, server: Server, status: str) -> None:
        previous = server.status
        server.status = status
        server.touch()
        if previous == status:
            return
        event = {"running": "server.running", "stopped": "server.stopped",
                 "suspended": "server.suspended"}.get(status)
        if event is not None:
            self._server_event(event, server)
        if status == "running" or previous == "running":
            self._check_low_balance()

    def _busy(self, server: Server, action: str) -> None:
        if server.op is not None:
            raise conflict(f"Cannot {action}: the server is busy ({server.op} in progress).",
                           problem("status", "busy", status=server.status, operation=server.op))

    def _need(self, server: Server, action: str, *statuses: str) -> None:
        if server.status not in statuses:
            raise conflict(
                f"Cannot {action} a server that is {server.status}; it must be "
                f"{' or '.join(statuses)}.",
                problem("status", "conflict", status=server.status, allowed=list(statuses)),
            )
        self._busy(server, action)

    def _check_balance(self, action: str) -> None:
        if self.settings.balance_usd <= 0:
            raise unprocessable(f"Cannot {action}: the account balance is "
                                f"{self.settings.balance_usd:.2f} USD; top up first.",
                                problem("balance", "insufficient"))

    def _check_image(self, image_id: str, field_name: str = "image") -> None:
        image = IMAGES_BY_ID[image_id]
        if image.deprecated_at is not None:
            raise unprocessable(
                f"Image {image_id} is deprecated since {image.deprecated_at} and read-only; "
                "choose a current image.",
                problem(field_name, "deprecated", deprecated_at=image.deprecated_at),
            )

    def create_server(self, spec: ServerSpec) -> Server:
        plan = PLANS_BY_ID[spec.plan]
        if spec.region not in plan.available_in:
            raise unprocessable(
                f"Plan {plan.id} is not available in region {spec.region}.",
                problem("plan", "unavailable_in_region", region=spec.region,
                        available_in=list(plan.available_in)),
            )
        self._check_image(spec.image)
        if spec.user_data_b64 is not None and not IMAGES_BY_ID[spec.image].cloud_init:
            raise unprocessable(
                f"Image {spec.image} does not ship cloud-init; user_data_b64 cannot be used.",
                problem("user_data_b64", "unsupported_by_image", image=spec.image),
            )
        self._check_balance("deploy")
        server = Server(
            id=self.new_id("srv"), name=spec.name, plan=spec.plan, region=spec.region,
            image=spec.image, ssh_keys=list(spec.ssh_keys), tags=list(spec.tags),
            labels=dict(spec.labels), user_data_b64=spec.user_data_b64, seq=self.next_seq(),
        )
        self.servers[server.id] = server
        self._server_event("server.created", server)
        self._run_op(server, "create", self._provision(server))
        return server

    async def _provision(self, server: Server) -> None:
        await self.clock.sleep(self.settings.provision_delay)
        while not self._reserve_network(server):  # the regional pool is empty: stall
            await self.clock.sleep(max(1.0, self.settings.provision_delay))
        self._set_status(server, "installing")
        await self.clock.sleep(self.settings.install_delay)
        self._come_up(server)

    def _come_up(self, server: Server, *, rebuilt: bool = False) -> None:
        """The end of a boot: running (or suspended when the balance ran out)."""
        server.op = None
        server.op_task = None
        self._reserve_network(server, force=True)
        self._show_network(server)
        if self.settings.balance_usd <= 0:
            self._set_status(server, "suspended")
            return
        self._set_status(server, "running")
        if rebuilt:
            self._server_event("server.rebuilt", server)

    def _reserve_network(self, server: Server, *, force: bool = False) -> bool:
        if server.address is not None:
            return True
        if self.ipv4_pool[server.region] <= 0 and not force:
            return False
        region = REGIONS_BY_ID[server.region]
        used = self._used_addresses[region.id]
        hosts = ipaddress.IPv4Network(region.ipv4_network).hosts()
        next(hosts)  # the gateway
        address = next((str(h) for h in hosts if str(h) not in used), None)
        if address is None:
            return False
        used.add(address)
        self.ipv4_pool[region.id] = max(0, self.ipv4_pool[region.id] - 1)
        server.address = address
        server.ipv6_index = self._ipv6_next[region.id]
        self._ipv6_next[region.id] += 1
        return True

    def _show_network(self, server: Server) -> None:
        if server.address is None or server.ipv6_index is None:
            return
        region = REGIONS_BY_ID[server.region]
        gateway = str(next(ipaddress.IPv4Network(region.ipv4_network).hosts()))
        if server.ipv4 is None:
            server.ipv4 = {"address": server.address, "gateway": gateway, "rdns": None}
        if server.ipv6 is None:
            prefix = _ipv6_prefix(server.region, server.ipv6_index)
            server.ipv6 = {"address": str(prefix.network_address + 1), "prefix": str(prefix),
                           "rdns": None}

    def _release_network(self, server: Server) -> None:
        if server.address is not None:
            self._used_addresses[server.region].discard(server.address)
            self.ipv4_pool[server.region] += 1
        server.address = None
        server.ipv4 = None
        server.ipv6 = None

    def update_server(self, server: Server, patch: ServerPatch) -> Server:
        if server.status == "destroying":
            raise conflict("Cannot update a server that is destroying.",
                           problem("status", "conflict", status=server.status))
        if patch.name is not None:
            server.name = patch.name
        if patch.tags is not None:
            server.tags = list(patch.tags)
        if patch.labels is not None:
            server.labels = dict(patch.labels)
        server.touch()
        return server

    def stop_server(self, server: Server) -> None:
        self._need(server, "stop", "running")
        self._run_op(server, "stop", self._stop(server))

    async def _stop(self, server: Server) -> None:
        await self.clock.sleep(self.settings.stop_delay)
        server.op = None
        server.op_task = None
        self._set_status(server, "stopped")

    def start_server(self, server: Server) -> None:
        if server.status == "suspended":
            raise conflict("Cannot start a suspended server: the balance ran out; top up "
                           "first.", problem("status", "suspended", status="suspended"))
        self._need(server, "start", "stopped")
        self._check_balance("start")
        self._run_op(server, "start", self._start(server))

    async def _start(self, server: Server) -> None:
        await self.clock.sleep(self.settings.boot_delay)
        self._come_up(server)

    def reboot_server(self, server: Server, *, hard: bool) -> None:
        self._need(server, "reboot", "running")
        delay = self.settings.reboot_delay / (2 if hard else 1)
        self._run_op(server, "reboot", self._reboot(server, delay))

    async def _reboot(self, server: Server, delay: float) -> None:
        await self.clock.sleep(delay)
        server.op = None
        server.op_task = None
        server.touch()
        self._server_event("server.rebooted", server)

    def _disk_idle(self, server: Server, action: str) -> None:
        if any(s.server == server.id and s.status == "creating" for s in self.snapshots.values()):
            raise conflict(f"Cannot {action} while a snapshot of this server is being taken.",
                           problem("status", "snapshot_in_progress", status=server.status))

    def rebuild_server(self, server: Server, image: str) -> None:
        self._need(server, "rebuild", "running", "stopped")
        self._disk_idle(server, "rebuild")
        self._check_image(image)
        server.image = server.base_image = image
        self._set_status(server, "installing")
        self._run_op(server, "rebuild", self._reinstall(server))

    async def _reinstall(self, server: Server) -> None:
        await self.clock.sleep(self.settings.install_delay)
        self._come_up(server, rebuilt=True)

    def restore_server(self, server: Server, snapshot_id: str) -> None:
        snap = self.snapshots[snapshot_id]
        self._need(server, "restore", "running", "stopped")
        self._disk_idle(server, "restore")
        if snap.status != "ready":
            raise conflict(f"Snapshot {snap.id} is {snap.status}, not ready.",
                           problem("snapshot", "not_ready", status=snap.status))
        disk = PLANS_BY_ID[server.plan].disk_gb
        if snap.source_disk_gb > disk:
            raise unprocessable(
                f"Snapshot {snap.id} is of a {snap.source_disk_gb} GB disk; plan {server.plan} "
                f"has {disk} GB.",
                problem("snapshot", "disk_too_small", disk_gb=disk),
            )
        # "rebuild from snap_…": the server's image becomes the snapshot it came from.
        server.image = snap.id
        server.base_image = snap.source_image
        self._set_status(server, "installing")
        self._run_op(server, "restore", self._reinstall(server))

    def set_rdns(self, server: Server, values: dict[str, str | None]) -> Server:
        if server.status == "destroying" or server.ipv4 is None or server.ipv6 is None:
            raise conflict("Reverse DNS needs a server that has its addresses (it has reached "
                           "running at least once) and is not destroying.",
                           problem("status", "conflict", status=server.status))
        for family, value in values.items():
            target = server.ipv4 if family == "ipv4" else server.ipv6
            target["rdns"] = value
        server.touch()
        return server

    def destroy_server(self, server: Server) -> None:
        if server.status == "destroying":
            raise conflict("The server is already being destroyed.",
                           problem("status", "conflict", status="destroying"))
        self._cancel_op(server)
        self._set_status(server, "destroying")
        self._run_op(server, "destroy", self._destroy(server))

    async def _destroy(self, server: Server) -> None:
        await self.clock.sleep(self.settings.destroy_delay)
        self._finish_destroy(server)

    def _finish_destroy(self, server: Server) -> None:
        server.op = None
        server.op_task = None
        for group in self.groups.values():
            if server.id in group.applied_to:
                group.applied_to.remove(server.id)
        for snap in self.snapshots.values():
            if snap.server == server.id and snap.status == "creating":
                if snap.task is not None:
                    snap.task.cancel()
                snap.status = "error"
        self._release_network(server)
        server.status = "destroying"
        server.touch()
        self.servers.pop(server.id, None)
        self._server_event("server.destroyed", server)

    def force_state(self, server: Server, state: str) -> None:
        """Admin: put a server into ``state`` as if the platform did it out of band."""
        if state not in (*SERVER_STATUSES, "gone"):
            raise NoKycError(400, f"state must be one of {', '.join(SERVER_STATUSES)} or gone")
        self._cancel_op(server)
        if state == "gone":
            self._finish_destroy(server)
            return
        if state == "destroying":
            self.destroy_server(server)
            return
        if state in ("running", "stopped", "suspended"):
            self._reserve_network(server, force=True)
            self._show_network(server)
        self._set_status(server, state)

    # ---- balance ------------------------------------------------------------------------

    def _daily_cost(self) -> tuple[int, float]:
        running = [s for s in self.servers.values() if s.status == "running"]
        hourly = sum(PLANS_BY_ID[s.plan].price_usd_hour for s in running)
        return len(running), round(hourly * 24, 2)

    def balance_json(self) -> dict[str, Any]:
        active, daily = self._daily_cost()
        usd = round(self.settings.balance_usd, 2)
        now = time.time()
        runway: str | None = None
        low: str | None = None
        if daily > 0:
            days = max(0.0, usd / daily)
            until = now + days * DAY
            runway = datetime.fromtimestamp(until, UTC).date().isoformat()
            low = rfc3339(max(now, until - self.settings.low_balance_days * DAY))
        return {
            "object": "balance",
            "usd": usd,
            "as_of": rfc3339(now),
            "runway_until": runway,
            "active_servers": active,
            "daily_cost_usd": daily,
            "low_balance_at": low,
        }

    def set_balance(self, usd: float) -> None:
        previous = self.settings.balance_usd
        self.settings.balance_usd = round(usd, 2)
        if self.settings.balance_usd <= 0:
            for server in sorted(self.servers.values(), key=lambda s: s.seq):
                if server.status == "running":
                    self._cancel_op(server)
                    self._set_status(server, "suspended")
        elif previous <= 0:
            for server in self.servers.values():
                if server.status == "suspended":
                    self._set_status(server, "stopped")
        self._check_low_balance()

    def _check_low_balance(self) -> None:
        _, daily = self._daily_cost()
        low = daily > 0 and self.settings.balance_usd / daily < self.settings.low_balance_days
        if low and not self._low_balance_warned:
            self._low_balance_warned = True
            self.emit("billing.low_balance", {"balance": self.balance_json()})
        elif not low:
            self._low_balance_warned = False

    def charge(self, seconds: float) -> float:
        """Charge running servers for ``seconds`` of simulated time; the amount."""
        hourly = sum(PLANS_BY_ID[s.plan].price_usd_hour
                     for s in self.servers.values() if s.status == "running")
        # Whole cents are charged; the fraction carries over to the next charge.
        self._accrued += hourly * seconds / 3600
        amount = math.floor(self._accrued * 100 + 1e-9) / 100
        self._accrued = max(0.0, self._accrued - amount)
        if amount <= 0:
            return 0.0
        self.settings.balance_usd = round(self.settings.balance_usd - amount, 2)
        self.emit("billing.charged", {"balance": self.balance_json(), "amount_usd": amount})
        self.set_balance(self.settings.balance_usd)
        return amount

    def _restart_billing(self) -> None:
        if self._billing is not None:
            self._billing.cancel()
            self._billing = None
        if self._started and self.settings.charge_interval > 0:
            self._billing = self.spawn(self._billing_loop(self.settings.charge_interval))

    async def _billing_loop(self, interval: float) -> None:
        while True:
            await self.clock.sleep(interval)
            self.charge(interval)

    # ---- SSH keys -----------------------------------------------------------------------

    def create_ssh_key(self, spec: SshKeySpec) -> SshKey:
        for key in self.ssh_keys.values():
            if key.fingerprint == spec.fingerprint:
                raise conflict(f"This key is already registered as {key.id}.",
                               problem("public_key", "duplicate", existing=key.id,
                                       fingerprint=key.fingerprint))
        key = SshKey(id=self.new_id("k"), name=spec.name, type=spec.type,
                     fingerprint=spec.fingerprint, public_key=spec.public_key,
                     seq=self.next_seq())
        self.ssh_keys[key.id] = key
        return key

    def ssh_key(self, key_id: str) -> SshKey:
        key = self.ssh_keys.get(key_id)
        if key is None:
            raise not_found("ssh_key", key_id)
        return key

    # ---- snapshots ----------------------------------------------------------------------

    def snapshot(self, snapshot_id: str) -> Snapshot:
        snap = self.snapshots.get(snapshot_id)
        if snap is None:
            raise not_found("snapshot", snapshot_id)
        return snap

    def create_snapshot(self, server: Server, spec: SnapshotSpec) -> Snapshot:
        self._need(server, "snapshot", "running", "stopped")
        self._disk_idle(server, "take another snapshot")
        if spec.expires_at is not None and spec.expires_at <= time.time():
            raise unprocessable("expires_at must be in the future.",
                                problem("expires_at", "in_past"))
        snap = Snapshot(id=self.new_id("snap"), server=server.id, name=spec.name,
                        seq=self.next_seq(), source_image=server.base_image,
                        source_disk_gb=PLANS_BY_ID[server.plan].disk_gb,
                        expires_at=spec.expires_at)
        self.snapshots[snap.id] = snap
        snap.task = self.spawn(self._complete_snapshot(snap))
        if snap.expires_at is not None:
            snap.expiry_task = self.spawn(self._expire_snapshot(snap))
        return snap

    async def _complete_snapshot(self, snap: Snapshot) -> None:
        await self.clock.sleep(self.settings.snapshot_delay)
        if self.settings.fail_next_snapshots > 0:
            self.settings.fail_next_snapshots -= 1
            snap.status = "error"
            return
        base = IMAGES_BY_ID[snap.source_image].size_gb
        snap.size_gb = round(base + self._random.uniform(0.1, 1.5), 1)
        snap.status = "ready"
        self.emit("snapshot.ready", {"snapshot": snap.to_json()})

    async def _expire_snapshot(self, snap: Snapshot) -> None:
        assert snap.expires_at is not None
        await asyncio.sleep(max(0.0, snap.expires_at - time.time()))  # wall-clock date
        if self.snapshots.get(snap.id) is snap:
            self._drop_snapshot(snap)

    def _drop_snapshot(self, snap: Snapshot) -> None:
        for task in (snap.task, snap.expiry_task):
            if task is not None and not task.done() and task is not asyncio.current_task():
                task.cancel()
        self.snapshots.pop(snap.id, None)

    def delete_snapshot(self, snap: Snapshot) -> None:
        if snap.status == "creating":
            raise conflict("The snapshot is still being taken; delete it once it is ready.",
                           problem("status", "conflict", status="creating"))
        self._drop_snapshot(snap)

    # ---- firewall -----------------------------------------------------------------------

    def group(self, group_id: str) -> FirewallGroup:
        group = self.groups.get(group_id)
        if group is None:
            raise not_found("firewall_group", group_id)
        return group

    def _rules(self, specs: Iterable[RuleSpec]) -> list[FirewallRule]:
        return [FirewallRule(id=self.new_id("fwr"), direction=s.direction, proto=s.proto,
                             port=s.port, source=s.source, action=s.action, note=s.note)
                for s in specs]

    def _check_targets(self, server_ids: Iterable[str]) -> None:
        for index, server_id in enumerate(server_ids):
            if self.servers[server_id].status == "destroying":
                raise conflict(f"Server {server_id} is being destroyed.",
                               problem(f"applied_to[{index}]", "conflict", status="destroying"))

    def _applied(self, group: FirewallGroup, server_ids: Iterable[str]) -> None:
        for server_id in server_ids:
            server = self.servers.get(server_id)
            if server is not None:
                self.emit("firewall.applied",
                          {"firewall_group": group.to_json(), "server": server.to_json()})

    def create_group(self, spec: GroupSpec) -> FirewallGroup:
        applied = list(spec.applied_to or [])
        self._check_targets(applied)
        assert spec.name is not None
        group = FirewallGroup(id=self.new_id("fwg"), name=spec.name,
                              default_action=spec.default_action or "drop", seq=self.next_seq(),
                              applied_to=applied, rules=self._rules(spec.rules or []))
        self.groups[group.id] = group
        self._applied(group, applied)
        return group

    def update_group(self, group: FirewallGroup, spec: GroupSpec) -> FirewallGroup:
        added: list[str] = []
        if spec.applied_to is not None:
            self._check_targets(s for s in spec.applied_to if s not in group.applied_to)
            added = [s for s in spec.applied_to if s not in group.applied_to]
        if spec.name is not None:
            group.name = spec.name
        if spec.default_action is not None:
            group.default_action = spec.default_action
        if spec.applied_to is not None:
            group.applied_to = list(spec.applied_to)
        self._applied(group, added)
        return group

    def delete_group(self, group: FirewallGroup) -> None:
        if group.applied_to:
            raise conflict(
                f"The group is applied to {len(group.applied_to)} server(s); remove them from "
                "applied_to first.",
                problem("applied_to", "not_empty", applied_to=list(group.applied_to)),
            )
        del self.groups[group.id]

    def append_rule(self, group: FirewallGroup, spec: RuleSpec) -> FirewallGroup:
        group.rules.extend(self._rules([spec]))
        return group

    def replace_rules(self, group: FirewallGroup, specs: list[RuleSpec]) -> FirewallGroup:
        group.rules = self._rules(specs)
        return group

    def delete_rule(self, group: FirewallGroup, rule_id: str) -> FirewallGroup:
        kept = [r for r in group.rules if r.id != rule_id]
        if len(kept) == len(group.rules):
            raise not_found("firewall rule", rule_id)
        group.rules = kept
        return group

    # ---- webhooks -----------------------------------------------------------------------

    def webhook(self, webhook_id: str) -> Webhook:
        hook = self.webhooks.get(webhook_id)
        if hook is None:
            raise not_found("webhook", webhook_id)
        return hook

    def create_webhook(self, spec: WebhookSpec) -> Webhook:
        assert spec.url is not None and spec.events is not None
        secret = "whsec_" + "".join(secrets.choice(_ALNUM) for _ in range(32))
        hook = Webhook(id=self.new_id("whk"), url=spec.url, events=list(spec.events),
                       secret=secret, seq=self.next_seq(),
                       active=True if spec.active is None else spec.active)
        self.webhooks[hook.id] = hook
        return hook

    def update_webhook(self, hook: Webhook, spec: WebhookSpec) -> Webhook:
        if spec.url is not None:
            hook.url = spec.url
        if spec.events is not None:
            hook.events = list(spec.events)
        if spec.active is not None:
            hook.active = spec.active
        return hook

    def delete_webhook(self, hook: Webhook) -> None:
        del self.webhooks[hook.id]
        self.dispatcher.forget_endpoint(hook.id)

    # ---- audit --------------------------------------------------------------------------

    def record(self, action: str, resource: str | None, token: ApiToken, request_id: str,
               result: str) -> AuditEvent:
        event = AuditEvent(id=self.new_id("audit"), action=action, resource=resource,
                           actor_token=token.id, request_id=request_id,
                           ip_country=self.settings.ip_country, result=result,
                           seq=self.next_seq(), at_sim=self.clock.now())
        cutoff = event.at_sim - AUDIT_RETENTION
        if self.audit and self.audit[0].at_sim < cutoff:
            self.audit = [e for e in self.audit if e.at_sim >= cutoff]
        self.audit.append(event)
        return event
