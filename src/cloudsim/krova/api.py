"""Krova's HTTP API (base path ``/api/v1``): auth, routing and request/response shapes.

The endpoints are the seed's, plus the spec's ``GET /space``, ``PATCH`` Cube,
``power-off``, ``restart``, ``GET .../ssh`` and ``GET .../domains/{id}/records``.
Business rules live in :mod:`cloudsim.krova.engine`; this module only authenticates,
parses, and shapes answers.

Auth: ``X-API-KEY``; a missing or unknown key is 401; a key used on another Space's
path, or a read-only key on a mutating endpoint, is 403.

Rate limit: every POST, PUT, PATCH and DELETE under ``/api/v1`` counts (the seed names
POST and DELETE; ``PUT /ssh-port`` and ``PATCH`` change state just the same, so they
count too); GETs never do.  See :mod:`cloudsim.common.ratelimit` for the headers.

Idempotency (create Cube, add domain, create TCP mapping, create snapshot): see
:mod:`cloudsim.common.idempotency`.  The rate limiter runs first, as at a real edge,
so a replay is still a mutating request that counts against the limit.  A second
request with a key whose first request is still being processed gets 409.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..common.errors import ApiError, json_response, read_json_object
from ..common.idempotency import (
    IDEMPOTENCY_HEADER,
    REPLAYED_HEADER,
    IdempotencyStore,
    checked_key,
)
from ..common.server import REPLAYED_KEY
from . import validation
from .catalog import IMAGES, PRICING, REGIONS
from .engine import KrovaEngine
from .models import ApiKey, Cube, Space

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = Callable[[str, str, Handler, str], None]

API_KEY_HEADER = "X-API-KEY"
CUBES_DEFAULT_LIMIT = 10
CUBES_MAX_LIMIT = 100
DELIVERIES_DEFAULT_LIMIT = 50
DELIVERIES_MAX_LIMIT = 100
SUCCESS = {"success": True}


class KrovaApi:
    def __init__(
        self, engine: KrovaEngine, idempotency: IdempotencyStore, keys: dict[str, ApiKey]
    ) -> None:
        self.engine = engine
        self.idempotency = idempotency
        self.keys = keys
        self._in_flight: set[tuple[str, str]] = set()

    def register(self, route: Route) -> None:
        s = "/spaces/{spaceId}"
        c = s + "/cubes/{cubeId}"
        route("GET", "/regions", self.list_regions, "list_regions")
        route("GET", "/images", self.list_images, "list_images")
        route("GET", "/pricing", self.get_pricing, "get_pricing")
        route("GET", "/space", self.get_space, "get_space")
        route("GET", s + "/cubes", self.list_cubes, "list_cubes")
        route("POST", s + "/cubes", self.create_cube, "create_cube")
        route("GET", c, self.get_cube, "get_cube")
        route("PATCH", c, self.update_cube, "update_cube")
        route("DELETE", c, self.delete_cube, "delete_cube")
        route("POST", c + "/sleep", self.sleep_cube, "sleep_cube")
        route("POST", c + "/power-off", self.power_off_cube, "power_off_cube")
        route("POST", c + "/wake", self.wake_cube, "wake_cube")
        route("POST", c + "/restart", self.restart_cube, "restart_cube")
        route("PUT", c + "/ssh-port", self.put_ssh_port, "put_ssh_port")
        route("GET", c + "/ssh", self.get_ssh, "get_ssh")
        route("GET", c + "/domains", self.list_domains, "list_domains")
        route("POST", c + "/domains", self.add_domain, "add_domain")
        route("GET", c + "/domains/{mappingId}/records", self.domain_records, "domain_records")
        route("DELETE", c + "/domains/{mappingId}", self.remove_domain, "remove_domain")
        route("GET", c + "/tcp-mappings", self.list_tcp, "list_tcp_mappings")
        route("POST", c + "/tcp-mappings", self.create_tcp, "create_tcp_mapping")
        route("DELETE", c + "/tcp-mappings/{mappingId}", self.delete_tcp, "delete_tcp_mapping")
        route("GET", c + "/snapshots", self.list_snapshots, "list_snapshots")
        route("POST", c + "/snapshots", self.create_snapshot, "create_snapshot")
        route(
            "DELETE", c + "/snapshots/{snapshotId}", self.delete_snapshot, "delete_snapshot"
        )
        route("POST", c + "/restore", self.restore, "restore_cube")
        route("GET", s + "/webhooks", self.list_webhooks, "list_webhooks")
        route("POST", s + "/webhooks", self.create_webhook, "create_webhook")
        route("GET", s + "/webhooks/{endpointId}", self.get_webhook, "get_webhook")
        route("DELETE", s + "/webhooks/{endpointId}", self.delete_webhook, "delete_webhook")
        route(
            "GET", s + "/webhooks/{endpointId}/deliveries", self.list_deliveries,
            "list_webhook_deliveries",
        )

    # ---- auth and helpers --------------------------------------------------------------

    def _api_key(self, request: web.Request) -> ApiKey:
        raw = request.headers.get(API_KEY_HEADER)
        if not raw:
            raise ApiError(401, f"Missing API key; send it in the {API_KEY_HEADER} header")
        key = self.keys.get(raw)
        if key is None:
            raise ApiError(401, "Invalid API key")
        return key

    def _space(self, request: web.Request, *, manage: bool = False) -> Space:
        key = self._api_key(request)
        space_id = request.match_info.get("spaceId", key.space_id)
        if space_id != key.space_id:
            raise ApiError(403, "This API key is not authorized for this space")
        if manage and not key.can_manage:
            raise ApiError(403, "This API key lacks the cube.manage permission")
        return self.engine.spaces[key.space_id]

    def _cube(self, request: web.Request, *, manage: bool = False) -> Cube:
        space = self._space(request, manage=manage)
        return self.engine.cube(space.id, request.match_info["cubeId"])

    def _live_cube(self, request: web.Request) -> Cube:
        space = self._space(request, manage=True)
        return self.engine.live_cube(space.id, request.match_info["cubeId"])

    async def _idempotent(
        self, request: web.Request, space: Space, produce: Callable[[], Awaitable[web.Response]]
    ) -> web.Response:
        key = checked_key(request.headers.get(IDEMPOTENCY_HEADER))
        if key is None:
            return await produce()
        stored = self.idempotency.get(space.id, key)
        if stored is not None:
            request[REPLAYED_KEY] = True
            return web.Response(
                status=stored.status,
                body=stored.body,
                headers={"Content-Type": stored.content_type, REPLAYED_HEADER: "true"},
            )
        slot = (space.id, key)
        if slot in self._in_flight:
            raise ApiError(409, f"A request with this {IDEMPOTENCY_HEADER} is still in progress")
        self._in_flight.add(slot)
        try:
            response = await produce()
        finally:
            self._in_flight.discard(slot)
        body = response.body
        if isinstance(body, bytes):
            self.idempotency.put(space.id, key, response.status, body, response.content_type)
        return response

    # ---- public --------------------------------------------------------------------------

    async def list_regions(self, request: web.Request) -> web.Response:
        return json_response({"regions": [r.to_json() for r in REGIONS]})

    async def list_images(self, request: web.Request) -> web.Response:
        return json_response({"images": [i.to_json() for i in IMAGES]})

    async def get_pricing(self, request: web.Request) -> web.Response:
        return json_response(PRICING)

    async def get_space(self, request: web.Request) -> web.Response:
        return json_response(self._space(request).to_json())

    # ---- cubes ---------------------------------------------------------------------------

    async def list_cubes(self, request: web.Request) -> web.Response:
        space = self._space(request)
        page = validation.positive_int_query(request.query.get("page"), "page", 1)
        limit = validation.positive_int_query(
            request.query.get("limit"), "limit", CUBES_DEFAULT_LIMIT
        )
        limit = min(limit, CUBES_MAX_LIMIT)
        cubes = self.engine.cubes_of(space.id)
        window = cubes[(page - 1) * limit : page * limit]
        return json_response({
            "cubes": [c.to_json() for c in window],
            "pagination": {
                "page": page,
                "limit": limit,
                "total": len(cubes),
                "totalPages": math.ceil(len(cubes) / limit),
            },
        })

    async def create_cube(self, request: web.Request) -> web.Response:
        space = self._space(request, manage=True)

        async def produce() -> web.Response:
            spec = validation.create_cube(await read_json_object(request))
            cube = self.engine.create_cube(space.id, spec)
            return json_response({"cube": cube.to_json()}, status=201)

        return await self._idempotent(request, space, produce)

    async def get_cube(self, request: web.Request) -> web.Response:
        return json_response({"cube": self._cube(request).to_json(with_server_domain=True)})

    async def update_cube(self, request: web.Request) -> web.Response:
        cube = self._cube(request, manage=True)
        body = await read_json_object(request)
        if "terminationProtection" in body:
            value = body["terminationProtection"]
            if not isinstance(value, bool):
                raise ApiError(400, "terminationProtection must be a boolean")
            self.engine.set_termination_protection(cube, value)
        return json_response({"cube": cube.to_json()})

    async def delete_cube(self, request: web.Request) -> web.Response:
        self.engine.delete_cube(self._cube(request, manage=True))
        return json_response(SUCCESS)

    async def sleep_cube(self, request: web.Request) -> web.Response:
        self.engine.sleep_cube(self._cube(request, manage=True))
        return json_response(SUCCESS)

    async def power_off_cube(self, request: web.Request) -> web.Response:
        # The spec's name for the seed's sleep: same transition, same events.
        return await self.sleep_cube(request)

    async def wake_cube(self, request: web.Request) -> web.Response:
        self.engine.wake_cube(self._cube(request, manage=True))
        return json_response(SUCCESS)

    async def restart_cube(self, request: web.Request) -> web.Response:
        self.engine.restart_cube(self._cube(request, manage=True))
        return json_response(SUCCESS)

    async def put_ssh_port(self, request: web.Request) -> web.Response:
        cube = self._live_cube(request)
        body = await read_json_object(request)
        if body.get("cubePort") is None:
            raise ApiError(400, "cubePort is required")
        port = validation.port(body["cubePort"], "cubePort")
        self.engine.change_ssh_port(cube, port)
        return json_response({"success": True, "cubePort": port})

    async def get_ssh(self, request: web.Request) -> web.Response:
        cube = self._cube(request)
        ssh = self.engine.ssh_mapping(cube.id)
        if ssh is None:
            raise ApiError(404, "SSH is not available until the Cube has booted")
        return json_response({
            "host": cube.hostname,
            "port": ssh.host_port,
            "user": cube.ssh_user,
            "hostKeys": list(cube.host_keys),
        })

    # ---- domains -------------------------------------------------------------------------

    async def list_domains(self, request: web.Request) -> web.Response:
        cube = self._cube(request)
        return json_response({"domains": [d.to_json() for d in self.engine.domains_of(cube.id)]})

    async def add_domain(self, request: web.Request) -> web.Response:
        space = self._space(request, manage=True)

        async def produce() -> web.Response:
            cube = self.engine.live_cube(space.id, request.match_info["cubeId"])
            spec = validation.add_domain(await read_json_object(request))
            domain = self.engine.add_domain(cube, spec)
            return json_response(
                {"domain": domain.to_json(), "records": domain.records()}, status=201
            )

        return await self._idempotent(request, space, produce)

    async def domain_records(self, request: web.Request) -> web.Response:
        cube = self._cube(request)
        domain = self.engine.domain(cube, request.match_info["mappingId"])
        found = domain.status == "active"
        records = [
            {
                **record,
                "state": "found" if found else "missing",
                "detail": (
                    "Record found with the expected value" if found
                    else "Record not published yet"
                ),
                "observed": [record["value"]] if found else None,
            }
            for record in domain.records()
        ]
        return json_response({
            "domain": domain.domain,
            "isWildcard": domain.is_wildcard,
            "records": records,
            "summary": {
                "found": len(records) if found else 0,
                "total": len(records),
                "complete": found,
            },
            "checkedAt": domain.updated_at if found else domain.created_at,
        })

    async def remove_domain(self, request: web.Request) -> web.Response:
        cube = self._cube(request, manage=True)
        self.engine.remove_domain(cube, request.match_info["mappingId"])
        return json_response(SUCCESS)

    # ---- TCP mappings --------------------------------------------------------------------

    async def list_tcp(self, request: web.Request) -> web.Response:
        cube = self._cube(request)
        return json_response(
            {"tcpMappings": [m.to_json() for m in self.engine.mappings_of(cube.id)]}
        )

    async def create_tcp(self, request: web.Request) -> web.Response:
        space = self._space(request, manage=True)

        async def produce() -> web.Response:
            cube = self.engine.live_cube(space.id, request.match_info["cubeId"])
            spec = validation.create_tcp_mapping(await read_json_object(request))
            mapping = self.engine.create_mapping(cube, spec)
            return json_response({"tcpMapping": mapping.to_json()}, status=201)

        return await self._idempotent(request, space, produce)

    async def delete_tcp(self, request: web.Request) -> web.Response:
        cube = self._cube(request, manage=True)
        self.engine.delete_mapping(cube, request.match_info["mappingId"])
        return json_response(SUCCESS)

    # ---- snapshots -----------------------------------------------------------------------

    async def list_snapshots(self, request: web.Request) -> web.Response:
        cube = self._cube(request)
        return json_response(
            {"snapshots": [s.to_json() for s in self.engine.snapshots_of(cube.id)]}
        )

    async def create_snapshot(self, request: web.Request) -> web.Response:
        space = self._space(request, manage=True)

        async def produce() -> web.Response:
            cube = self.engine.live_cube(space.id, request.match_info["cubeId"])
            body = await read_json_object(request, required=False)
            name = body.get("name")
            if name is not None and (
                not isinstance(name, str) or not 1 <= len(name) <= validation.SNAPSHOT_NAME_MAX
            ):
                raise ApiError(
                    400, f"name must be a string of 1-{validation.SNAPSHOT_NAME_MAX} characters"
                )
            snap = self.engine.create_snapshot(cube, name)
            return json_response({"snapshot": snap.to_json()}, status=201)

        return await self._idempotent(request, space, produce)

    async def delete_snapshot(self, request: web.Request) -> web.Response:
        cube = self._cube(request, manage=True)
        self.engine.delete_snapshot(cube, request.match_info["snapshotId"])
        return json_response(SUCCESS)

    async def restore(self, request: web.Request) -> web.Response:
        cube = self._cube(request, manage=True)
        body = await read_json_object(request)
        snapshot_id = body.get("snapshotId")
        if not isinstance(snapshot_id, str) or not snapshot_id:
            raise ApiError(400, "snapshotId is required")
        self.engine.restore(cube, snapshot_id)
        return json_response(SUCCESS)

    # ---- webhooks ------------------------------------------------------------------------

    async def list_webhooks(self, request: web.Request) -> web.Response:
        space = self._space(request)
        hooks = [w for w in self.engine.webhooks.values() if w.space_id == space.id]
        return json_response({"webhooks": [w.to_json() for w in hooks]})

    async def create_webhook(self, request: web.Request) -> web.Response:
        space = self._space(request, manage=True)
        url, events = validation.webhook(await read_json_object(request))
        hook = self.engine.create_webhook(space.id, url, events)
        return json_response({"webhook": hook.to_json(with_secret=True)}, status=201)

    async def get_webhook(self, request: web.Request) -> web.Response:
        space = self._space(request)
        hook = self.engine.webhook(space.id, request.match_info["endpointId"])
        return json_response({"webhook": hook.to_json()})

    async def delete_webhook(self, request: web.Request) -> web.Response:
        space = self._space(request, manage=True)
        self.engine.delete_webhook(space.id, request.match_info["endpointId"])
        return json_response(SUCCESS)

    async def list_deliveries(self, request: web.Request) -> web.Response:
        space = self._space(request)
        hook = self.engine.webhook(space.id, request.match_info["endpointId"])
        limit = validation.positive_int_query(
            request.query.get("limit"), "limit", DELIVERIES_DEFAULT_LIMIT
        )
        if limit > DELIVERIES_MAX_LIMIT:
            raise ApiError(400, f"limit must be between 1 and {DELIVERIES_MAX_LIMIT}")
        deliveries = self.engine.dispatcher.deliveries(hook.id, limit)
        return json_response({"deliveries": [d.to_json() for d in deliveries]})

