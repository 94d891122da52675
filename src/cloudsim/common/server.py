"""The aiohttp server every provider simulator is built on.

:class:`SimServer` owns what is the same for all providers: the listening socket, the
simulated clock, latency, fault injection, the per-client-IP rate limit on mutating
requests, the error envelope, request accounting and the admin API.  A provider
subclass adds its API routes (under :attr:`SimServer.api_prefix`), its own knobs and
its own admin endpoints.

Middleware order, outermost first, and why:

1. accounting: sees the final status of every API request (including dropped ones)
   and turns anything unexpected into a 500 envelope.
2. network: latency and injected faults happen "before" the provider, so they neither
   consume rate-limit budget nor touch state.
3. rate limit: mutating API requests only; its headers go on every answer it admits.
4. envelope: ``ApiError`` and aiohttp's 404/405/413 become ``{"error": ...}`` here,
   inside the rate limiter so those answers carry the rate-limit headers too.

Admin API (no auth, outside the provider's API prefix):

* ``GET /_sim/`` (and ``GET /_sim``): this list as JSON, ``{"provider", "api",
  "endpoints": [{"method", "path", "description"}]}``, the provider's own endpoints
  included (every admin route is added through :meth:`SimServer.admin_route`, which
  lists it).
* ``GET /_sim/health``
* ``GET /_sim/config``, ``PUT|PATCH /_sim/config`` (partial update, 400 on unknown
  keys or bad values): ``time_scale``, ``latency_ms``, ``rate_limit`` (0 disables),
  ``rate_window_seconds`` (simulated) plus the provider's own knobs.
* ``GET /_sim/faults``, ``POST /_sim/faults`` (see :mod:`cloudsim.common.faults`),
  ``DELETE /_sim/faults``, ``DELETE /_sim/faults/{faultId}``.
* ``GET /_sim/stats`` (counts per method, route template, status), ``DELETE
  /_sim/stats`` (reset).
* ``GET /_sim/requests?limit=N`` (most recent requests, oldest first; no secrets).
* ``DELETE /_sim/ratelimit`` (forget every client's window).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from aiohttp import web

from .clock import SimClock
from .errors import ApiError, ConfigError, error_response, json_response, read_json_object
from .faults import FaultInjector, FaultRule
from .ratelimit import SlidingWindowLimiter
from .stats import UNMATCHED_ROUTE, RequestStats

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ADMIN_PREFIX = "/_sim"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_HTTP_MESSAGES = {
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
}

# Request keys shared between middlewares and handlers.
REPLAYED_KEY = web.RequestKey("cloudsim.replayed", bool)
OUTCOME_KEY = web.RequestKey("cloudsim.outcome", str)


@dataclass(frozen=True)
class AdminEndpoint:
    """One admin route as ``GET /_sim/`` lists it."""

    method: str
    path: str  # the full path, e.g. ``/_sim/faults/{faultId}``
    description: str  # one line

    def to_json(self) -> dict[str, str]:
        return {"method": self.method, "path": self.path, "description": self.description}


def _number(key: str, value: Any, *, minimum: float, inclusive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key} must be a number")
    if value < minimum or (not inclusive and value == minimum):
        op = ">=" if inclusive else ">"
        raise ConfigError(f"{key} must be {op} {minimum:g}")
    return float(value)


def _integer(key: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key} must be an integer >= {minimum}")
    return value


class SimServer:
    """Base class of the provider simulators; an async context manager."""

    provider: ClassVar[str] = "generic"
    api_prefix: ClassVar[str] = "/api/v1"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float = 1.0,
        latency_ms: float = 0.0,
        rate_limit: int = 10,
        rate_window: float = 60.0,
        public_url: str | None = None,
        fault_seed: int | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.public_url = public_url
        self.clock = SimClock(time_scale)
        self.latency_ms = _number("latency_ms", latency_ms, minimum=0)
        self.limiter = SlidingWindowLimiter(self.clock, rate_limit, rate_window)
        self.faults = FaultInjector(fault_seed)
        self.stats = RequestStats()
        self._route_names: dict[tuple[str, str], str] = {}
        self.admin_endpoints: list[AdminEndpoint] = []
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._build_app()

    # ---- provider hooks -------------------------------------------------------------

    def add_api_routes(self) -> None:
        """Register the provider's routes with :meth:`route`."""

    def add_admin_routes(self, app: web.Application) -> None:
        """Register provider-specific admin routes with :meth:`admin_route`."""

    def provider_config(self) -> dict[str, Any]:
        return {}

    def apply_provider_config(self, changes: dict[str, Any]) -> None:
        """Validate, then apply, the provider's knobs (keys of :meth:`provider_config`).

        Raise ``ConfigError`` before changing anything if a value is bad."""

    def inspect_response(self, request: web.Request, response: web.StreamResponse) -> None:
        """Look at an API answer before it leaves (e.g. schema checks); may raise."""

    def is_mutating(self, request: web.Request) -> bool:
        return request.method not in SAFE_METHODS

    async def on_start(self) -> None:
        """Start background machinery (the loop is running now)."""

    async def on_stop(self) -> None:
        """Stop background machinery before the listener closes."""

    # ---- wiring ---------------------------------------------------------------------

    def route(self, method: str, path: str, handler: Handler, name: str) -> None:
        """Add an API route; ``path`` is relative to :attr:`api_prefix`."""
        full = self.api_prefix + path
        self.app.router.add_route(method, full, handler)
        self._route_names[(method, full)] = name

    def _build_app(self) -> None:
        app = web.Application(
            middlewares=[self._accounting, self._network, self._rate_limit, self._envelope],
            client_max_size=1024 * 1024,
        )
        self.app = app  # before add_api_routes: route() registers on it
        self.add_api_routes()
        add = self.admin_route
        add("GET", "/", self._admin_index, "this index of the admin endpoints (also at GET /_sim)")
        app.router.add_get(ADMIN_PREFIX, self._admin_index)  # the same, without the slash
        add("GET", "/health", self._admin_health, "liveness: {ok, provider}")
        add("GET", "/config", self._admin_get_config, "every knob and its value")
        add("PUT", "/config", self._admin_put_config,
            "change knobs (partial; 400 on unknown keys or bad values)")
        add("PATCH", "/config", self._admin_put_config, "the same as PUT /_sim/config")
        add("GET", "/faults", self._admin_list_faults, "the fault injection rules")
        add("POST", "/faults", self._admin_add_fault,
            "add a fault rule (delay, hold, status, timeout or drop on matching API requests)")
        add("DELETE", "/faults", self._admin_clear_faults, "remove every fault rule")
        add("DELETE", "/faults/{faultId}", self._admin_delete_fault, "remove one fault rule")
        add("GET", "/stats", self._admin_stats,
            "API request counts per method, route template and status")
        add("DELETE", "/stats", self._admin_reset_stats, "reset the request counts")
        add("GET", "/requests", self._admin_requests,
            "the most recent API requests, oldest first (?limit=N, default 100; no secrets)")
        add("DELETE", "/ratelimit", self._admin_reset_ratelimit,
            "forget every client's rate-limit window")
        self.add_admin_routes(app)

    def admin_route(self, method: str, path: str, handler: Handler, description: str) -> None:
        """Add an admin route and list it in ``GET /_sim/``.

        ``path`` is relative to ``/_sim`` (``"/vms/{vmId}/status"``); ``description`` is
        one line saying what it does.  A GET route answers HEAD too."""
        full = ADMIN_PREFIX + path
        if method == "GET":
            self.app.router.add_get(full, handler)
        else:
            self.app.router.add_route(method, full, handler)
        self.admin_endpoints.append(AdminEndpoint(method, full, description))

    # ---- lifecycle ------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("simulator not started")
        return self._port

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The provider API base URL, e.g. ``http://127.0.0.1:PORT/api/v1``."""
        return self.base_url + self.api_prefix

    @property
    def admin_url(self) -> str:
        return self.base_url + ADMIN_PREFIX

    async def start(self) -> None:
        self._closing.clear()
        # Short shutdown grace: in-flight requests are the simulator's own, never a user's.
        runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.requested_port)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        await self.on_start()
        log.info("cloudsim %s listening on %s", self.provider, self.url)

    async def stop(self) -> None:
        # Release hanging "timeout" faults first so the listener can close promptly.
        self._closing.set()
        await self.on_stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- middlewares ----------------------------------------------------------------

    def _is_api(self, request: web.Request) -> bool:
        return request.path == self.api_prefix or request.path.startswith(self.api_prefix + "/")

    def _route_template(self, request: web.Request) -> str:
        resource = request.match_info.route.resource
        return resource.canonical if resource is not None else UNMATCHED_ROUTE

    def _route_names_of(self, request: web.Request) -> set[str]:
        template = self._route_template(request)
        names = {template}
        if template.startswith(self.api_prefix):
            names.add(template[len(self.api_prefix) :] or "/")
        name = self._route_names.get((request.method, template))
        if name:
            names.add(name)
        return names

    @web.middleware
    async def _accounting(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._is_api(request):
            return await self._guarded(request, handler)
        status: int | str = 500
        try:
            response = await self._guarded(request, handler)
            try:
                self.inspect_response(request, response)
            except ValueError as exc:  # a simulator bug must surface, loudly
                log.error("cloudsim: bad response for %s %s: %s", request.method, request.path, exc)
                response = error_response(500, f"cloudsim: invalid response: {exc}")
            status = response.status
            return response
        except asyncio.CancelledError:
            status = request.get(OUTCOME_KEY, "cancelled")
            raise
        finally:
            self.stats.record(
                method=request.method,
                path=request.path,
                route=self._route_template(request),
                status=status,
                client=request.remote or "unknown",
                replayed=bool(request.get(REPLAYED_KEY)),
                fault=request.get(OUTCOME_KEY),
            )

    async def _guarded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except (asyncio.CancelledError, web.HTTPException):
            raise
        except Exception:
            log.exception("cloudsim: unhandled error in %s %s", request.method, request.path)
            return error_response(500, "Internal server error")

    @web.middleware
    async def _network(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._is_api(request):
            return await handler(request)
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        rule = self.faults.pick(request.method, request.path, self._route_names_of(request))
        if rule is None:
            return await handler(request)
        return await self._apply_fault(rule, request, handler)

    async def _apply_fault(
        self, rule: FaultRule, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        log.info("cloudsim: fault %s (%s) on %s %s", rule.id, rule.kind, request.method, request.path)
        if rule.kind == "delay":
            await asyncio.sleep(rule.seconds)
            return await handler(request)
        if rule.kind == "hold":
            response = await handler(request)
            try:
                await asyncio.wait_for(self._closing.wait(), timeout=rule.seconds)
            except TimeoutError:
                pass
            return response
        if rule.kind == "status":
            request[OUTCOME_KEY] = f"status:{rule.status}"
            headers = {"Retry-After": "1"} if rule.status == 429 else None
            if rule.body is not None:
                return web.Response(
                    status=rule.status,
                    body=rule.body.encode(),
                    headers={"Content-Type": rule.content_type, **(headers or {})},
                )
            return error_response(rule.status, f"Injected fault ({rule.status})", headers)
        if rule.kind == "timeout":
            request[OUTCOME_KEY] = "timeout"
            try:
                await asyncio.wait_for(self._closing.wait(), timeout=rule.seconds)
            except TimeoutError:
                pass
        else:
            request[OUTCOME_KEY] = "drop"
        # Abort the socket and cancel the handler: aiohttp then sends nothing at all,
        # which a client sees as "server disconnected without a response".
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError()

    @web.middleware
    async def _rate_limit(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not (self._is_api(request) and self.is_mutating(request)):
            return await handler(request)
        decision = self.limiter.hit(request.remote or "unknown")
        headers = self.limiter.headers(decision)
        if not decision.allowed:
            retry = headers.get("Retry-After", "1")
            return error_response(
                429, f"Rate limit exceeded; retry in {retry} seconds", headers
            )
        response = await handler(request)
        response.headers.update(headers)
        return response

    @web.middleware
    async def _envelope(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc.status, exc.message, exc.headers)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {
                k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")
            }
            message = _HTTP_MESSAGES.get(exc.status, exc.reason)
            return error_response(exc.status, message, headers)

    # ---- admin handlers -------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "time_scale": self.clock.time_scale,
            "latency_ms": self.latency_ms,
            "rate_limit": self.limiter.limit,
            "rate_window_seconds": self.limiter.window,
            "public_url": self.public_url,
            **self.provider_config(),
        }

    def apply_config(self, changes: dict[str, Any]) -> None:
        """Validate every change first, then apply them all (no partial updates)."""
        common = {"time_scale", "latency_ms", "rate_limit", "rate_window_seconds"}
        checked: dict[str, Any] = {}
        if "time_scale" in changes:
            checked["time_scale"] = _number(
                "time_scale", changes["time_scale"], minimum=0, inclusive=False
            )
        if "latency_ms" in changes:
            checked["latency_ms"] = _number("latency_ms", changes["latency_ms"], minimum=0)
        if "rate_limit" in changes:
            checked["rate_limit"] = _integer("rate_limit", changes["rate_limit"], minimum=0)
        if "rate_window_seconds" in changes:
            checked["rate_window_seconds"] = _number(
                "rate_window_seconds", changes["rate_window_seconds"], minimum=0, inclusive=False
            )
        provider_changes = {k: v for k, v in changes.items() if k not in common}
        unknown = sorted(set(provider_changes) - set(self.provider_config()))
        if unknown:
            raise ConfigError(f"unknown config key(s): {', '.join(unknown)}")
        self.apply_provider_config(provider_changes)
        if "time_scale" in checked:
            self.clock.time_scale = checked["time_scale"]
        if "latency_ms" in checked:
            self.latency_ms = checked["latency_ms"]
        if "rate_limit" in checked:
            self.limiter.limit = checked["rate_limit"]
        if "rate_window_seconds" in checked:
            self.limiter.window = checked["rate_window_seconds"]

    def admin_index(self) -> dict[str, Any]:
        """What ``GET /_sim/`` answers."""
        return {
            "provider": self.provider,
            "api": self.url,
            "endpoints": [endpoint.to_json() for endpoint in self.admin_endpoints],
        }

    async def _admin_index(self, request: web.Request) -> web.Response:
        return json_response(self.admin_index())

    async def _admin_health(self, request: web.Request) -> web.Response:
        return json_response({"ok": True, "provider": self.provider})

    async def _admin_get_config(self, request: web.Request) -> web.Response:
        return json_response(self.config())

    async def _admin_put_config(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        body.pop("provider", None)
        body.pop("public_url", None)
        try:
            self.apply_config(body)
        except ConfigError as exc:
            raise ApiError(400, str(exc)) from None
        return json_response(self.config())

    async def _admin_list_faults(self, request: web.Request) -> web.Response:
        return json_response({"faults": [r.to_json() for r in self.faults.rules()]})

    async def _admin_add_fault(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        try:
            rule = self.faults.add(body)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return json_response({"fault": rule.to_json()}, status=201)

    async def _admin_clear_faults(self, request: web.Request) -> web.Response:
        removed = len(self.faults.rules())
        self.faults.clear()
        return json_response({"success": True, "removed": removed})

    async def _admin_delete_fault(self, request: web.Request) -> web.Response:
        if not self.faults.remove(request.match_info["faultId"]):
            raise ApiError(404, "Fault not found")
        return json_response({"success": True})

    async def _admin_stats(self, request: web.Request) -> web.Response:
        return json_response(self.stats.to_json())

    async def _admin_reset_stats(self, request: web.Request) -> web.Response:
        self.stats.reset()
        return json_response({"success": True})

    async def _admin_requests(self, request: web.Request) -> web.Response:
        raw = request.query.get("limit", "100")
        try:
            limit = int(raw)
        except ValueError:
            raise ApiError(400, "limit must be an integer") from None
        return json_response({"requests": self.stats.recent(limit)})

    async def _admin_reset_ratelimit(self, request: web.Request) -> web.Response:
        self.limiter.reset()
        return json_response({"success": True})
