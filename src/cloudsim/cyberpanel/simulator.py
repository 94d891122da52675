"""The CyberPanel Cloud simulator: :class:`CyberPanelSimulator`, faithful to the
CyberPanel Cloud Platform VPS API document (v1.0.0, platform.cyberpersons.com).

Run it in-process (``async with CyberPanelSimulator("cyp_live_<64 hex>") as sim``;
``sim.url`` ends in ``/api/v1``), in a background thread
(``cloudsim.testing.running_simulator("cyberpanel", ...)``) or alone (``python -m
cloudsim cyberpanel --port 8085 --api-key cyp_live_<64 hex>[:SCOPES] [--balance 150]``).
One simulator is one account (``user@example.com``, id 123); every key belongs to it.

Wire.  Base ``/api/v1``.  Success ``{"success": true, "data": {...}, "message": "..."}``
(``message`` only where the seed shows one); every error, including unknown routes
(404 ``NOT_FOUND``), 405 ``METHOD_NOT_ALLOWED`` (with ``Allow``), 413
``PAYLOAD_TOO_LARGE`` (bodies over 1 MiB), malformed or non-object JSON bodies (400
``INVALID_JSON``), unexpected failures (500 ``INTERNAL_ERROR``) and injected ``status``
faults (``error_code`` by status: 500 ``INTERNAL_ERROR``, 502 ``BAD_GATEWAY``, 503
``SERVICE_UNAVAILABLE`` + ``Retry-After: 1``, 429 ``RATE_LIMIT_EXCEEDED``, other 4xx
``BAD_REQUEST``...; message ``Injected fault (N)``), is ``{"success": false, "error":
short description, "error_code": CODE, "message": explanation}``.  Timestamps are
wall-clock UTC ``YYYY-MM-DDTHH:MM:SSZ``; money is a string (balances 2 decimals, hourly
rates and invoice amounts 4).  Routing happens before authentication: an unknown path
is a 404 with or without a key.

Endpoints (scope in brackets; ``-`` none, ``*`` any valid key): ``GET /health`` [-],
``GET /scopes`` [-] (the seed's seven), ``GET /test`` [*], ``GET /account``
[account:read], ``GET /billing`` [billing:read], ``GET /account/api-keys``
[account:read], ``GET /account/api-keys/{key_id}/usage`` [account:read] (``limit``
1..100, default 50, ``offset``; newest first; 404 ``KEY_NOT_FOUND`` for an unknown or
non-integer id), ``GET /vps`` [vps:read] (``status``, ``location``, ``limit`` 1..100
default 50, ``offset``; newest first; deleted VPSes are not listed), ``GET /vps/summary``,
``GET /vps/plans``, ``GET /vps/locations``, ``GET /vps/templates`` [vps:read],
``POST /vps/create`` [vps:write], ``GET /vps/{id}``, ``GET /vps/{id}/status``,
``GET /vps/{id}/deployment``, ``GET /vps/{id}/console``, ``GET /vps/{id}/snapshots``
[vps:read], ``POST /vps/{id}/start|stop|restart``, ``POST /vps/{id}/snapshots/create``
[vps:write], ``POST /vps/{id}/delete`` [vps:write or vps:delete].  ``all`` grants every
scope.  The fixed ``/vps/...`` paths are never taken for an id; an id that is not a
non-negative integer, or unknown, is 404 ``VPS_NOT_FOUND`` (``GET /vps/create`` is 405).
A limit or offset that is not an integer is 400 ``INVALID_PARAMETER``; out-of-range
values are clamped (limit to 1..100, offset to >= 0) and ``pagination.limit`` shows the
value used.  Unknown status / location filters simply match nothing (``status`` takes
every status word: deploying, running, stopped, suspended, failed).  ``/vps/summary``
counts the listed (non-deleted) VPSes; ``total_monthly_cost`` sums their plans' monthly
prices except for failed deployments; ``locations`` lists only codes in use.

Auth.  ``Authorization: Bearer cyp_live_<64 lowercase hex>``, checked in this order:
no header, an empty header or an empty Bearer value -> 401 ``NO_API_KEY``; another
scheme, a malformed key or an unknown one -> 401 ``INVALID_API_KEY``; deactivated -> 401
``INACTIVE_API_KEY``; ``expires_at`` (wall clock) passed -> 401 ``EXPIRED_API_KEY``; a
non-empty ``ip_whitelist`` (addresses or CIDR networks) without the client address (the
TCP peer; ``X-Forwarded-For`` is not trusted) -> 403 ``IP_NOT_ALLOWED``; then the rate
limits; then the scope -> 403 ``INSUFFICIENT_SCOPE`` naming the required scope(s) in
the message.  Keys are kept SHA-256 hashed; ``key_prefix`` is the first 12 characters.
Keys given to the constructor or the CLI are named ``API Key N`` (id N, from 1).

Rate limits (:mod:`.ratelimit`).  Per key, on every authenticated request (reads too,
and requests that then fail the scope check), two sliding windows: per minute (the key's
``rate_limit_per_minute``, else the common ``rate_limit`` knob, 60; window
``rate_window_seconds``, 60) and per hour (the key's ``rate_limit_per_hour``, else the
``rate_limit_per_hour`` knob, 1000; 3600 s).  Windows are simulated seconds; a key limit
of 0 turns that window off for the key; ``rate_limit`` 0 turns every limit off (no
headers then), for benchmarks.  ``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (a
unix timestamp, as the seed's example is; real time) go on every authenticated answer
and describe the minute window, or the hour window when it has fewer requests
remaining.  Over a limit -> 429 ``RATE_LIMIT_EXCEEDED`` "You have exceeded the per
minute rate limit. Please retry after N seconds." (``per hour`` when the hour window
rejects; when both do, the one that frees up later is named) with ``Retry-After: N``
(real seconds, >= 1, until the request would be admitted).
Rejected requests consume no budget and are not counted or logged.  Answers without a
valid key (401/403 auth errors, /health, /scopes, unknown routes) carry no rate-limit
headers.  Every admitted request bumps the key's ``request_count`` (``GET /test``
includes itself), ``last_used_at`` / ``last_used_ip``, and appends a usage log entry
``{endpoint (the request path), method, ip_address, response_status, response_time_ms,
created_at}`` (the last 10000 per key).

Create (``POST /vps/create``), checked in this order, the first failure answers (all
400 unless noted): ``MISSING_FIELDS`` (absent, null or blank; the message lists every
missing one of hostname, plan_id, location_code, template_id, root_password);
``INVALID_HOSTNAME`` (an FQDN: >= 2 dot-separated labels of 1-63 ``[a-z0-9-]`` not
starting or ending with ``-``, <= 253 characters; surrounding blanks are stripped and it
is lowercased, and that is the VPS's ``name``); ``PLAN_NOT_FOUND`` (``plan_id`` must be
a JSON integer, or an integral float like ``1.0``, of a known plan: the string ``"1"``
is refused); ``LOCATION_NOT_FOUND`` (unknown code, matched case-insensitively; also a
known location that is unavailable or has no free IP); ``INVALID_TEMPLATE`` (``template_id`` a string of the
catalogue; a JSON integer is accepted as its string); ``INVALID_FIELDS`` for a
non-string root_password; ``PASSWORD_TOO_SHORT`` (< 8), ``PASSWORD_TOO_LONG`` (> 72),
``PASSWORD_WEAK`` (needs a letter and a digit); ``INVALID_WEBHOOK_URL`` (``webhook_url``
must be an absolute http(s) URL with a host); ``INVALID_FIELDS`` (``webhook_secret`` or
``ssh_key`` not a string); ``INVALID_SSH_KEY`` (``ssh_key`` must start with an OpenSSH
key type and a blank, e.g. ``ssh-rsa AAAA...``; the key material is not decoded, so the
seed's ``ssh-rsa AAAAB3NzaC1yc2E...`` passes); 403 ``VPS_ORDERING_DISABLED`` when the
account's ``vps_ordering_enabled`` is false (``PUT /_sim/account``);
``INSUFFICIENT_BALANCE`` (balance below one hour of the plan, or below $20.00 for the
Windows template 9125).  Unknown fields are ignored.  Duplicate hostnames are allowed
(the platform does not dedupe).  201 with the seed's body: ``status: "deploying"``, the
IP allocated from the location's pool at once, ``deployment_url``,
``estimated_time_seconds`` (= ``deploy_delay``), ``webhook_configured``.  VPS ids count
from 1, ``vmid`` (reserved at create) from 101.  The root password is kept only as a
SHA-256 digest; it and ``webhook_secret`` are never returned by any endpoint, the admin
API or the request log.  Create does not charge anything up front.

Deployment.  The seed's ten tasks in order (validate_resources, allocate_ip, create_vm,
configure_hardware, apply_cloud_init, start_vm, configure_network,
wait_for_guest_agent, verify_connectivity, finalize), ``deploy_delay`` simulated seconds
in all (180), split evenly.  ``GET /vps/{id}/deployment`` (always 200) answers the
seed's in-progress shape (``current_task`` = the task in progress, ``progress_percent``
= completed x 10, ``tasks`` with ``completed`` / ``in_progress`` / ``pending``,
``is_ready: false``, no message) and, once done, the seed's completed shape (no
``tasks`` list; ``completed_at``, ``access_info {ip_address, ssh_port: 22, ssh_user:
"root"}`` for every template, message "VPS deployment completed successfully";
``vps_status`` is the VPS's status now).  The VPS is ``deploying`` until the last task
ends, then ``running``.  Failure knob: with ``fail_next_deployments`` N > 0 the next N
creates (the counter goes down at each) fail when they reach ``fail_at_task``: at the
end of that task's slot the deployment is ``failed``, that task ``failed``, the later
ones ``pending``, ``current_task`` = that task, the VPS ``failed``; the answer (the
in-progress shape plus ``failed_at``, ``error_code: "DEPLOYMENT_FAILED"``,
``error_message: "Deployment failed at task '<task>': <reason>"``, message "VPS
deployment failed at task '<task>'") is still 200 ``success: true``.  A failed VPS keeps
its IP, is not billed, and can only be read or deleted.  ``GET /vps/{id}/status`` of a
failed VPS is 500 ``STATUS_FAILED``; of a deploying one it reports ``status:
"deploying"`` and ``qmpstatus`` ``running`` once ``start_vm`` has completed.

Actions.  start / stop / restart / console / snapshot create on a VPS that is: deleted
-> 400 ``VPS_DELETED``; suspended -> 403 ``VPS_SUSPENDED`` "VPS is suspended:
<reason>"; failed -> 500 ``DEPLOYMENT_FAILED``; deploying -> 400 ``VPS_DEPLOYING``
(checked in that order).  Power: the answer is the seed's, with the target status at
once (``running`` for start and restart, ``stopped`` for stop), because the platform
answers after it has told Proxmox; the VPS itself (``GET /vps/{id}``, lists, live
status) changes only after ``start_delay`` / ``stop_delay`` / ``restart_delay``
simulated seconds (3 / 3 / 5; a restart keeps ``running`` throughout and resets the
uptime).  Start on a running VPS and stop on a stopped one are idempotent successes
(message "VPS is already running" / "... stopped"); restart on a stopped VPS boots it;
a new action replaces one still pending.  Console works on a stopped VPS too (the URL
``https://<node>:8006/?console=kvm&novnc=1&vmid=<vmid>&node=<node>``, 300 s).  Live
status metrics are synthetic but stable (usage from the VPS id, counters growing with
the simulated uptime; zeros and ``pid: null`` when not running).

Delete (``POST /vps/{id}/delete``).  Allowed for running, stopped, deploying (the
deployment stops and no webhook fires) and failed VPSes; a suspended one is 403
``VPS_SUSPENDED``.  Immediate: the seed's answer, the VPS leaves lists and the summary,
billing stops (no charge for the partial hour), its IP goes back to the pool and its
snapshots are gone; afterwards every endpoint of it answers 400 ``VPS_DELETED`` and a
second delete 400 ``VPS_ALREADY_DELETED``.

Suspension (admin only).  ``status: "suspended"``, ``is_suspended: true`` and
``suspension_reason`` in ``GET /vps/{id}`` (the key is there only while suspended);
suspending stops the VM (and drops a pending power action); reads work; every action,
delete included, is 403 ``VPS_SUSPENDED`` with the reason in the message; the list's
``status=suspended`` filter finds it; a suspended VPS is still billed.  Unsuspending
leaves it ``stopped`` (the owner starts it again); a VPS suspended while deploying goes
on deploying underneath and ends stopped.

Billing.  Balance starts at 150.00 (``--balance`` / ``balance=`` / ``PUT
/_sim/account``).  Every ``billing_interval`` simulated seconds (3600; 0 = never) after
its creation, each billable VPS (not deleted, deployment not failed: deploying, running,
stopped and suspended ones) is charged its plan's hourly rate: the balance goes down by
that exact amount (kept with 4+ decimals, shown with 2) and an invoice ``{id,
description: "VPS Hourly Charge - <name>", amount: "-0.0082", type: "debit", date}`` is
recorded (more than 24 hours due at once make one line "... (N hours)").
``/billing`` shows the 10 newest invoices; ``billing.last_billed`` of a VPS is its last
charge (its creation before the first).  The balance may go negative (nothing is
suspended for it).  Auto-funding (off by default; ``PUT /_sim/account {"auto_funding":
{"enabled": true}}``): after a charge, a balance below ``threshold`` (10.00) gets
``amount`` (50.00) added with a ``credit`` invoice "Auto-funding".

Snapshots.  ``GET`` lists ``{name, description, created_at, vmstate}`` oldest first;
``POST .../snapshots/create {"name", "description"?, "include_ram"?}`` is synchronous
(201, the seed's body): ``name`` required (400 ``MISSING_FIELDS``), 1-40 characters of
``[A-Za-z0-9_]`` (else 400 ``INVALID_SNAPSHOT_NAME``), unique per VPS (else 400
``SNAPSHOT_EXISTS``), at most ``max_snapshots`` per VPS (10; 0 = unlimited; else 400
``SNAPSHOT_LIMIT_REACHED``); ``description`` defaults to ``""`` (a non-string or one
over 255 characters is 400 ``INVALID_FIELDS``); ``vmstate`` is ``include_ram`` and the
VM running (a stopped VM has no RAM to save).  There is no delete or restore endpoint.

Webhooks (:mod:`.webhooks`).  A create with ``webhook_url`` gets one POST when its
deployment completes or fails: ``{"event": "vps.deployment.completed" |
"vps.deployment.failed", "timestamp", "data": {vps_id, name, status (the VPS's:
"running", or "failed"), ip_address, deployment_time_seconds (simulated)}}``, failed ones adding
``failed_task`` and ``error``; ``X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret,
exact body bytes)>`` only when ``webhook_secret`` was given; ``Content-Type:
application/json``.  A non-2xx answer, an error or no answer within ``webhook_timeout``
(10) is retried ``webhook_retries`` (3) more times ``webhook_retry_delay`` (30)
simulated seconds apart.  Plain http URLs are allowed (the seed does not forbid them).

Knobs (``GET/PUT /_sim/config``; durations in simulated seconds): the common
``time_scale``, ``latency_ms``, ``rate_limit`` (per-minute limit of keys without their
own, 60; 0 = every limit off), ``rate_window_seconds`` (the per-minute window, 60); and
``deploy_delay`` (180), ``start_delay`` (3), ``stop_delay`` (3), ``restart_delay`` (5),
``fail_next_deployments`` (0), ``fail_at_task`` ("create_vm"; one of the ten tasks),
``billing_interval`` (3600), ``rate_limit_per_hour`` (hourly limit of keys without
their own, 1000), ``max_snapshots`` (10), ``webhook_timeout`` (10), ``webhook_retries``
(3), ``webhook_retry_delay`` (30), ``tick_interval`` (real seconds between background
ticks that fire due deployments, power changes and charges, 0.05).

Admin endpoints (no auth; besides the common ``/_sim`` ones: health, config, faults,
stats, requests, ratelimit):

* ``GET /_sim/keys`` -> ``{"keys": [metadata as /account/api-keys shows it +
  usage_logs (count)]}`` (never the plaintext).  ``POST /_sim/keys {"key"?, "name"?,
  "scopes"? (list or comma string, default ["all"]), "is_active"?, "ip_whitelist"?,
  "expires_at"? (ISO 8601, unix seconds or null), "expires_in"? (simulated seconds from
  now), "rate_limit_per_minute"?, "rate_limit_per_hour"? (null = the defaults)}`` ->
  201 ``{"key": metadata, "api_key": plaintext}`` (a fresh key when none is given).
  ``PATCH /_sim/keys/{key_id}`` the same fields but ``key``; ``DELETE
  /_sim/keys/{key_id}``.  400 on bad values, 404 on unknown ids.
* ``GET /_sim/vps`` -> ``{"vps": [state]}`` every VPS, deleted ones too: id, vmid,
  name, status, deployment_status, fail_at_task, failed_task, power, pending_power,
  pending_in_seconds, is_suspended, suspension_reason, deleted, deleted_at, plan_id,
  location, template_id, ip_address, ssh_key, webhook_url, webhook_signed, webhook_sent,
  snapshots, created_at, last_billed (no password, no secret).  ``GET
  /_sim/vps/{id}`` one of them.
* ``POST /_sim/vps/{id}/status {"status": S, "reason"?}``: an out-of-band change.
  ``running`` / ``stopped`` (deployed VPSes only; at once, cancels a pending action,
  lifts a suspension), ``suspended`` (``reason`` default "Suspended by administrator"),
  ``unsuspend``, ``deleted`` (as if deleted in the panel: 400 ``VPS_DELETED`` from then
  on), ``gone`` (removed from the database: 404 ``VPS_NOT_FOUND``).  -> the state; 400,
  404.
* ``GET /_sim/account`` / ``PUT|PATCH /_sim/account {"balance"? (number or decimal
  string), "email"?, "full_name"?, "status"?, "registration_date"?,
  "two_factor_enabled"?, "vps_ordering_enabled"?, "auto_funding"? {enabled, threshold,
  amount}}`` -> the account with ``balance_exact`` (unrounded) and ``auto_funding``.
* ``GET /_sim/locations``; ``PUT|PATCH /_sim/locations/{code} {"is_available"?,
  "available_ips"? (0..4096: the pool is cut or extended with fresh addresses)}``.
* ``POST /_sim/billing/charge {"hours"?: 1}``: charge every billable VPS N hours now
  (the periodic schedule is unchanged) -> ``{"charged", "balance"}``.
* ``GET /_sim/webhooks[?vps_id=N]`` -> ``{"deliveries": [{id, event, status (pending |
  delivered | failed), attempts, lastAttemptAt, responseStatus, createdAt, vps_id, url,
  last_error, payload}]}``, newest first.
* ``DELETE /_sim/ratelimit`` also empties every key's windows.

Stats (``GET /_sim/stats``): ``route`` is the route template with the base prefix, e.g.
``/api/v1/vps/create`` or ``/api/v1/vps/{id}/delete``; fault rules may name a route
with or without the prefix, or by name (``create_vps``, ``delete_vps``, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from ..common.errors import ApiError, ConfigError, json_response, read_json_object
from ..common.faults import FaultRule
from ..common.server import OUTCOME_KEY, SimServer
from .api import KEY, CyberPanelApi
from .engine import CyberPanelEngine, CyberPanelSettings
from .errors import CyberPanelError, envelope, error_to_response, status_code
from .models import UsageLog, Vps, iso, money
from .ratelimit import KeyRateLimiter
from .webhooks import DeploymentWebhooks

log = logging.getLogger(__name__)

Handler = Any
KeySpec = str | Sequence[str] | Mapping[str, Any]

_HTTP_ERRORS = {
    404: ("NOT_FOUND", "Endpoint not found", "The requested API endpoint does not exist"),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed",
          "This HTTP method is not allowed on this endpoint"),
    413: ("PAYLOAD_TOO_LARGE", "Request body too large",
          "The request body exceeds the maximum allowed size"),
}
DEFAULT_PER_MINUTE = 60


def insufficient_scope(scopes: tuple[str, ...]) -> CyberPanelError:
    wanted = " or ".join(f"'{s}'" for s in scopes)
    return CyberPanelError(403, "INSUFFICIENT_SCOPE", "API key lacks required permissions",
                           f"This endpoint requires the {wanted} scope")


class CyberPanelSimulator(SimServer):
    provider = "cyberpanel"
    api_prefix = "/api/v1"

    def __init__(
        self,
        api_keys: str | Mapping[str, KeySpec] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float = 1.0,
        latency_ms: float = 0.0,
        rate_limit: int = DEFAULT_PER_MINUTE,
        rate_window: float = 60.0,
        public_url: str | None = None,
        settings: CyberPanelSettings | Mapping[str, Any] | None = None,
        balance: str | float | None = None,
        fault_seed: int | None = None,
    ) -> None:
        """``api_keys``: one key (scopes ``all``) or ``{key: scopes}`` where scopes is
        ``"all"``, ``"vps:read,vps:write"``, a list, or ``{"scopes", "name",
        "is_active", "ip_whitelist", "expires_at", "expires_in", "rate_limit_per_minute",
        "rate_limit_per_hour"}``.  Keys must match ``cyp_live_[0-9a-f]{64}``
        (``ValueError`` otherwise).  ``rate_limit`` is the per-minute limit of keys
        without their own (0 turns every limit off); ``settings`` sets the knobs of the
        module docstring; ``balance`` the account balance."""
        super().__init__(
            host=host, port=port, time_scale=time_scale, latency_ms=latency_ms,
            rate_limit=rate_limit, rate_window=rate_window, public_url=public_url,
            fault_seed=fault_seed,
        )
        keys = {api_keys: "all"} if isinstance(api_keys, str) else dict(api_keys or {})
        for plaintext, spec in keys.items():
            self.add_key(plaintext, spec)
        if isinstance(settings, CyberPanelSettings):
            self.engine.settings = settings
        elif settings:
            try:
                self.apply_config(dict(settings))
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        if balance is not None:
            self.engine.set_account({"balance": balance})
        self._ticker: asyncio.Task[None] | None = None
        self._sync()

    def add_key(self, plaintext: str | None, spec: KeySpec = "all") -> tuple[Any, str]:
        """Register a key (``ValueError`` when malformed); returns (key, plaintext)."""
        if isinstance(spec, Mapping):
            options = dict(spec)
        else:
            options = {"scopes": spec}
        options.setdefault("scopes", "all")
        return self.engine.add_key(plaintext, **options)

    # The base calls add_api_routes from its constructor, before ours continues.
    def add_api_routes(self) -> None:
        self.engine = CyberPanelEngine(self.clock)
        self.api = CyberPanelApi(self.engine)
        self.api.register(self.route, self.api_prefix)
        self.key_limiter = KeyRateLimiter(self.clock)
        self.webhooks = DeploymentWebhooks(self.clock, self.stats)
        self.engine.listeners.append(self._deployment_ended)

    def _deployment_ended(self, vps: Vps, failed: bool) -> None:
        if vps.webhook_url is None or vps.webhook_sent:
            return
        vps.webhook_sent = True
        payload = self.api.webhook_payload(vps, failed)
        self.webhooks.send(vps.id, vps.webhook_url, vps.webhook_secret, payload["event"],
                           payload)

    async def on_start(self) -> None:
        await self.webhooks.start()
        self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())

    async def on_stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await self.webhooks.stop()

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.engine.settings.tick_interval)
            try:
                self.engine.tick()
            except Exception:  # never let the loop die; a bug shows in the log
                log.exception("cloudsim cyberpanel: tick failed")

    # ---- knobs ----------------------------------------------------------------------------

    def provider_config(self) -> dict[str, Any]:
        return self.engine.settings.to_json()

    def apply_provider_config(self, changes: dict[str, Any]) -> None:
        self.engine.configure(changes)

    def apply_config(self, changes: dict[str, Any]) -> None:
        super().apply_config(changes)
        self._sync()

    def _sync(self) -> None:
        settings = self.engine.settings
        self.key_limiter.minute.window = self.limiter.window
        self.api.per_minute_default = self.limiter.limit or DEFAULT_PER_MINUTE
        dispatcher = self.webhooks.dispatcher
        dispatcher.timeout = settings.webhook_timeout
        dispatcher.retries = settings.webhook_retries
        dispatcher.retry_delay = settings.webhook_retry_delay

    # ---- middlewares (the base's, in CyberPanel's envelope) -----------------------------

    async def _guarded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._is_api(request):
            return await super()._guarded(request, handler)
        try:
            response: web.StreamResponse = await handler(request)
        except (asyncio.CancelledError, web.HTTPException):
            raise
        except Exception:
            log.exception("cloudsim cyberpanel: unhandled error in %s %s", request.method,
                          request.path)
            return envelope(500, "INTERNAL_ERROR", "Internal server error",
                            "An unexpected error occurred")
        return response

    async def _apply_fault(
        self, rule: FaultRule, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if rule.kind != "status" or rule.body is not None:
            return await super()._apply_fault(rule, request, handler)
        request[OUTCOME_KEY] = f"status:{rule.status}"
        headers = {"Retry-After": "1"} if rule.status in (429, 503) else None
        code, error = status_code(rule.status)
        return envelope(rule.status, code, error, f"Injected fault ({rule.status})", headers)

    @web.middleware
    async def _rate_limit(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Authentication, the key's two rate-limit windows, the scope, usage logging."""
        if not self._is_api(request):
            return await handler(request)
        endpoint = self.api.endpoint_of(request.method, self._route_template(request))
        if endpoint is None or endpoint.scopes is None:  # unknown route, 405, public
            self.engine.tick()
            return await handler(request)
        started = time.perf_counter()
        ip = request.remote or "unknown"
        try:
            key = self.engine.authenticate(request.headers.get("Authorization"), ip)
        except CyberPanelError as exc:
            return error_to_response(exc)
        headers: dict[str, str] = {}
        if self.limiter.limit > 0:
            per_minute, per_hour = self.engine.limits_of(key, self.limiter.limit)
            verdict = self.key_limiter.hit(str(key.id), per_minute, per_hour)
            headers = self.key_limiter.headers(verdict)
            if not verdict.allowed:
                retry = self.key_limiter.retry_seconds(verdict)
                return envelope(
                    429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded",
                    f"You have exceeded the per {verdict.window} rate limit. Please retry "
                    f"after {retry} seconds.", headers)
        self.engine.record_use(key, ip)
        self.engine.tick()
        request[KEY] = key
        if endpoint.scopes and not key.has_scope(*endpoint.scopes):
            response: web.StreamResponse = error_to_response(insufficient_scope(endpoint.scopes))
        else:
            response = await handler(request)
        elapsed = round((time.perf_counter() - started) * 1000)
        self.engine.log_usage(key, UsageLog(request.path, request.method, ip, response.status,
                                            elapsed, time.time()))
        if not response.prepared:
            response.headers.update(headers)
        return response

    @web.middleware
    async def _envelope(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._is_api(request):
            return await super()._envelope(request, handler)
        try:
            return await handler(request)
        except ApiError as exc:
            return error_to_response(exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
            code, error = status_code(exc.status)
            code, error, message = _HTTP_ERRORS.get(exc.status, (code, error, exc.reason))
            return envelope(exc.status, code, error, message, headers)

    # ---- admin ----------------------------------------------------------------------------

    def add_admin_routes(self, app: web.Application) -> None:
        add = self.admin_route
        add("GET", "/keys", self._admin_keys, "every API key's metadata and usage count (no plaintext)")
        add("POST", "/keys", self._admin_add_key,
            "add an API key (a fresh one when no \"key\" is given); answers its plaintext once")
        add("PATCH", "/keys/{keyId}", self._admin_patch_key,
            "change a key's name, scopes, activity, IP whitelist, expiry or rate limits")
        add("DELETE", "/keys/{keyId}", self._admin_delete_key, "remove an API key")
        add("GET", "/vps", self._admin_vps, "every VPS with its internal state, deleted ones too")
        add("GET", "/vps/{vpsId}", self._admin_one_vps, "one VPS's internal state")
        add("POST", "/vps/{vpsId}/status", self._admin_vps_status,
            "an out-of-band change: running, stopped, suspended, unsuspend, deleted or gone")
        add("GET", "/account", self._admin_account, "the account (balance_exact, auto_funding, ...)")
        add("PUT", "/account", self._admin_set_account,
            "change the account: balance, profile fields, vps_ordering_enabled, auto_funding")
        add("PATCH", "/account", self._admin_set_account, "the same as PUT /_sim/account")
        add("GET", "/locations", self._admin_locations, "every location with its availability and IP pool")
        add("PUT", "/locations/{code}", self._admin_set_location,
            "change a location's is_available or available_ips")
        add("PATCH", "/locations/{code}", self._admin_set_location,
            "the same as PUT /_sim/locations/{code}")
        add("POST", "/billing/charge", self._admin_charge,
            "charge every billable VPS N hours now ({\"hours\"?: 1})")
        add("GET", "/webhooks", self._admin_webhooks,
            "webhook deliveries, newest first (?vps_id=N for one VPS)")

    def key_state(self, key: Any) -> dict[str, Any]:
        body = self.api.key_json(key, self.api.per_minute_default)
        body["usage_logs"] = len(key.usage)
        return body

    def _key(self, request: web.Request) -> Any:
        raw = request.match_info["keyId"]
        key = self.engine.keys.get(int(raw)) if raw.isdigit() else None
        if key is None:
            raise ApiError(404, "API key not found")
        return key

    async def _admin_keys(self, request: web.Request) -> web.Response:
        keys = sorted(self.engine.keys.values(), key=lambda k: k.id)
        return json_response({"keys": [self.key_state(k) for k in keys]})

    async def _admin_add_key(self, request: web.Request) -> web.Response:
        body = await read_json_object(request, required=False)
        plaintext = body.pop("key", None)
        try:
            key, plaintext = self.add_key(plaintext, body)
        except (ValueError, TypeError) as exc:
            raise ApiError(400, str(exc)) from None
        return json_response({"key": self.key_state(key), "api_key": plaintext}, status=201)

    async def _admin_patch_key(self, request: web.Request) -> web.Response:
        key = self._key(request)
        body = await read_json_object(request)
        try:
            self.engine.update_key(key, body)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return json_response({"key": self.key_state(key)})

    async def _admin_delete_key(self, request: web.Request) -> web.Response:
        key = self._key(request)
        self.engine.remove_key(key)
        self.key_limiter.forget(str(key.id))
        return json_response({"success": True})

    def vps_state(self, vps: Vps) -> dict[str, Any]:
        now = self.clock.now()
        return {
            "id": vps.id, "vmid": vps.vmid, "name": vps.name, "status": vps.status,
            "deployment_status": vps.deployment, "fail_at_task": vps.fail_at,
            "failed_task": vps.failed_task, "power": vps.power,
            "pending_power": vps.pending_power,
            "pending_in_seconds": None if vps.pending_due is None
            else max(0.0, vps.pending_due - now),
            "is_suspended": vps.suspended, "suspension_reason": vps.suspension_reason,
            "deleted": vps.deleted, "deleted_at": iso(vps.deleted_at),
            "plan_id": vps.plan.id, "location": vps.location.code,
            "template_id": vps.template.id, "ip_address": vps.ip_address,
            "ssh_key": vps.ssh_key, "webhook_url": vps.webhook_url,
            "webhook_signed": vps.webhook_secret is not None,
            "webhook_sent": vps.webhook_sent,
            "snapshots": [s.to_json() for s in vps.snapshots],
            "created_at": iso(vps.created_at), "last_billed": iso(vps.last_billed),
        }

    def _admin_vps_of(self, request: web.Request) -> Vps:
        raw = request.match_info["vpsId"]
        vps = self.engine.vps.get(int(raw)) if raw.isdigit() else None
        if vps is None:
            raise ApiError(404, "VPS not found")
        return vps

    async def _admin_vps(self, request: web.Request) -> web.Response:
        self.engine.tick()
        rows = sorted(self.engine.vps.values(), key=lambda v: v.id)
        return json_response({"vps": [self.vps_state(v) for v in rows]})

    async def _admin_one_vps(self, request: web.Request) -> web.Response:
        self.engine.tick()
        return json_response(self.vps_state(self._admin_vps_of(request)))

    async def _admin_vps_status(self, request: web.Request) -> web.Response:
        self.engine.tick()
        vps = self._admin_vps_of(request)
        body = await read_json_object(request)
        status, reason = body.get("status"), body.get("reason")
        if not isinstance(status, str):
            raise ApiError(400, "status is required")
        if reason is not None and (not isinstance(reason, str) or not reason.strip()):
            raise ApiError(400, "reason must be a non-empty string")
        try:
            self.engine.force_status(vps, status, reason)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        if status == "gone":
            return json_response({"id": vps.id, "status": "gone"})
        return json_response(self.vps_state(vps))

    def account_state(self) -> dict[str, Any]:
        account = self.engine.account
        return {**account.to_json(), "balance_exact": str(account.balance),
                "auto_funding": account.auto_funding()}

    async def _admin_account(self, request: web.Request) -> web.Response:
        self.engine.tick()
        return json_response(self.account_state())

    async def _admin_set_account(self, request: web.Request) -> web.Response:
        self.engine.tick()
        body = await read_json_object(request)
        try:
            self.engine.set_account(body)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return json_response(self.account_state())

    async def _admin_locations(self, request: web.Request) -> web.Response:
        return json_response({"locations": [loc.to_json() | {"free_ips": list(loc.free_ips)}
                                            for loc in self.engine.locations.values()]})

    async def _admin_set_location(self, request: web.Request) -> web.Response:
        code = request.match_info["code"]
        if code not in self.engine.locations:
            raise ApiError(404, "Location not found")
        body = await read_json_object(request)
        try:
            location = self.engine.set_location(code, body)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return json_response(location.to_json())

    async def _admin_charge(self, request: web.Request) -> web.Response:
        self.engine.tick()
        body = await read_json_object(request, required=False)
        hours = body.get("hours", 1)
        if isinstance(hours, bool) or not isinstance(hours, int) or not 0 <= hours <= 100000:
            raise ApiError(400, "hours must be an integer 0..100000")
        amount = self.engine.charge_now(hours)
        return json_response({"charged": money(amount, 4),
                              "balance": money(self.engine.account.balance)})

    async def _admin_webhooks(self, request: web.Request) -> web.Response:
        raw = request.query.get("vps_id")
        if raw is not None and not raw.isdigit():
            raise ApiError(400, "vps_id must be an integer")
        vps_id = int(raw) if raw is not None else None
        return json_response({"deliveries": self.webhooks.deliveries(vps_id)})

    async def _admin_reset_ratelimit(self, request: web.Request) -> web.Response:
        self.key_limiter.reset()
        return await super()._admin_reset_ratelimit(request)


__all__ = ["CyberPanelSimulator"]
