"""Domain: a custom domain routed to a port on a Cube."""
from __future__ import annotations

from pydantic import Field

from ._common import ApiModel, LocalObjectReference, StatusBase, immutable
from ._kind import AGE_COLUMN, READY_COLUMN, REASON_COLUMN, KindInfo

HOSTNAME_PATTERN = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,63}$"


class DomainSpec(ApiModel):
    cube_ref: LocalObjectReference = Field(
        description="The Cube (same namespace) the domain routes to. Immutable.",
        json_schema_extra=immutable("cubeRef"),
    )
    domain: str = Field(
        max_length=253, pattern=HOSTNAME_PATTERN,
        description="Fully qualified domain name, e.g. api.example.com. Immutable.",
        json_schema_extra=immutable("domain"),
    )
    port: int = Field(ge=1, le=65535, description="Port inside the Cube; changing it replaces the route.")


class DnsRecord(ApiModel):
    type: str = Field(description="Record type to publish (CNAME).")
    name: str = Field(description="Record name: your domain.")
    value: str = Field(description="Record value: where the domain must point.")


class DomainStatus(StatusBase):
    id: str | None = Field(default=None, description="Provider-side domain mapping id.")
    cube_id: str | None = Field(default=None, description="Provider id of the Cube.")
    state: str | None = Field(default=None, description="Provider status: pending or active.")
    port: int | None = Field(default=None, description="Port of the route in place.")
    dns_record: DnsRecord | None = Field(default=None, description="The DNS record you must publish.")
    create_attempt: int | None = Field(default=None, description="Create attempt; part of the idempotency key.")
    create_requested_at: str | None = Field(default=None, description="When the route was requested.")


DOMAIN = KindInfo(
    kind="Domain",
    plural="domains",
    spec=DomainSpec,
    status=DomainStatus,
    short_names=("cubedomain",),
    description="A custom domain routed by the provider's reverse proxy to a port on a Cube.",
    printer_columns=(
        {"name": "Domain", "type": "string", "jsonPath": ".spec.domain"},
        {"name": "Cube", "type": "string", "jsonPath": ".spec.cubeRef.name"},
        {"name": "State", "type": "string", "jsonPath": ".status.state"},
        {"name": "CNAME", "type": "string", "jsonPath": ".status.dnsRecord.value", "priority": 1},
        READY_COLUMN,
        REASON_COLUMN,
        AGE_COLUMN,
    ),
)
