"""Snapshot: a point-in-time disk snapshot of a Cube."""
from __future__ import annotations

from pydantic import Field

from ._common import (
    DELETION_POLICY_DESCRIPTION,
    ApiModel,
    DeletionPolicy,
    LocalObjectReference,
    StatusBase,
    immutable,
)
from ._kind import AGE_COLUMN, READY_COLUMN, REASON_COLUMN, KindInfo


class SnapshotSpec(ApiModel):
    cube_ref: LocalObjectReference = Field(
        description="The Cube (same namespace) to snapshot. Immutable.",
        json_schema_extra=immutable("cubeRef"),
    )
    name: str | None = Field(
        default=None, min_length=1, max_length=64,
        description="Provider-side snapshot name; generated from namespace and name when omitted. Immutable.",
        json_schema_extra=immutable("name"),
    )
    deletion_policy: DeletionPolicy = Field(default="Delete", description=DELETION_POLICY_DESCRIPTION)


class SnapshotStatus(StatusBase):
    id: str | None = Field(default=None, description="Provider-side snapshot id.")
    cube_id: str | None = Field(default=None, description="Provider id of the snapshotted Cube.")
    state: str | None = Field(default=None, description="Provider status: pending, complete, failed, ...")
    size_bytes: int | None = Field(default=None, description="Size of the snapshot in bytes.")
    size: str | None = Field(default=None, description="Size of the snapshot for people, e.g. 1.5GiB.")
    completed_at: str | None = Field(default=None, description="When the snapshot completed.")
    create_attempt: int | None = Field(default=None, description="Create attempt; part of the idempotency key.")
    create_requested_at: str | None = Field(default=None, description="When the snapshot was requested.")


SNAPSHOT = KindInfo(
    kind="Snapshot",
    plural="snapshots",
    spec=SnapshotSpec,
    status=SnapshotStatus,
    short_names=("cubesnap",),
    description="A point-in-time disk snapshot of a Cube, stored by the provider.",
    printer_columns=(
        {"name": "Cube", "type": "string", "jsonPath": ".spec.cubeRef.name"},
        {"name": "State", "type": "string", "jsonPath": ".status.state"},
        {"name": "Size", "type": "string", "jsonPath": ".status.size"},
        {"name": "Bytes", "type": "integer", "jsonPath": ".status.sizeBytes", "priority": 1},
        READY_COLUMN,
        REASON_COLUMN,
        AGE_COLUMN,
    ),
)
