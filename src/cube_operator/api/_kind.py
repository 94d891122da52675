"""What a CRD needs beyond the spec/status models: names and printer columns."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel

GROUP = "cube-operator.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "cubeop"

READY_COLUMN: dict[str, object] = {
    "name": "Ready",
    "type": "string",
    "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    "description": "Whether the object is Ready.",
}
REASON_COLUMN: dict[str, object] = {
    "name": "Reason",
    "type": "string",
    "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
    "description": "Why the object is (not) Ready.",
}
AGE_COLUMN: dict[str, object] = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    spec: type[BaseModel]
    status: type[BaseModel]
    description: str
    short_names: tuple[str, ...] = ()
    printer_columns: tuple[Mapping[str, object], ...] = field(default=())
    #: CEL rules on the whole object (they may read ``status``, e.g. "once a VM exists").
    validations: tuple[Mapping[str, str], ...] = field(default=())

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"
