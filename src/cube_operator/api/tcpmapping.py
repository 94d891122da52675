"""TcpMapping: a public host port forwarded to a port on a Cube."""
from __future__ import annotations

from pydantic import Field

from ._common import ApiModel, LocalObjectReference, StatusBase, immutable
from ._kind import AGE_COLUMN, READY_COLUMN, REASON_COLUMN, KindInfo

CIDR_PATTERN = (
    r"^(([0-9]{1,3}\.){3}[0-9]{1,3}(/([0-9]|[12][0-9]|3[0-2]))?"
    r"|[0-9a-fA-F:]*:[0-9a-fA-F:.]*(/([0-9]{1,2}|1[01][0-9]|12[0-8]))?)$"
)


class TcpMappingSpec(ApiModel):
    cube_ref: LocalObjectReference = Field(
        description="The Cube (same namespace) to forward to. Immutable.",
        json_schema_extra=immutable("cubeRef"),
    )
    cube_port: int = Field(
        ge=1, le=65535,
        description="Port inside the Cube. Changing it replaces the mapping (new host port). "
                    "SSH is not mapped here: it is the Cube's spec.sshPort.",
    )
    label: str | None = Field(default=None, max_length=100, description="Human label for the mapping.")
    whitelisted_ips: list[str] = Field(
        default_factory=list, max_length=500,
        description="IPs/CIDRs allowed to reach the port; empty leaves it open. Changing it replaces the mapping.",
        json_schema_extra={"items": {"type": "string", "pattern": CIDR_PATTERN}},
    )


class TcpMappingStatus(StatusBase):
    id: str | None = Field(default=None, description="Provider-side mapping id.")
    cube_id: str | None = Field(default=None, description="Provider id of the Cube.")
    host: str | None = Field(default=None, description="Where to connect: host:hostPort.")
    host_port: int | None = Field(default=None, description="Public host port allocated by the provider.")
    cube_port: int | None = Field(default=None, description="Cube port of the mapping in place.")
    whitelisted_ips: list[str] | None = Field(default=None, description="Allowlist of the mapping in place.")
    label: str | None = Field(default=None, description="Label of the mapping in place.")
    create_attempt: int | None = Field(default=None, description="Create attempt; part of the idempotency key.")
    create_requested_at: str | None = Field(default=None, description="When the mapping was requested.")


TCP_MAPPING = KindInfo(
    kind="TcpMapping",
    plural="tcpmappings",
    spec=TcpMappingSpec,
    status=TcpMappingStatus,
    short_names=("cubetcp",),
    description="A public TCP port forwarded to a port on a Cube, optionally limited to an IP allowlist.",
    printer_columns=(
        {"name": "Cube", "type": "string", "jsonPath": ".spec.cubeRef.name"},
        {"name": "Port", "type": "integer", "jsonPath": ".spec.cubePort"},
        # host:port once, ready to copy; the port alone is there for scripts (-o wide).
        {"name": "Address", "type": "string", "jsonPath": ".status.host"},
        {"name": "HostPort", "type": "integer", "jsonPath": ".status.hostPort", "priority": 1},
        READY_COLUMN,
        REASON_COLUMN,
        AGE_COLUMN,
    ),
)
