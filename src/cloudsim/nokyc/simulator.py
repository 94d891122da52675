"""The NoKYC VPS simulator: :class:`NoKycSimulator`, faithful to NoKYC's API document.

Run it in-process (``async with NoKycSimulator({"nkv_live_…": "write"}) as sim``, then
talk to ``sim.url``, which ends in ``/v1``), in a background thread
(``cloudsim.testing.running_simulator("nokyc", tokens={...})``) or alone
(``python -m cloudsim nokyc --port 8082 --token nkv_live_…[:read|write|billing]``).
One simulator is one account; every token given belongs to it.

Implemented (``/v1``): servers (list, create, get, PATCH name/tags/labels, DELETE,
``reboot[?hard=true]``, ``stop``, ``start``, ``rebuild {"image"}``,
``restore {"snapshot": "snap_…"}``, ``rdns {"ipv4", "ipv6"}``,
``POST /servers/{id}/snapshots {"name", "expires_at"?}``), snapshots (list, get,
DELETE), plans, regions, images (official ones; list and get), ssh-keys, firewall
groups (CRUD, ``POST .../rules`` one rule, ``PUT .../rules {"rules": [...]}``
replacing the list atomically, ``DELETE .../rules/{rule_id}``), webhooks (CRUD,
``POST .../test`` a ``ping`` event, ``GET .../deliveries``), ``/account/tokens``
(list, create, revoke), ``GET /billing/balance`` and ``/audit/events`` (list, get).
Not simulated (404 ``not_found``, like any unknown path): rescue, console, metrics,
volumes, custom image upload and delete, ``/billing/ledger`` and ``/billing/topup``.

Conventions (see :mod:`.api`, :mod:`.listing`, :mod:`.validation`, :mod:`.ratelimit`,
:mod:`.webhooks`, :mod:`.engine` for the details):

* ``Authorization: Bearer nkv_live_<52 [a-z0-9]>``; missing, malformed, unknown,
  revoked or expired (30 s skew tolerance) -> 401 ``unauthenticated``
  (``WWW-Authenticate: Bearer``); too small a scope -> 403 ``forbidden_scope``.
* Every API answer carries ``X-Request-Id`` (``req_…``), equal to the envelope's
  ``request_id`` on errors:
  ``{"error": {"code", "message", "errors": [{"field", "issue", ...}], "request_id"}}``.
  Injected ``status`` faults (``POST /_sim/faults``) answer in this envelope with the
  seed's code for the status (451 ``jurisdictional_block``, 503 ``maintenance``, ...).
* Per-token token buckets with ``X-RateLimit-*`` headers; ``Idempotency-Key`` on every
  POST; cursor-paged lists with ``filter[...]`` and ``sort``.
* Webhook events ``{"id": "evt_…", "object": "event", "type", "created_at", "data"}``:
  ``data`` is ``{"server": {…}}`` for ``server.*``, ``{"snapshot": {…}}`` for
  ``snapshot.ready``, ``{"firewall_group": {…}, "server": {…}}`` for
  ``firewall.applied`` (one event per server newly in ``applied_to``),
  ``{"api_token": {…}}`` for ``token.created`` / ``token.revoked``,
  ``{"balance": {…}, "amount_usd"}`` for ``billing.charged``, ``{"balance": {…}}`` for
  ``billing.low_balance`` and ``{"webhook": {…}}`` for the test ``ping``.  Always the
  full object as it was when the event fired.

Shapes the seed leaves open: ``POST /servers/{id}/restore {"snapshot": "snap_…"}``
(any ready snapshot of the account whose disk fits the plan; the server's ``image``
becomes the ``snap_…`` id), ``POST .../rebuild {"image"}``, ``PUT .../rules {"rules":
[rule, ...]}`` (rules without ``id``; new ``fwr_`` ids each time), ``POST .../rules``
one rule object; create answers 201, server actions and ``DELETE /servers/{id}`` 202
with the server, rule changes the whole group, ``POST /webhooks/{id}/test`` 202 with
the delivery ``{"id": "del_…", "object": "webhook_delivery", "webhook", "event",
"type", "status": pending|succeeded|failed, "attempts", "response_status", "error",
"last_attempt_at", "next_attempt_at", "created_at"}`` (also the rows of
``/deliveries``), other DELETEs 204.  Official image ids are the seed example's
(``debian-13-minimal``), not ``img_…``; an image with ``deprecated_at`` set cannot be
deployed (422), nor can ``user_data_b64`` go to an image without cloud-init (422).

Knobs: besides the common ones of :mod:`cloudsim.common.server` (``time_scale``,
``latency_ms``; ``rate_limit`` is the general bucket's per-window limit, 60 — **0 turns
every NoKYC rate limit off**, for benchmarks — and ``rate_window_seconds`` its window,
60), ``GET/PUT /_sim/config`` carries (durations in simulated seconds):

``provision_delay`` (provisioning -> installing, 20), ``install_delay`` (installing ->
running, also for rebuild and restore, 40), ``boot_delay`` (start, 10),
``stop_delay`` (5), ``reboot_delay`` (10; half with ``?hard=true``),
``destroy_delay`` (destroying -> gone, 10), ``snapshot_delay`` (creating -> ready, 30),
``fail_next_snapshots`` (the next N snapshots end in ``error``, 0),
``balance_usd`` (the account balance, 100.00; at or below 0 every running server is
suspended, above 0 again they become stopped), ``charge_interval`` (the daily charge
of running servers' ``price_usd_hour``, 86400; 0 = never), ``low_balance_days``
(``billing.low_balance`` when the runway drops below, 7),
``allow_http_webhooks`` (sandbox only: accept ``http://`` webhook URLs, false),
``webhook_ca_file`` (a PEM CA bundle deliveries trust for HTTPS instead of the system
store, e.g. a test receiver's self-signed CA; null), ``webhook_timeout`` (an attempt
succeeds on a 2xx within this, 10), ``webhook_retry_schedule`` (delays before each
attempt after the previous one, ``[0, 60, 300, 1800, 18000, 86400]``),
``token_skew_tolerance`` (30), ``ip_country`` (the audit log's ``ip_country``, "ZZ"),
``idempotency_ttl`` (86400), ``rate_burst`` (general bucket capacity, 10),
``provisioning_rate_limit`` (``POST /servers`` bucket per window, 200; 0 = that bucket
off), ``provisioning_rate_burst`` (its capacity, 200), ``ipv4_pool_remaining`` (per
region, e.g. ``{"buh": 0}``; a server stays provisioning while its region's pool is 0).

NoKYC admin endpoints (besides the common ``/_sim`` ones):

* ``POST /_sim/servers/{id}/state`` ``{"state": S}``: force a server into any status
  (``provisioning``, ``installing``, ``running``, ``stopped``, ``suspended``,
  ``destroying``) as if the platform did it out of band, or ``gone`` to remove it at
  once.  Cancels the pending operation, fires the matching event (``server.running``,
  ``server.stopped``, ``server.suspended``; ``destroying`` runs the normal destroy and
  ``gone`` fires ``server.destroyed``); ``running``/``stopped``/``suspended`` assign the
  addresses if the server had none.  A forced ``provisioning``/``installing`` stays
  there.  Answers the server.
* ``GET /_sim/tokens``: every token (id, scope, expiry; no plaintext).
  ``POST /_sim/tokens`` ``{"token": "nkv_live_…", "scope": "write", "name"?,
  "expires_at"?: RFC 3339 | null, "expires_in"?: simulated seconds}``: add a token or
  change an existing one's scope or expiry (an expired token answers 401).
* ``POST /_sim/billing/charge`` ``{"seconds"?: N}``: run the periodic charge now for N
  simulated seconds (default ``charge_interval``, else a day); answers
  ``{"amount_usd", "balance": {…}}``.
* ``DELETE /_sim/ratelimit`` also empties the token buckets; ``DELETE
  /_sim/idempotency`` forgets every stored Idempotency-Key.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ..common.errors import ApiError, ConfigError, json_response, read_json_object
from ..common.faults import FaultRule
from ..common.server import OUTCOME_KEY, SimServer
from .api import (
    REQUEST_ID_HEADER,
    REQUEST_ID_KEY,
    TOKEN_KEY,
    IdempotencyCache,
    NoKycApi,
)
from .engine import DAY, NoKycEngine, NoKycSettings
from .errors import NoKycError, envelope, error_to_response
from .ratelimit import TokenBuckets
from .validation import Problems, timestamp

log = logging.getLogger(__name__)

Handler = Any
TokenSpec = str | Mapping[str, Any]

_HTTP_MESSAGES = {404: "No such endpoint.", 405: "Method not allowed on this endpoint.",
                  413: "Request body too large."}


class NoKycSimulator(SimServer):
    provider = "nokyc"
    api_prefix = "/v1"

    def __init__(
        self,
        tokens: Mapping[str, TokenSpec] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float = 1.0,
        latency_ms: float = 0.0,
        rate_limit: int = 60,
        rate_window: float = 60.0,
        public_url: str | None = None,
        settings: NoKycSettings | Mapping[str, Any] | None = None,
        fault_seed: int | None = None,
    ) -> None:
        """``tokens`` maps each plaintext token to its scope (``read``, ``write`` or
        ``billing``) or to ``{"scope", "name"?, "expires_at"?: unix seconds or RFC 3339,
        "expires_in"?: simulated seconds}``.  ``settings`` sets the knobs of the module
        docstring; ``rate_limit=0`` turns rate limiting off."""
        super().__init__(
            host=host, port=port, time_scale=time_scale, latency_ms=latency_ms,
            rate_limit=rate_limit, rate_window=rate_window, public_url=public_url,
            fault_seed=fault_seed,
        )
        for plaintext, spec in (tokens or {}).items():
            self._add_token(plaintext, spec)
        if isinstance(settings, NoKycSettings):
            self.engine.settings = settings
        elif settings:
            try:
                self.apply_config(dict(settings))
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        self._sync()

    def _add_token(self, plaintext: str, spec: TokenSpec) -> Any:
        if isinstance(spec, str):
            return self.engine.add_token(plaintext, spec)
        scope = spec.get("scope", "write")
        expires: float | None = None
        if spec.get("expires_in") is not None:
            expires = time.time() + self.clock.to_real(float(spec["expires_in"]))
        elif isinstance(spec.get("expires_at"), int | float):
            expires = float(spec["expires_at"])
        elif spec.get("expires_at") is not None:
            problems = Problems()
            expires = timestamp(spec["expires_at"], "expires_at", problems)
            if problems:
                raise ValueError("expires_at must be an RFC 3339 timestamp or unix seconds")
        return self.engine.add_token(plaintext, str(scope), name=spec.get("name"),
                                     expires_at=expires)

    # The base calls add_api_routes from its constructor, before ours continues.
    def add_api_routes(self) -> None:
        self.engine = NoKycEngine(self.clock, self.stats)
        self.idempotency = IdempotencyCache(self.clock, self.engine.settings.idempotency_ttl)
        self.api = NoKycApi(self.engine, self.idempotency)
        self.general_buckets = TokenBuckets(self.clock, limit=60, burst=10)
        self.provisioning_buckets = TokenBuckets(self.clock, limit=200, burst=200)
        self.api.register(self.route)

    async def on_start(self) -> None:
        await self.engine.start()

    async def on_stop(self) -> None:
        await self.engine.stop()

    # ---- knobs ----------------------------------------------------------------------------

    def provider_config(self) -> dict[str, Any]:
        return {**self.engine.settings.to_json(),
                "ipv4_pool_remaining": dict(self.engine.ipv4_pool)}

    def apply_provider_config(self, changes: dict[str, Any]) -> None:
        settings = self.engine.settings
        checked = settings.checked(changes)  # validate everything before changing anything
        context = self._ssl_context(checked.get("webhook_ca_file", settings.webhook_ca_file))
        pools = changes.get("ipv4_pool_remaining")
        if pools is not None:
            self.engine.set_ipv4_pool(pools)
        self.engine.configure(checked)
        self.engine.dispatcher.ssl_context = context
        self._sync()

    @staticmethod
    def _ssl_context(ca_file: str | None) -> ssl.SSLContext | None:
        if ca_file is None:
            return None
        try:
            return ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"webhook_ca_file {ca_file!r}: {exc}") from None

    def apply_config(self, changes: dict[str, Any]) -> None:
        super().apply_config(changes)
        self._sync()

    def _sync(self) -> None:
        """Push knob values into the buckets, the dispatcher and the idempotency store."""
        settings = self.engine.settings
        window = self.limiter.window
        self.general_buckets.limit = self.limiter.limit
        self.general_buckets.burst = settings.rate_burst
        self.general_buckets.window = window
        off = self.limiter.limit <= 0
        self.provisioning_buckets.limit = 0 if off else settings.provisioning_rate_limit
        self.provisioning_buckets.burst = settings.provisioning_rate_burst
        self.provisioning_buckets.window = window
        dispatcher = self.engine.dispatcher
        dispatcher.timeout = settings.webhook_timeout
        dispatcher.schedule = tuple(settings.webhook_retry_schedule)
        if dispatcher.ssl_context is None and settings.webhook_ca_file is not None:
            dispatcher.ssl_context = self._ssl_context(settings.webhook_ca_file)
        self.idempotency.ttl = settings.idempotency_ttl

    # ---- middlewares (the base's, in NoKYC's envelope) ----------------------------------

    def _request_id(self, request: web.Request) -> str:
        request_id = request.get(REQUEST_ID_KEY)
        if request_id is None:
            request_id = self.engine.new_id("req", 10)
            request[REQUEST_ID_KEY] = request_id
        return request_id

    @web.middleware
    async def _accounting(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._is_api(request):
            return await super()._accounting(request, handler)
        self._request_id(request)
        response = await super()._accounting(request, handler)
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = request[REQUEST_ID_KEY]
        return response

    async def _guarded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._is_api(request):
            return await super()._guarded(request, handler)
        try:
            response: web.StreamResponse = await handler(request)
        except (asyncio.CancelledError, web.HTTPException):
            raise
        except Exception:
            log.exception("cloudsim nokyc: unhandled error in %s %s", request.method,
                          request.path)
            return envelope(500, "Internal error.", self._request_id(request))
        return response

    async def _apply_fault(
        self, rule: FaultRule, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if rule.kind != "status" or rule.body is not None:
            return await super()._apply_fault(rule, request, handler)
        request[OUTCOME_KEY] = f"status:{rule.status}"
        headers = {"Retry-After": "1"} if rule.status in (429, 503) else None
        return envelope(rule.status, f"Injected fault ({rule.status}).",
                        self._request_id(request), headers=headers)

    @web.middleware
    async def _rate_limit(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Authentication, then the token's bucket (NoKYC limits every request)."""
        if not self._is_api(request):
            return await handler(request)
        request_id = self._request_id(request)
        try:
            token = self._authenticate(request)
        except NoKycError as exc:
            return error_to_response(exc, request_id)
        request[TOKEN_KEY] = token
        template = self._route_template(request)
        endpoint = self.api.endpoint_of(request.method, template, self.api_prefix)
        provisioning = endpoint is not None and endpoint.provisioning
        buckets = self.provisioning_buckets if provisioning else self.general_buckets
        decision = buckets.take(token.id)
        headers = buckets.headers(decision) if decision is not None else {}
        if decision is not None and not decision.allowed:
            return envelope(
                429, f"Rate limit exceeded; retry in {headers['Retry-After']} seconds.",
                request_id, headers=headers,
            )
        response = await handler(request)
        if not response.prepared:
            response.headers.update(headers)
        return response

    def _authenticate(self, request: web.Request) -> Any:
        header = request.headers.get("Authorization")
        challenge = {"WWW-Authenticate": 'Bearer realm="nokyc"'}
        if not header:
            raise NoKycError(401, "Missing bearer token; send Authorization: Bearer <token>.",
                             headers=challenge)
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise NoKycError(401, "Malformed Authorization header; expected Bearer <token>.",
                             headers=challenge)
        try:
            return self.engine.authenticate(value.strip())
        except NoKycError as exc:
            exc.headers = {**challenge, "WWW-Authenticate":
                           'Bearer realm="nokyc", error="invalid_token"'}
            raise

    @web.middleware
    async def _envelope(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._is_api(request):
            return await super()._envelope(request, handler)
        request_id = self._request_id(request)
        try:
            return await handler(request)
        except ApiError as exc:
            return error_to_response(exc, request_id)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
            message = _HTTP_MESSAGES.get(exc.status, f"{exc.reason}.")
            return envelope(exc.status, message, request_id, headers=headers)

    # ---- admin ------------------------------------------------------------------------------

    def add_admin_routes(self, app: web.Application) -> None:
        add = self.admin_route
        add("POST", "/servers/{serverId}/state", self._admin_force_state,
            "force a server into any status out of band, or gone ({\"state\": S}; fires its event)")
        add("GET", "/tokens", self._admin_tokens, "every API token (id, scope, expiry; no plaintext)")
        add("POST", "/tokens", self._admin_add_token,
            "add a token or change one's scope or expiry ({\"token\", \"scope\", ...})")
        add("POST", "/billing/charge", self._admin_charge,
            "run the periodic charge now ({\"seconds\"?: N simulated seconds})")
        add("DELETE", "/idempotency", self._admin_forget_keys, "forget every stored Idempotency-Key")

    async def _admin_force_state(self, request: web.Request) -> web.Response:
        server = self.engine.servers.get(request.match_info["serverId"])
        if server is None:
            raise ApiError(404, "Server not found")
        body = await read_json_object(request)
        state = body.get("state")
        if not isinstance(state, str):
            raise ApiError(400, "state is required")
        try:
            self.engine.force_state(server, state)
        except NoKycError as exc:
            raise ApiError(exc.status, exc.message) from None
        return json_response(server.to_json())

    async def _admin_tokens(self, request: web.Request) -> web.Response:
        tokens = sorted(self.engine.tokens.values(), key=lambda t: t.seq)
        return json_response({"tokens": [t.to_json() for t in tokens]})

    async def _admin_add_token(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        plaintext = body.get("token")
        if not isinstance(plaintext, str):
            raise ApiError(400, "token is required")
        unknown = sorted(set(body) - {"token", "scope", "name", "expires_at", "expires_in"})
        if unknown:
            raise ApiError(400, f"unknown field(s): {', '.join(unknown)}")
        spec = {k: v for k, v in body.items() if k != "token"}
        try:
            token = self._add_token(plaintext, spec)
        except (ValueError, TypeError) as exc:
            raise ApiError(400, str(exc)) from None
        return json_response({"token": token.to_json()}, status=201)

    async def _admin_charge(self, request: web.Request) -> web.Response:
        body = await read_json_object(request, required=False)
        seconds = body.get("seconds", self.engine.settings.charge_interval or DAY)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ApiError(400, "seconds must be a non-negative number")
        amount = self.engine.charge(float(seconds))
        return json_response({"amount_usd": amount, "balance": self.engine.balance_json()})

    async def _admin_forget_keys(self, request: web.Request) -> web.Response:
        self.idempotency.clear()
        return json_response({"success": True})

    async def _admin_reset_ratelimit(self, request: web.Request) -> web.Response:
        self.general_buckets.reset()
        self.provisioning_buckets.reset()
        return await super()._admin_reset_ratelimit(request)
