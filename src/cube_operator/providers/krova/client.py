"""Krova (https://krova.cloud): the async client. Its domain types are in
:mod:`.models`; the mapping to the neutral model in :mod:`.mapping`.

Every call declares its kind: Krova limits *mutating* requests (10 per 60 s per client
IP); reads are free.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel

from .._http import (
    CallKind,
    HeaderAuth,
    ProviderHTTP,
    ProviderObserver,
    RateBudget,
    RetryPolicy,
    parse_model,
)
from .._ratelimit import RateLimiter
from ..errors import Transient
from .models import (
    KROVA_DEFAULT_ENDPOINT,
    CreateCubeRequest,
    Domain,
    Image,
    KrovaCube,
    Pagination,
    Pricing,
    Region,
    Snapshot,
    TcpMapping,
    Webhook,
    WebhookDelivery,
    WebhookWithSecret,
)

__all__ = ["KrovaClient", "error_envelope"]


def error_envelope(body: bytes | str | None) -> tuple[str | None, str | None]:
    """Krova's documented error body, ``{"error": "text"}`` (OpenAPI ``Error``), and nothing
    else: text from anything that merely looks like JSON (a proxy, a wrong endpoint) is
    never shown in status."""
    if not body:
        return None, None
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("error"), str) or not parsed["error"]:
        return None, None
    code = parsed.get("code")
    return parsed["error"], code if isinstance(code, str) else None

_M = TypeVar("_M", bound=BaseModel)

_PAGE_SIZE = 100
_MAX_PAGES = 10_000
READ, MUTATE, PROVISION = CallKind.READ, CallKind.MUTATE, CallKind.PROVISION

# -- the client --------------------------------------------------------------------

_CUBES = "/spaces/{spaceId}/cubes"
_CUBE = "/spaces/{spaceId}/cubes/{cubeId}"
_WEBHOOKS = "/spaces/{spaceId}/webhooks"
_WEBHOOK = "/spaces/{spaceId}/webhooks/{endpointId}"


class KrovaClient:
    """Async client for one Krova space (one instance per ProviderConfig).

    All mutating calls share a client-side rate limit (``rate_limit`` per ``rate_period``
    seconds; Krova allows 10 per 60 s per IP), or the ``budgets`` given, which clients
    of the same account share.
    """

    provider = "krova"

    def __init__(
        self,
        *,
        api_key: str,
        space_id: str,
        endpoint: str = KROVA_DEFAULT_ENDPOINT,
        rate_limit: int = 10,
        rate_period: float = 60.0,
        timeout: float = 10.0,
        max_rate_limit_wait: float = 120.0,
        retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        observer: ProviderObserver | None = None,
        budgets: Sequence[RateBudget] | None = None,
    ) -> None:
        if not space_id:
            raise ValueError("space_id is required")
        self.space_id = space_id
        self.endpoint = endpoint.rstrip("/")
        if budgets is None:
            budgets = (RateBudget(RateLimiter(rate_limit, rate_period),
                                  frozenset({MUTATE, PROVISION})),)
        self.budgets = tuple(budgets)
        self.rate_limiter = self.budgets[0].limiter
        self._http = ProviderHTTP(
            provider=self.provider,
            base_url=self.endpoint,
            auth=HeaderAuth("X-API-KEY", api_key),
            timeout=timeout,
            budgets=self.budgets,
            retry=RetryPolicy(retries=retries),
            max_rate_limit_wait=max_rate_limit_wait,
            observer=observer,
            error_parser=error_envelope,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"KrovaClient(endpoint={self.endpoint!r}, space_id={self.space_id!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- plumbing -------------------------------------------------------------------

    def _path(self, **ids: str) -> dict[str, str]:
        return {"spaceId": self.space_id, **ids}

    def _parse(self, model: type[_M], data: Any, method: str, route: str) -> _M:
        return parse_model(model, data, provider=self.provider, method=method, route=route)

    def _parse_list(
        self, model: type[_M], body: dict[str, Any], key: str, method: str, route: str
    ) -> list[_M]:
        items = body.get(key)
        if items is None:
            return []
        if not isinstance(items, list):
            raise Transient(
                f"expected a list under {key!r}",
                provider=self.provider,
                method=method,
                route=route,
            )
        return [self._parse(model, item, method, route) for item in items]

    @staticmethod
    def _unwrap(body: dict[str, Any], key: str) -> Any:
        """``body[key]`` for enveloped responses (``{"cube": {...}}``), else ``body``."""
        inner = body.get(key)
        return inner if isinstance(inner, dict) else body

    async def _get(self, route: str, **kwargs: Any) -> dict[str, Any]:
        return await self._http.request_json("GET", route, kind=READ, **kwargs)

    # -- public catalogue -----------------------------------------------------------

    async def list_regions(self) -> list[Region]:
        body = await self._get("/regions", authenticated=False)
        return self._parse_list(Region, body, "regions", "GET", "/regions")

    async def list_images(self) -> list[Image]:
        body = await self._get("/images", authenticated=False)
        return self._parse_list(Image, body, "images", "GET", "/images")

    async def get_pricing(self) -> Pricing:
        body = await self._get("/pricing", authenticated=False)
        return self._parse(Pricing, body, "GET", "/pricing")

    # -- cubes ----------------------------------------------------------------------

    async def check_credentials(self) -> None:
        """One cheap authenticated GET; raises Unauthorized, Forbidden or Transient."""
        await self._get(_CUBES, path=self._path(), params={"page": 1, "limit": 1})

    async def list_cubes(self) -> list[KrovaCube]:
        """Every Cube in the space, walking all pages (``limit=100``)."""
        cubes: dict[str, KrovaCube] = {}
        page = 1
        while page <= _MAX_PAGES:
            body = await self._get(
                _CUBES, path=self._path(), params={"page": page, "limit": _PAGE_SIZE}
            )
            items = self._parse_list(KrovaCube, body, "cubes", "GET", _CUBES)
            for cube in items:
                # Offset paging can repeat an item when the set shifts between pages.
                cubes.setdefault(cube.id, cube)
            raw_pagination = body.get("pagination")
            if not isinstance(raw_pagination, dict) or not items:
                break
            pagination = self._parse(Pagination, raw_pagination, "GET", _CUBES)
            if page >= pagination.total_pages:
                break
            page += 1
        return list(cubes.values())

    async def get_cube(self, cube_id: str) -> KrovaCube:
        body = await self._get(_CUBE, path=self._path(cubeId=cube_id))
        return self._parse(KrovaCube, self._unwrap(body, "cube"), "GET", _CUBE)

    async def create_cube(self, request: CreateCubeRequest, *, idempotency_key: str) -> KrovaCube:
        """Create a Cube; replaying ``idempotency_key`` returns the same Cube."""
        body = await self._http.request_json(
            "POST",
            _CUBES,
            kind=PROVISION,
            path=self._path(),
            json=request.to_wire(),
            idempotency_key=idempotency_key,
        )
        return self._parse(KrovaCube, self._unwrap(body, "cube"), "POST", _CUBES)

    async def delete_cube(self, cube_id: str) -> None:
        """Enqueue deletion. NotFound propagates (the caller treats it as gone)."""
        await self._http.request("DELETE", _CUBE, kind=MUTATE, path=self._path(cubeId=cube_id))

    async def sleep_cube(self, cube_id: str) -> None:
        await self._http.request("POST", _CUBE + "/sleep", kind=MUTATE, path=self._path(cubeId=cube_id))

    async def wake_cube(self, cube_id: str) -> None:
        await self._http.request("POST", _CUBE + "/wake", kind=MUTATE, path=self._path(cubeId=cube_id))

    # -- TCP mappings and SSH -------------------------------------------------------

    async def list_tcp_mappings(self, cube_id: str) -> list[TcpMapping]:
        route = _CUBE + "/tcp-mappings"
        body = await self._get(route, path=self._path(cubeId=cube_id))
        return self._parse_list(TcpMapping, body, "tcpMappings", "GET", route)

    async def create_tcp_mapping(
        self,
        cube_id: str,
        *,
        cube_port: int,
        label: str | None,
        whitelisted_ips: list[str],
        idempotency_key: str,
    ) -> TcpMapping:
        route = _CUBE + "/tcp-mappings"
        payload: dict[str, Any] = {"cubePort": cube_port, "whitelistedIps": list(whitelisted_ips)}
        if label is not None:
            payload["label"] = label
        body = await self._http.request_json(
            "POST",
            route,
            kind=MUTATE,
            path=self._path(cubeId=cube_id),
            json=payload,
            idempotency_key=idempotency_key,
        )
        return self._parse(TcpMapping, self._unwrap(body, "tcpMapping"), "POST", route)

    async def delete_tcp_mapping(self, cube_id: str, mapping_id: str) -> None:
        await self._http.request(
            "DELETE",
            _CUBE + "/tcp-mappings/{mappingId}",
            kind=MUTATE,
            path=self._path(cubeId=cube_id, mappingId=mapping_id),
        )

    async def set_ssh_port(self, cube_id: str, cube_port: int) -> None:
        """Point the Cube's SSH mapping at ``cube_port`` inside the Cube."""
        await self._http.request(
            "PUT",
            _CUBE + "/ssh-port",
            kind=MUTATE,
            path=self._path(cubeId=cube_id),
            json={"cubePort": cube_port},
        )

    # -- snapshots ------------------------------------------------------------------

    async def list_snapshots(self, cube_id: str) -> list[Snapshot]:
        route = _CUBE + "/snapshots"
        body = await self._get(route, path=self._path(cubeId=cube_id))
        return self._parse_list(Snapshot, body, "snapshots", "GET", route)

    async def create_snapshot(
        self, cube_id: str, *, name: str | None, idempotency_key: str
    ) -> Snapshot:
        route = _CUBE + "/snapshots"
        body = await self._http.request_json(
            "POST",
            route,
            kind=MUTATE,
            path=self._path(cubeId=cube_id),
            json={"name": name} if name is not None else {},
            idempotency_key=idempotency_key,
        )
        return self._parse(Snapshot, self._unwrap(body, "snapshot"), "POST", route)

    async def delete_snapshot(self, cube_id: str, snapshot_id: str) -> None:
        await self._http.request(
            "DELETE",
            _CUBE + "/snapshots/{snapshotId}",
            kind=MUTATE,
            path=self._path(cubeId=cube_id, snapshotId=snapshot_id),
        )

    async def restore_snapshot(self, cube_id: str, snapshot_id: str) -> None:
        await self._http.request(
            "POST",
            _CUBE + "/restore",
            kind=MUTATE,
            path=self._path(cubeId=cube_id),
            json={"snapshotId": snapshot_id},
        )

    # -- domains --------------------------------------------------------------------

    async def list_domains(self, cube_id: str) -> list[Domain]:
        route = _CUBE + "/domains"
        body = await self._get(route, path=self._path(cubeId=cube_id))
        return self._parse_list(Domain, body, "domains", "GET", route)

    async def add_domain(
        self, cube_id: str, *, domain: str, port: int, idempotency_key: str
    ) -> Domain:
        """Attach ``domain`` (its CNAME must point at :data:`KROVA_DNS_TARGET`)."""
        route = _CUBE + "/domains"
        body = await self._http.request_json(
            "POST",
            route,
            kind=MUTATE,
            path=self._path(cubeId=cube_id),
            json={"domain": domain, "port": port},
            idempotency_key=idempotency_key,
        )
        data = self._unwrap(body, "domain")
        records = body.get("records")
        if data is not body and isinstance(records, list):
            data = {**data, "records": records}
        return self._parse(Domain, data, "POST", route)

    async def delete_domain(self, cube_id: str, domain_id: str) -> None:
        await self._http.request(
            "DELETE",
            _CUBE + "/domains/{mappingId}",
            kind=MUTATE,
            path=self._path(cubeId=cube_id, mappingId=domain_id),
        )

    # -- webhooks -------------------------------------------------------------------

    async def list_webhooks(self) -> list[Webhook]:
        body = await self._get(_WEBHOOKS, path=self._path())
        return self._parse_list(Webhook, body, "webhooks", "GET", _WEBHOOKS)

    async def get_webhook(self, webhook_id: str) -> Webhook:
        body = await self._get(_WEBHOOK, path=self._path(endpointId=webhook_id))
        return self._parse(Webhook, self._unwrap(body, "webhook"), "GET", _WEBHOOK)

    async def create_webhook(self, *, url: str, events: list[str]) -> WebhookWithSecret:
        """Subscribe ``url``; the returned ``secret`` is shown by Krova only this once."""
        body = await self._http.request_json(
            "POST", _WEBHOOKS, kind=MUTATE, path=self._path(),
            json={"url": url, "events": list(events)},
        )
        return self._parse(WebhookWithSecret, self._unwrap(body, "webhook"), "POST", _WEBHOOKS)

    async def delete_webhook(self, webhook_id: str) -> None:
        await self._http.request("DELETE", _WEBHOOK, kind=MUTATE, path=self._path(endpointId=webhook_id))

    async def list_deliveries(self, webhook_id: str, *, limit: int = 50) -> list[WebhookDelivery]:
        route = _WEBHOOK + "/deliveries"
        body = await self._get(
            route, path=self._path(endpointId=webhook_id), params={"limit": limit}
        )
        return self._parse_list(WebhookDelivery, body, "deliveries", "GET", route)
