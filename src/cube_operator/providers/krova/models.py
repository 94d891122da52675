"""Krova's domain types: the wire models of Cubes, mappings, snapshots, domains, webhooks.

The contract is Krova's public API page (the project's seed); Krova's newer OpenAPI
spec adds fields and renames the slept state. The client works against both: every
model ignores unknown fields, ``sleeping`` and ``stopped`` are the same
:attr:`CubeState.STOPPED`, and an unknown state is :attr:`CubeState.UNKNOWN` with the
provider's word kept in ``raw_state``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

__all__ = [
    "KROVA_DEFAULT_ENDPOINT",
    "KROVA_DNS_TARGET",
    "CreateCubeRequest",
    "CubeState",
    "DnsRecord",
    "Domain",
    "Image",
    "KrovaCube",
    "Pagination",
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


class Pagination(_Model):
    total_pages: int = 1


