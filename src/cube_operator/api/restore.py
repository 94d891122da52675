"""Restore: one-shot restore of a Cube's disk from one of its Snapshots."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ._common import ApiModel, LocalObjectReference, StatusBase, immutable
from ._kind import AGE_COLUMN, REASON_COLUMN, KindInfo

RestorePhase = Literal["Pending", "Running", "Succeeded", "Failed"]


class RestoreSpec(ApiModel):
    cube_ref: LocalObjectReference = Field(
        description="The Cube (same namespace) whose disk is replaced. Immutable.",
        json_schema_extra=immutable("cubeRef"),
    )
    snapshot_ref: LocalObjectReference = Field(
        description="The Snapshot (same namespace) to restore; it must be of the same Cube and complete. Immutable.",
        json_schema_extra=immutable("snapshotRef"),
    )


class RestoreStatus(StatusBase):
    phase: RestorePhase | None = Field(default=None, description="Pending, Running, Succeeded or Failed.")
    message: str | None = Field(default=None, description="Why the restore is in its phase.")
    cube_id: str | None = Field(default=None, description="Provider id of the restored Cube.")
    snapshot_id: str | None = Field(default=None, description="Provider id of the restored snapshot.")
    started_at: str | None = Field(default=None, description="When the provider was asked to restore.")
    accepted_at: str | None = Field(default=None, description="When the provider accepted the restore.")
    completed_at: str | None = Field(default=None, description="When the restore finished.")


RESTORE = KindInfo(
    kind="Restore",
    plural="restores",
    spec=RestoreSpec,
    status=RestoreStatus,
    short_names=("cuberestore",),
    description="Restores a Cube's disk from a Snapshot, once.",
    printer_columns=(
        {"name": "Cube", "type": "string", "jsonPath": ".spec.cubeRef.name"},
        {"name": "Snapshot", "type": "string", "jsonPath": ".spec.snapshotRef.name"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        REASON_COLUMN,
        AGE_COLUMN,
    ),
)
