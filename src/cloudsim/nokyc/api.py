"""NoKYC's HTTP API (base path ``/v1``): routing, scopes, idempotency, audit and the
request/response shapes.  Business rules live in :mod:`cloudsim.nokyc.engine`.

Per request, in order: the simulator's middleware assigns the request id, checks the
bearer token (401) and takes a token from the token's rate-limit bucket (429); then
the endpoint wrapper here checks the scope (403), rejects undocumented query
parameters (400), replays or records the ``Idempotency-Key`` of a POST, runs the
handler, turns errors into the envelope and writes the audit event.

Scopes: ``read`` for every GET except ``/billing/*``; ``write`` for every POST, PATCH,
PUT and DELETE; ``billing`` for ``/billing/*``.  A token can mint or revoke tokens of at
most its own scope (403 otherwise).

Idempotency (every POST): the first answer for a key (any status below 500 except
429; a 5xx or a 429 means "retry") is kept ``idempotency_ttl`` simulated seconds
(24 h) with a fingerprint of the request (method, path, query and the JSON body,
compared canonically so key order does not matter).  The same key with the same
request replays that answer byte for byte, with ``Idempotency-Replayed: true`` and
the original ``X-Request-Id``; the same key with a different request is 409
``conflict_state``, as is a key whose first request is still running.  Keys are
account-wide (every token of the simulator's one account shares them), 1..255
characters.

Audit: every authenticated POST/PATCH/PUT/DELETE that passed the rate limiter, with
``result`` ``ok`` (2xx), ``denied`` (403) or ``error`` (anything else); replays are
not recorded again (they change nothing).

Status codes the seed leaves open: create -> 201 with the object; server actions
(reboot, stop, start, rebuild, restore) -> 202 with the server; ``DELETE /servers/{id}``
-> 202 with the server (``destroying``); rule changes (POST/PUT/DELETE ``.../rules``)
-> 200/201 with the whole firewall group; ``POST /webhooks/{id}/test`` -> 202 with the
delivery; other DELETEs -> 204 without a body.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..common.clock import SimClock
from ..common.errors import ApiError
from ..common.idempotency import (
    IDEMPOTENCY_HEADER,
    MAX_KEY_LENGTH,
    REPLAYED_HEADER,
    IdempotencyStore,
    StoredResponse,
)
from ..common.server import REPLAYED_KEY
from . import listing, validation
from .catalog import IMAGES, IMAGES_BY_ID, PLANS, PLANS_BY_ID, REGIONS, REGIONS_BY_ID
from .engine import NoKycEngine
from .errors import NoKycError, conflict, error_to_response, invalid, not_found, problem
from .listing import boolean, eq, member
from .models import ApiToken, Server

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = Callable[[str, str, Handler, str], None]

REQUEST_ID_KEY = web.RequestKey("nokyc.request_id", str)
TOKEN_KEY = web.RequestKey("nokyc.token", ApiToken)
RESOURCE_KEY = web.RequestKey("nokyc.resource", str)
REQUEST_ID_HEADER = "X-Request-Id"
_SCOPE_RANK = {"read": 0, "write": 1, "billing": 2}
_SCOPE = "account"  # one simulator, one account


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    name: str
    scope: str
    action: str | None = None  # audit action of a state-changing endpoint
    query: frozenset[str] = frozenset()  # query parameters of a non-list endpoint
    listing: bool = False
    provisioning: bool = False


class IdempotencyCache(IdempotencyStore):
    """The shared store, keeping every answer worth replaying plus the fingerprint of
    the request and its request id."""

    def __init__(self, clock: SimClock, ttl: float) -> None:
        super().__init__(clock, ttl)
        self._meta: dict[str, tuple[str, str]] = {}

    def _expire(self) -> None:
        super()._expire()
        live = {key for _, key in self._entries}
        for key in [k for k in self._meta if k not in live]:
            del self._meta[key]

    def recall(self, key: str) -> tuple[StoredResponse, str, str] | None:
        stored = self.get(_SCOPE, key)
        if stored is None:
            return None
        fingerprint, request_id = self._meta[key]
        return stored, fingerprint, request_id

    def remember(self, key: str, fingerprint: str, request_id: str, response: web.Response) -> None:
        body = response.body if isinstance(response.body, bytes) else b""
        content_type = response.content_type if body else ""
        self._entries[(_SCOPE, key)] = StoredResponse(
            response.status, body, content_type, self.clock.now()
        )
        self._meta[key] = (fingerprint, request_id)

    def clear(self) -> None:
        super().clear()
        self._meta.clear()


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status,
                        content_type="application/json")


def _rows(items: Iterable[Any], render: Callable[[Any], dict[str, Any]]) -> list[tuple[int, Any]]:
    return [(item.seq, render(item)) for item in items]


class NoKycApi:
    def __init__(self, engine: NoKycEngine, idempotency: IdempotencyCache) -> None:
        self.engine = engine
        self.idempotency = idempotency
        self.endpoints: dict[tuple[str, str], Endpoint] = {}
        self._in_flight: set[str] = set()

    # ---- routing ----------------------------------------------------------------------

    def register(self, route: Route) -> None:
        s, fw, wh = "/servers/{id}", "/firewall/groups/{id}", "/webhooks/{id}"
        table: list[tuple[Endpoint, Handler]] = [
            (Endpoint("GET", "/servers", "list_servers", "read", listing=True),
             self.list_servers),
            (Endpoint("POST", "/servers", "create_server", "write", "server.create",
                      provisioning=True), self.create_server),
            (Endpoint("GET", s, "get_server", "read"), self.get_server),
            (Endpoint("PATCH", s, "update_server", "write", "server.update"),
             self.update_server),
            (Endpoint("DELETE", s, "delete_server", "write", "server.delete"),
             self.delete_server),
            (Endpoint("POST", s + "/reboot", "reboot_server", "write", "server.reboot",
                      query=frozenset({"hard"})), self.reboot_server),
            (Endpoint("POST", s + "/stop", "stop_server", "write", "server.stop"),
             self.stop_server),
            (Endpoint("POST", s + "/start", "start_server", "write", "server.start"),
             self.start_server),
            (Endpoint("POST", s + "/rebuild", "rebuild_server", "write", "server.rebuild"),
             self.rebuild_server),
            (Endpoint("POST", s + "/restore", "restore_server", "write", "server.restore"),
             self.restore_server),
            (Endpoint("POST", s + "/rdns", "set_rdns", "write", "server.rdns"), self.set_rdns),
            (Endpoint("POST", s + "/snapshots", "create_snapshot", "write", "snapshot.create"),
             self.create_snapshot),
            (Endpoint("GET", "/snapshots", "list_snapshots", "read", listing=True),
             self.list_snapshots),
            (Endpoint("GET", "/snapshots/{id}", "get_snapshot", "read"), self.get_snapshot),
            (Endpoint("DELETE", "/snapshots/{id}", "delete_snapshot", "write",
                      "snapshot.delete"), self.delete_snapshot),
            (Endpoint("GET", "/plans", "list_plans", "read", listing=True), self.list_plans),
            (Endpoint("GET", "/plans/{id}", "get_plan", "read"), self.get_plan),
            (Endpoint("GET", "/regions", "list_regions", "read", listing=True),
             self.list_regions),
            (Endpoint("GET", "/regions/{id}", "get_region", "read"), self.get_region),
            (Endpoint("GET", "/images", "list_images", "read", listing=True), self.list_images),
            (Endpoint("GET", "/images/{id}", "get_image", "read"), self.get_image),
            (Endpoint("GET", "/ssh-keys", "list_ssh_keys", "read", listing=True),
             self.list_ssh_keys),
            (Endpoint("POST", "/ssh-keys", "create_ssh_key", "write", "ssh_key.create"),
             self.create_ssh_key),
            (Endpoint("GET", "/ssh-keys/{id}", "get_ssh_key", "read"), self.get_ssh_key),
            (Endpoint("DELETE", "/ssh-keys/{id}", "delete_ssh_key", "write", "ssh_key.delete"),
             self.delete_ssh_key),
            (Endpoint("GET", "/firewall/groups", "list_firewall_groups", "read", listing=True),
             self.list_groups),
            (Endpoint("POST", "/firewall/groups", "create_firewall_group", "write",
                      "firewall_group.create"), self.create_group),
            (Endpoint("GET", fw, "get_firewall_group", "read"), self.get_group),
            (Endpoint("PATCH", fw, "update_firewall_group", "write", "firewall_group.update"),
             self.update_group),
            (Endpoint("DELETE", fw, "delete_firewall_group", "write", "firewall_group.delete"),
             self.delete_group),
            (Endpoint("POST", fw + "/rules", "append_firewall_rule", "write",
                      "firewall_group.rule.create"), self.append_rule),
            (Endpoint("PUT", fw + "/rules", "replace_firewall_rules", "write",
                      "firewall_group.rules.replace"), self.replace_rules),
            (Endpoint("DELETE", fw + "/rules/{rule_id}", "delete_firewall_rule", "write",
                      "firewall_group.rule.delete"), self.delete_rule),
            (Endpoint("GET", "/webhooks", "list_webhooks", "read", listing=True),
             self.list_webhooks),
            (Endpoint("POST", "/webhooks", "create_webhook", "write", "webhook.create"),
             self.create_webhook),
            (Endpoint("GET", wh, "get_webhook", "read"), self.get_webhook),
            (Endpoint("PATCH", wh, "update_webhook", "write", "webhook.update"),
             self.update_webhook),
            (Endpoint("DELETE", wh, "delete_webhook", "write", "webhook.delete"),
             self.delete_webhook),
            (Endpoint("POST", wh + "/test", "test_webhook", "write", "webhook.test"),
             self.test_webhook),
            (Endpoint("GET", wh + "/deliveries", "list_webhook_deliveries", "read",
                      listing=True), self.list_deliveries),
            (Endpoint("GET", "/account/tokens", "list_tokens", "read", listing=True),
             self.list_tokens),
            (Endpoint("POST", "/account/tokens", "create_token", "write", "token.create"),
             self.create_token),
            (Endpoint("DELETE", "/account/tokens/{id}", "revoke_token", "write",
                      "token.revoke"), self.revoke_token),
            (Endpoint("GET", "/billing/balance", "get_balance", "billing"), self.get_balance),
            (Endpoint("GET", "/audit/events", "list_audit_events", "read", listing=True),
             self.list_audit),
            (Endpoint("GET", "/audit/events/{id}", "get_audit_event", "read"), self.get_audit),
        ]
        for endpoint, handler in table:
            self.endpoints[(endpoint.method, endpoint.path)] = endpoint
            route(endpoint.method, endpoint.path, self._wrap(endpoint, handler), endpoint.name)

    def endpoint_of(self, method: str, template: str, prefix: str) -> Endpoint | None:
        return self.endpoints.get((method, template.removeprefix(prefix)))

    # ---- the per-endpoint wrapper -----------------------------------------------------------

    def _wrap(self, endpoint: Endpoint, handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            token = request[TOKEN_KEY]
            try:
                if _SCOPE_RANK[token.scope] < _SCOPE_RANK[endpoint.scope]:
                    raise NoKycError(
                        403,
                        f"This endpoint needs a token with the {endpoint.scope} scope; this "
                        f"token has {token.scope}.",
                        [problem("scope", "insufficient", required=endpoint.scope,
                                 granted=token.scope)],
                    )
                if not endpoint.listing:
                    listing.no_query(request.query, endpoint.query)
                if request.method == "POST":
                    response = await self._idempotent(request, handler)
                else:
                    response = await handler(request)
            except ApiError as exc:
                response = error_to_response(exc, request[REQUEST_ID_KEY])
            if endpoint.action is not None and not request.get(REPLAYED_KEY):
                self._audit(request, endpoint.action, response.status, token)
            return response

        return wrapped

    def _audit(self, request: web.Request, action: str, status: int, token: ApiToken) -> None:
        result = "ok" if status < 400 else "denied" if status == 403 else "error"
        resource = request.get(RESOURCE_KEY) or request.match_info.get("id")
        self.engine.record(action, resource, token, request[REQUEST_ID_KEY], result)

    @staticmethod
    def _fingerprint(request: web.Request, raw: bytes) -> str:
        try:
            body = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"))
        except (ValueError, UnicodeDecodeError):
            body = raw.hex()
        text = f"{request.method} {request.path}?{request.query_string}\n{body}"
        return hashlib.sha256(text.encode()).hexdigest()

    async def _idempotent(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            return await handler(request)
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise invalid(f"{IDEMPOTENCY_HEADER} must be 1-{MAX_KEY_LENGTH} characters.",
                          problem(IDEMPOTENCY_HEADER, "max_length" if key else "min_length",
                                  min=1, max=MAX_KEY_LENGTH))
        fingerprint = self._fingerprint(request, await request.read())
        self.idempotency.ttl = self.engine.settings.idempotency_ttl
        recalled = self.idempotency.recall(key)
        if recalled is not None:
            stored, first_fingerprint, request_id = recalled
            if first_fingerprint != fingerprint:
                raise conflict(
                    f"This {IDEMPOTENCY_HEADER} was already used with a different request "
                    "body; use a new key for a new request.",
                    problem(IDEMPOTENCY_HEADER, "reused_with_different_body"),
                )
            request[REPLAYED_KEY] = True
            request[REQUEST_ID_KEY] = request_id
            headers = {REPLAYED_HEADER: "true"}
            if stored.content_type:
                headers["Content-Type"] = stored.content_type
            return web.Response(status=stored.status, body=stored.body or None, headers=headers)
        if key in self._in_flight:
            raise conflict(f"A request with this {IDEMPOTENCY_HEADER} is still in progress.",
                           problem(IDEMPOTENCY_HEADER, "in_progress"))
        self._in_flight.add(key)
        try:
            try:
                response = await handler(request)
            except ApiError as exc:
                response = error_to_response(exc, request[REQUEST_ID_KEY])
        finally:
            self._in_flight.discard(key)
        if (
            isinstance(response, web.Response) and response.status < 500
            and response.status != 429
        ):
            self.idempotency.remember(key, fingerprint, request[REQUEST_ID_KEY], response)
        return response

    # ---- helpers ----------------------------------------------------------------------------

    @staticmethod
    async def _body(request: web.Request, *, required: bool = True) -> dict[str, Any]:
        raw = await request.read()
        return validation.parse_body(raw, request.content_type if raw.strip() else "",
                                     required=required)

    def _server(self, request: web.Request) -> Server:
        return self.engine.server(request.match_info["id"])

    @staticmethod
    def _list(request: web.Request, rows: list[tuple[int, Any]], filters: dict[str, Any],
              **options: Any) -> web.Response:
        query = listing.parse_query(request.query, filters, **options)
        return _json(listing.page(rows, query))

    @staticmethod
    def _created(request: web.Request, resource_id: str, body: dict[str, Any]) -> web.Response:
        request[RESOURCE_KEY] = resource_id
        return _json(body, status=201)

    # ---- servers ------------------------------------------------------------------------------

    async def list_servers(self, request: web.Request) -> web.Response:
        rows = _rows(self.engine.servers.values(), Server.to_json)
        filters = {name: eq(name) for name in ("status", "region", "plan", "image", "name")}
        filters["tags"] = member("tags")
        return self._list(request, rows, filters,
                          prefix_filters={"labels.": listing.label("labels.")})

    async def create_server(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        spec = validation.create_server(
            body, plans=PLANS_BY_ID, regions=REGIONS_BY_ID, images=IMAGES_BY_ID,
            ssh_key_exists=lambda key_id: key_id in self.engine.ssh_keys,
        )
        server = self.engine.create_server(spec)
        return self._created(request, server.id, server.to_json())

    async def get_server(self, request: web.Request) -> web.Response:
        return _json(self._server(request).to_json())

    async def update_server(self, request: web.Request) -> web.Response:
        server = self._server(request)
        patch = validation.patch_server(await self._body(request))
        return _json(self.engine.update_server(server, patch).to_json())

    async def delete_server(self, request: web.Request) -> web.Response:
        server = self._server(request)
        self.engine.destroy_server(server)
        return _json(server.to_json(), status=202)

    async def _action(self, request: web.Request, act: Callable[[Server], None]) -> web.Response:
        server = self._server(request)
        validation.no_body_fields(await self._body(request, required=False))
        act(server)
        return _json(server.to_json(), status=202)

    async def reboot_server(self, request: web.Request) -> web.Response:
        hard = request.query.get("hard", "false")
        if hard not in ("true", "false"):
            raise invalid("hard must be true or false.", problem("hard", "type",
                                                                 expected="boolean"))
        return await self._action(
            request, lambda s: self.engine.reboot_server(s, hard=hard == "true")
        )

    async def stop_server(self, request: web.Request) -> web.Response:
        return await self._action(request, self.engine.stop_server)

    async def start_server(self, request: web.Request) -> web.Response:
        return await self._action(request, self.engine.start_server)

    async def rebuild_server(self, request: web.Request) -> web.Response:
        server = self._server(request)
        image = validation.rebuild(await self._body(request), IMAGES_BY_ID)
        self.engine.rebuild_server(server, image)
        return _json(server.to_json(), status=202)

    async def restore_server(self, request: web.Request) -> web.Response:
        server = self._server(request)
        snapshot = validation.restore(await self._body(request),
                                      lambda snap_id: snap_id in self.engine.snapshots)
        self.engine.restore_server(server, snapshot)
        return _json(server.to_json(), status=202)

    async def set_rdns(self, request: web.Request) -> web.Response:
        server = self._server(request)
        values = validation.rdns(await self._body(request))
        return _json(self.engine.set_rdns(server, values).to_json())

    # ---- snapshots ----------------------------------------------------------------------------

    async def create_snapshot(self, request: web.Request) -> web.Response:
        server = self._server(request)
        spec = validation.create_snapshot(await self._body(request))
        snap = self.engine.create_snapshot(server, spec)
        return self._created(request, snap.id, snap.to_json())

    async def list_snapshots(self, request: web.Request) -> web.Response:
        rows = _rows(self.engine.snapshots.values(), lambda s: s.to_json())
        return self._list(request, rows, {n: eq(n) for n in ("server", "status", "name")})

    async def get_snapshot(self, request: web.Request) -> web.Response:
        return _json(self.engine.snapshot(request.match_info["id"]).to_json())

    async def delete_snapshot(self, request: web.Request) -> web.Response:
        self.engine.delete_snapshot(self.engine.snapshot(request.match_info["id"]))
        return web.Response(status=204)

    # ---- catalogue ----------------------------------------------------------------------------

    async def list_plans(self, request: web.Request) -> web.Response:
        rows = [(i, p.to_json()) for i, p in enumerate(PLANS, 1)]
        filters = {"category": eq("category"), "available_in": member("available_in"),
                   "cpu": eq("cpu")}
        return self._list(request, rows, filters)

    async def get_plan(self, request: web.Request) -> web.Response:
        plan = PLANS_BY_ID.get(request.match_info["id"])
        if plan is None:
            raise not_found("plan", request.match_info["id"])
        return _json(plan.to_json())

    def _region_json(self, region_id: str) -> dict[str, Any]:
        region = REGIONS_BY_ID[region_id]
        return {
            "id": region.id,
            "object": "region",
            "name": region.name,
            "country": region.country,
            "pop_id": region.pop_id,
            "available": any(region.id in p.available_in for p in PLANS),
            "ipv4_pool_remaining": self.engine.ipv4_pool[region.id],
            "tor_onion": region.tor_onion,
        }

    async def list_regions(self, request: web.Request) -> web.Response:
        rows = [(i, self._region_json(r.id)) for i, r in enumerate(REGIONS, 1)]
        return self._list(request, rows, {"country": eq("country"),
                                          "available": boolean("available")})

    async def get_region(self, request: web.Request) -> web.Response:
        region_id = request.match_info["id"]
        if region_id not in REGIONS_BY_ID:
            raise not_found("region", region_id)
        return _json(self._region_json(region_id))

    async def list_images(self, request: web.Request) -> web.Response:
        rows = [(i, image.to_json()) for i, image in enumerate(IMAGES, 1)]
        filters = {n: eq(n) for n in ("family", "type", "version", "variant")}
        filters["arch"] = member("arch")
        filters["cloud_init"] = boolean("cloud_init")
        return self._list(request, rows, filters)

    async def get_image(self, request: web.Request) -> web.Response:
        image = IMAGES_BY_ID.get(request.match_info["id"])
        if image is None:
            raise not_found("image", request.match_info["id"])
        return _json(image.to_json())

    # ---- SSH keys -----------------------------------------------------------------------------

    async def list_ssh_keys(self, request: web.Request) -> web.Response:
        rows = _rows(self.engine.ssh_keys.values(), lambda k: k.to_json(with_public_key=False))
        return self._list(request, rows, {n: eq(n) for n in ("name", "type", "fingerprint")})

    async def create_ssh_key(self, request: web.Request) -> web.Response:
        spec = validation.create_ssh_key(await self._body(request))
        key = self.engine.create_ssh_key(spec)
        return self._created(request, key.id, key.to_json())

    async def get_ssh_key(self, request: web.Request) -> web.Response:
        return _json(self.engine.ssh_key(request.match_info["id"]).to_json())

    async def delete_ssh_key(self, request: web.Request) -> web.Response:
        key = self.engine.ssh_key(request.match_info["id"])
        del self.engine.ssh_keys[key.id]
        return web.Response(status=204)

    # ---- firewall -----------------------------------------------------------------------------

    def _server_exists(self, server_id: str) -> bool:
        return server_id in self.engine.servers

    async def list_groups(self, request: web.Request) -> web.Response:
        rows = _rows(self.engine.groups.values(), lambda g: g.to_json())
        filters = {"name": eq("name"), "default_action": eq("default_action"),
                   "applied_to": member("applied_to")}
        return self._list(request, rows, filters)

    async def create_group(self, request: web.Request) -> web.Response:
        spec = validation.firewall_group(await self._body(request), self._server_exists,
                                         create=True)
        group = self.engine.create_group(spec)
        return self._created(request, group.id, group.to_json())

    async def get_group(self, request: web.Request) -> web.Response:
        return _json(self.engine.group(request.match_info["id"]).to_json())

    async def update_group(self, request: web.Request) -> web.Response:
        group = self.engine.group(request.match_info["id"])
        spec = validation.firewall_group(await self._body(request), self._server_exists,
                                         create=False)
        return _json(self.engine.update_group(group, spec).to_json())

    async def delete_group(self, request: web.Request) -> web.Response:
        self.engine.delete_group(self.engine.group(request.match_info["id"]))
        return web.Response(status=204)

    async def append_rule(self, request: web.Request) -> web.Response:
        group = self.engine.group(request.match_info["id"])
        spec = validation.append_rule(await self._body(request))
        self.engine.append_rule(group, spec)
        request[RESOURCE_KEY] = group.id
        return _json(group.to_json(), status=201)

    async def replace_rules(self, request: web.Request) -> web.Response:
        group = self.engine.group(request.match_info["id"])
        specs = validation.replace_rules(await self._body(request))
        return _json(self.engine.replace_rules(group, specs).to_json())

    async def delete_rule(self, request: web.Request) -> web.Response:
        group = self.engine.group(request.match_info["id"])
        return _json(self.engine.delete_rule(group, request.match_info["rule_id"]).to_json())

    # ---- webhooks -----------------------------------------------------------------------------

    async def list_webhooks(self, request: web.Request) -> web.Response:
        rows = _rows(self.engine.webhooks.values(), lambda h: h.to_json())
        return self._list(request, rows, {"active": boolean("active"), "url": eq("url"),
                                          "events": member("events")})

    async def create_webhook(self, request: web.Request) -> web.Response:
        spec = validation.webhook(await self._body(request), create=True,
                                  allow_http=self.engine.settings.allow_http_webhooks)
        hook = self.engine.create_webhook(spec)
        return self._created(request, hook.id, hook.to_json(with_secret=True))

    async def get_webhook(self, request: web.Request) -> web.Response:
        return _json(self.engine.webhook(request.match_info["id"]).to_json())

    async def update_webhook(self, request: web.Request) -> web.Response:
        hook = self.engine.webhook(request.match_info["id"])
        spec = validation.webhook(await self._body(request), create=False,
                                  allow_http=self.engine.settings.allow_http_webhooks)
        return _json(self.engine.update_webhook(hook, spec).to_json())

    async def delete_webhook(self, request: web.Request) -> web.Response:
        self.engine.delete_webhook(self.engine.webhook(request.match_info["id"]))
        return web.Response(status=204)

    async def test_webhook(self, request: web.Request) -> web.Response:
        hook = self.engine.webhook(request.match_info["id"])
        validation.no_body_fields(await self._body(request, required=False))
        delivery = self.engine.ping(hook)
        return _json(delivery.to_json(), status=202)

    async def list_deliveries(self, request: web.Request) -> web.Response:
        hook = self.engine.webhook(request.match_info["id"])
        rows = [(d.seq, d.to_json()) for d in self.engine.dispatcher.history(hook.id)]
        return self._list(request, rows, {n: eq(n) for n in ("status", "type", "event")})

    # ---- tokens, billing, audit ------------------------------------------------------------

    async def list_tokens(self, request: web.Request) -> web.Response:
        rows = _rows(self.engine.tokens.values(), lambda t: t.to_json())
        return self._list(request, rows, {"scope": eq("scope"), "name": eq("name")})

    async def create_token(self, request: web.Request) -> web.Response:
        spec = validation.create_token(await self._body(request))
        token, plaintext = self.engine.create_token(spec, request[TOKEN_KEY])
        return self._created(request, token.id, token.to_json(plaintext=plaintext))

    async def revoke_token(self, request: web.Request) -> web.Response:
        self.engine.revoke_token(request.match_info["id"], request[TOKEN_KEY])
        return web.Response(status=204)

    async def get_balance(self, request: web.Request) -> web.Response:
        return _json(self.engine.balance_json())

    async def list_audit(self, request: web.Request) -> web.Response:
        rows = _rows(self.engine.audit, lambda e: e.to_json())
        filters = {n: eq(n) for n in ("action", "resource", "result", "actor_token")}
        filters["from"] = listing.since("created_at", "from")
        filters["to"] = listing.until("created_at", "to")
        return self._list(request, rows, filters, aliases={"from": "from", "to": "to"})

    async def get_audit(self, request: web.Request) -> web.Response:
        event_id = request.match_info["id"]
        for event in self.engine.audit:
            if event.id == event_id:
                return _json(event.to_json())
        raise not_found("audit_event", event_id)
