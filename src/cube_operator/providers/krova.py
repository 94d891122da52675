"""Krova (https://krova.cloud): the async client and its domain types, side by side.

The contract is Krova's public API page (the project's seed); Krova's newer OpenAPI
spec adds fields and renames the slept state. The client works against both: every
model ignores unknown fields, ``sleeping`` and ``stopped`` are the same
:attr:`CubeState.STOPPED`, and an unknown state is :attr:`CubeState.UNKNOWN` with the
provider's word kept in ``raw_state``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Self, TypeVar

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from ._http import ProviderHTTP, ProviderObserver, RetryPolicy
from ._ratelimit import RateLimiter
from .errors import Transient

__all__ = [
    "KROVA_DEFAULT_ENDPOINT",
    "KROVA_DNS_TARGET",
    "CreateCubeRequest",
    "CubeState",
    "DnsRecord",
    "Domain",
    "Image",
    "KrovaClient",
    "KrovaCube",
    "Pricing",
    "PricingRates",
    "PricingTier",
    "Region",
    "Resources",
    "Snapshot",
    "TcpMapping",
    "Webhook",
    "WebhookDelivery",
    "WebhookWithSecret",
    "normalize_state",
]

KROVA_DEFAULT_ENDPOINT = "https://krova.cloud/api/v1"
#: Where a custom domain's CNAME must point (seed: "pointing your domain at dns.krova.cloud").
KROVA_DNS_TARGET = "dns.krova.cloud"

_M = TypeVar("_M", bound=BaseModel)

_PAGE_SIZE = 100
_MAX_PAGES = 10_000


# -- domain types ------------------------------------------------------------------


class _Model(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON body Krova expects: camelCase keys, ``None`` fields omitted."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class CubeState(StrEnum):
    """A Cube's lifecycle state, normalised across seed and spec."""

    PENDING = "pending"
    BOOTING = "booting"
    RUNNING = "running"
    STOPPED = "stopped"
    STOPPING = "stopping"
    RESIZING = "resizing"
    ERROR = "error"
    DELETED = "deleted"
    UNKNOWN = "unknown"


_STATE_ALIASES = {"sleeping": CubeState.STOPPED}


def normalize_state(raw: object) -> CubeState:
    """Krova's state string as a :class:`CubeState`: ``sleeping`` (seed) and
    ``stopped`` (spec) are STOPPED, anything unrecognised is UNKNOWN. Never raises."""
    if not isinstance(raw, str):
        return CubeState.UNKNOWN
    word = raw.strip().lower()
    if word in _STATE_ALIASES:
        return _STATE_ALIASES[word]
    try:
        return CubeState(word)
    except ValueError:
        return CubeState.UNKNOWN


class Resources(_Model):
    vcpu: int
    ram_gb: float
    disk_gb: float

    @field_serializer("ram_gb", "disk_gb")
    def _whole_numbers_as_int(self, value: float) -> float | int:
        # ``4`` rather than ``4.0`` on the wire: the spec types diskGb as an integer.
        return int(value) if float(value).is_integer() else value


class KrovaCube(_Model):
    id: str
    name: str
    state: CubeState = CubeState.UNKNOWN
    #: The state exactly as Krova sent it (``sleeping``, ``stopped``, a new word, ...).
    raw_state: str = ""
    public_ipv4: str | None = None
    resources: Resources
    image: str
    cost_per_hour: float | None = None
    #: Only on the single-Cube GET.
    server_domain: str | None = None
    #: Spec only (seed responses lack it).
    ssh_user: str | None = None
    termination_protection: bool | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _split_state(cls, data: Any) -> Any:
        if isinstance(data, dict) and "raw_state" not in data and "rawState" not in data:
            raw = data.get("state")
            data = {
                **data,
                "raw_state": raw if isinstance(raw, str) else "",
                "state": normalize_state(raw),
            }
        return data

    @field_validator("state", mode="before")
    @classmethod
    def _normalize(cls, value: Any) -> CubeState:
        if isinstance(value, CubeState):
            return value
        return normalize_state(value)


class CreateCubeRequest(_Model):
    name: str = Field(min_length=1, max_length=64)
    image: str
    resources: Resources
    ssh_public_key: str
    region: str | None = None
    # cloud-init often carries secrets: keep it out of repr().
    user_data: str | None = Field(default=None, repr=False)


class TcpMapping(_Model):
    id: str
    cube_id: str
    cube_port: int
    host_port: int | None = None
    label: str | None = None
    status: str = ""
    is_ssh: bool = False
    #: Spec: where to connect (``host:hostPort``); absent in seed responses.
    host: str | None = None
    udp_enabled: bool | None = None
    #: CIDRs, flattened from ``[{"id", "cidr"}]`` (plain strings accepted too).
    whitelisted_ips: list[str] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @field_validator("whitelisted_ips", mode="before")
    @classmethod
    def _flatten(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, list):
            out: list[Any] = []
            for item in value:
                if isinstance(item, dict):
                    out.append(item.get("cidr"))
                else:
                    out.append(item)
            return out
        return value


class Snapshot(_Model):
    id: str
    cube_id: str
    name: str | None = None
    status: str = ""
    size_bytes: int | None = None
    kind: str | None = None
    completed_at: datetime | None = None
    created_at: datetime | None = None


class DnsRecord(_Model):
    """A DNS record the user must publish for a custom domain (spec ``DnsRecord``)."""

    id: str | None = None
    type: str
    host: str
    value: str
    purpose: str | None = None
    note: str | None = None


class Domain(_Model):
    id: str
    cube_id: str
    domain: str
    port: int | None = None
    status: str = ""
    #: Records to publish, when the provider returns them (spec: on add).
    records: list[DnsRecord] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Webhook(_Model):
    id: str
    url: str
    events: list[str] = Field(default_factory=list)
    enabled: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None


class WebhookWithSecret(Webhook):
    """The create response: the signing secret is returned this once."""

    secret: SecretStr


class WebhookDelivery(_Model):
    id: str
    event: str
    status: str
    attempts: int = 0
    last_attempt_at: datetime | None = None
    response_status: int | None = None
    created_at: datetime | None = None


class Region(_Model):
    id: str
    name: str
    slug: str


class Image(_Model):
    id: str
    name: str
    version: str | None = None
    description: str | None = None
    default_user: str | None = None


class PricingRates(_Model):
    vcpu_per_hour: float
    ram_gb_per_hour: float
    disk_gb_per_hour: float


class PricingTier(_Model):
    min_vcpus: int
    max_vcpus: int | None = None
    multiplier: float
    label: str


class Pricing(_Model):
    currency: str
    rates: PricingRates
    tiers: list[PricingTier] = Field(default_factory=list)
    note: str | None = None


class _Pagination(_Model):
    total_pages: int = 1


# -- the client --------------------------------------------------------------------

_CUBES = "/spaces/{spaceId}/cubes"
_CUBE = "/spaces/{spaceId}/cubes/{cubeId}"
_WEBHOOKS = "/spaces/{spaceId}/webhooks"
_WEBHOOK = "/spaces/{spaceId}/webhooks/{endpointId}"


class KrovaClient:
    """Async client for one Krova space (one instance per ProviderConfig).

    All mutating calls of one instance share a client-side rate limiter
    (``rate_limit`` per ``rate_period`` seconds; Krova allows 10 per 60 s per IP).
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
    ) -> None:
        if not space_id:
            raise ValueError("space_id is required")
        self.space_id = space_id
        self.endpoint = endpoint.rstrip("/")
        self.rate_limiter = RateLimiter(rate_limit, rate_period)
        self._http = ProviderHTTP(
            provider=self.provider,
            base_url=self.endpoint,
            auth_headers={"X-API-KEY": api_key},
            timeout=timeout,
            rate_limiter=self.rate_limiter,
            retry=RetryPolicy(retries=retries),
            max_rate_limit_wait=max_rate_limit_wait,
            observer=observer,
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
        """Validate ``data``; a mismatch is a Transient error whose message names the
        offending fields but never echoes values (they can be secrets)."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<body>'}: {err['type']}"
                for err in exc.errors(include_input=False, include_url=False)
            )
        # Raised outside ``except``: the ValidationError quotes the input values.
        raise Transient(
            f"unexpected {model.__name__} in response: {problems}"[:500],
            provider=self.provider,
            method=method,
            route=route,
        )

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
        return await self._http.request_json("GET", route, **kwargs)

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
            pagination = self._parse(_Pagination, raw_pagination, "GET", _CUBES)
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
            path=self._path(),
            json=request.to_wire(),
            idempotency_key=idempotency_key,
        )
        return self._parse(KrovaCube, self._unwrap(body, "cube"), "POST", _CUBES)

    async def delete_cube(self, cube_id: str) -> None:
        """Enqueue deletion. NotFound propagates (the caller treats it as gone)."""
        await self._http.request("DELETE", _CUBE, path=self._path(cubeId=cube_id))

    async def sleep_cube(self, cube_id: str) -> None:
        await self._http.request("POST", _CUBE + "/sleep", path=self._path(cubeId=cube_id))

    async def wake_cube(self, cube_id: str) -> None:
        await self._http.request("POST", _CUBE + "/wake", path=self._path(cubeId=cube_id))

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
            path=self._path(cubeId=cube_id),
            json=payload,
            idempotency_key=idempotency_key,
        )
        return self._parse(TcpMapping, self._unwrap(body, "tcpMapping"), "POST", route)

    async def delete_tcp_mapping(self, cube_id: str, mapping_id: str) -> None:
        await self._http.request(
            "DELETE",
            _CUBE + "/tcp-mappings/{mappingId}",
            path=self._path(cubeId=cube_id, mappingId=mapping_id),
        )

    async def set_ssh_port(self, cube_id: str, cube_port: int) -> None:
        """Point the Cube's SSH mapping at ``cube_port`` inside the Cube."""
        await self._http.request(
            "PUT",
            _CUBE + "/ssh-port",
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
            path=self._path(cubeId=cube_id),
            json={"name": name} if name is not None else {},
            idempotency_key=idempotency_key,
        )
        return self._parse(Snapshot, self._unwrap(body, "snapshot"), "POST", route)

    async def delete_snapshot(self, cube_id: str, snapshot_id: str) -> None:
        await self._http.request(
            "DELETE",
            _CUBE + "/snapshots/{snapshotId}",
            path=self._path(cubeId=cube_id, snapshotId=snapshot_id),
        )

    async def restore_snapshot(self, cube_id: str, snapshot_id: str) -> None:
        await self._http.request(
            "POST",
            _CUBE + "/restore",
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
            "POST", _WEBHOOKS, path=self._path(), json={"url": url, "events": list(events)}
        )
        return self._parse(WebhookWithSecret, self._unwrap(body, "webhook"), "POST", _WEBHOOKS)

    async def delete_webhook(self, webhook_id: str) -> None:
        await self._http.request("DELETE", _WEBHOOK, path=self._path(endpointId=webhook_id))

    async def list_deliveries(self, webhook_id: str, *, limit: int = 50) -> list[WebhookDelivery]:
        route = _WEBHOOK + "/deliveries"
        body = await self._get(
            route, path=self._path(endpointId=webhook_id), params={"limit": limit}
        )
        return self._parse_list(WebhookDelivery, body, "deliveries", "GET", route)
