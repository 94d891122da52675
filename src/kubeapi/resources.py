"""Resource types the emulator serves and the registry that discovery is built from."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import Cause

Obj = dict[str, Any]
StorageKey = tuple[str, str]  # (group, plural) of the storage the objects live in

CRUD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass
class ResourceVersion:
    name: str
    schema: dict[str, Any] | None = None  # openAPIV3Schema; None for schemaless built-ins
    printer_columns: list[dict[str, Any]] = field(default_factory=list)
    subresources: frozenset[str] = frozenset()
    deprecated: bool = False
    deprecation_warning: str | None = None


class Strategy:
    """Kind-specific behaviour of a built-in (or of every custom resource)."""

    def prepare_create(self, obj: Obj) -> None:
        """Normalise a new object before validation (defaults, derived fields)."""

    def prepare_update(self, new: Obj, old: Obj) -> None:
        """Normalise an updated object before validation."""

    def validate(self, obj: Obj, old: Obj | None) -> list[Cause]:
        return []

    def to_version(self, obj: Obj, version: str) -> Obj:
        """Storage representation -> the requested version's representation."""
        return obj

    def from_version(self, obj: Obj, version: str) -> Obj:
        """The request version's representation -> storage representation."""
        return obj


@dataclass
class ColumnSpec:
    """A server-side printing column (meta.k8s.io Table)."""

    name: str
    type: str
    description: str
    cell: Callable[[Obj], Any]
    priority: int = 0
    format: str = ""


@dataclass
class ResourceType:
    group: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    versions: dict[str, ResourceVersion]  # served versions
    storage_version: str
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    custom: bool = False
    has_generation: bool = False
    storage: StorageKey | None = None
    strategy: Strategy = field(default_factory=Strategy)
    columns: list[ColumnSpec] | None = None  # built-ins' printer columns
    name_column: bool = True  # prepend the standard Name column to ``columns``
    field_selectors: frozenset[str] | None = None  # None: any field path may be selected
    list_kind: str = ""
    crd_name: str | None = None
    verbs: tuple[str, ...] = CRUD_VERBS
    extra_subresources: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.storage is None:
            self.storage = (self.group, self.plural)
        if not self.list_kind:
            self.list_kind = f"{self.kind}List"

    @property
    def key(self) -> StorageKey:
        assert self.storage is not None
        return self.storage

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    def sorted_versions(self) -> list[str]:
        return sorted(self.versions, key=version_priority)

    def has_status(self, version: str) -> bool:
        return "status" in self.versions[version].subresources

    def schema(self, version: str) -> dict[str, Any] | None:
        return self.versions[version].schema

    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version ordering: GA > beta > alpha, higher numbers first, others last."""
    m = _VERSION_RE.match(version)
    if not m:
        return (3, 0, 0, version)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -major, -minor, version)


class Registry:
    """All served resource types, indexed by (group, version, plural)."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str], ResourceType] = {}  # (group, plural)

    def add(self, rt: ResourceType) -> None:
        self._types[(rt.group, rt.plural)] = rt

    def remove(self, group: str, plural: str) -> ResourceType | None:
        return self._types.pop((group, plural), None)

    def get(self, group: str, plural: str) -> ResourceType | None:
        return self._types.get((group, plural))

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        rt = self._types.get((group, plural))
        if rt is None or version not in rt.versions:
            return None
        return rt

    def all(self) -> Iterable[ResourceType]:
        return list(self._types.values())

    def for_storage(self, key: StorageKey) -> list[ResourceType]:
        return [rt for rt in self._types.values() if rt.key == key]

    def group_versions(self) -> dict[str, list[str]]:
        """group -> served versions, in priority order."""
        out: dict[str, set[str]] = {}
        for rt in self._types.values():
            out.setdefault(rt.group, set()).update(rt.versions)
        return {g: sorted(vs, key=version_priority) for g, vs in out.items()}

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return sorted((rt for rt in self._types.values()
                       if rt.group == group and version in rt.versions),
                      key=lambda rt: rt.plural)
