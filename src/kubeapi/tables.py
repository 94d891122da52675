"""Server-side printing: ``meta.k8s.io`` Tables for ``kubectl get``."""

from __future__ import annotations

import json
from typing import Any

from . import jsonpath
from .meta import age, parse_time
from .resources import ColumnSpec, Obj, ResourceType

NAME_DESCRIPTION = ("Name must be unique within a namespace. Is required when creating "
                    "resources, although some resources may allow a client to request the "
                    "generation of an appropriate name automatically. Name is primarily intended "
                    "for creation idempotence and configuration definition. Cannot be updated. "
                    "More info: https://kubernetes.io/docs/concepts/overview/working-with-objects"
                    "/names#names")
AGE_DESCRIPTION = ("CreationTimestamp is a timestamp representing the server time when this "
                   "object was created.")

NAME_COLUMN = ColumnSpec("Name", "string", NAME_DESCRIPTION,
                         lambda o: o.get("metadata", {}).get("name", ""), format="name")
AGE_COLUMN = ColumnSpec("Age", "date", AGE_DESCRIPTION,
                        lambda o: age(o.get("metadata", {}).get("creationTimestamp")))


def go_print(value: Any) -> str:
    """How the Go jsonpath printer renders a value in a string column."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_print(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_print(v) for v in value) + "]"
    return json.dumps(value)


def _typed_cell(typ: str, value: Any) -> Any:
    """apiextensions-apiserver's cellForJSONValue."""
    if value is None:
        return None
    if typ == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if typ == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if typ == "boolean" and isinstance(value, bool):
        return value
    if typ == "string" and isinstance(value, str):
        return value
    if typ == "date" and isinstance(value, str):
        return age(value) if parse_time(value) else "<invalid>"
    return None


def _crd_column(col: dict[str, Any]) -> ColumnSpec:
    path = str(col.get("jsonPath", ""))
    typ = str(col.get("type", "string"))

    def cell(obj: Obj) -> Any:
        try:
            found = jsonpath.find(obj, path)
        except jsonpath.JSONPathError:
            return None
        if not found:
            return None
        value = found[0]
        if typ == "string":
            return go_print(value)
        return _typed_cell(typ, value)

    return ColumnSpec(str(col.get("name", "")), typ, str(col.get("description", "")), cell,
                      int(col.get("priority", 0) or 0), str(col.get("format", "") or ""))


def columns_for(rt: ResourceType, version: str) -> list[ColumnSpec]:
    if rt.custom:
        cols = rt.versions[version].printer_columns
        if not cols:
            return [NAME_COLUMN, AGE_COLUMN]
        return [NAME_COLUMN, *(_crd_column(c) for c in cols)]
    if rt.columns is not None:
        return [NAME_COLUMN, *rt.columns] if rt.name_column else list(rt.columns)
    return [NAME_COLUMN, AGE_COLUMN]


def _row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {})}


def build_table(rt: ResourceType, version: str, objs: list[Obj], *, table_version: str = "v1",
                include_object: str = "Metadata", resource_version: str | None = None,
                continue_token: str | None = None, remaining: int | None = None,
                headers: bool = True) -> Obj:
    cols = columns_for(rt, version)
    rows = []
    for obj in objs:
        cells = []
        for col in cols:
            try:
                cells.append(col.cell(obj))
            except (KeyError, TypeError, ValueError):
                cells.append(None)
        row: Obj = {"cells": cells}
        ro = _row_object(obj, include_object)
        if ro is not None:
            row["object"] = ro
        rows.append(row)
    meta: Obj = {}
    if resource_version is not None:
        meta["resourceVersion"] = resource_version
    if continue_token:
        meta["continue"] = continue_token
    if remaining is not None:
        meta["remainingItemCount"] = remaining
    table: Obj = {"kind": "Table", "apiVersion": f"meta.k8s.io/{table_version}",
                  "metadata": meta}
    if headers:
        table["columnDefinitions"] = [
            {"name": c.name, "type": c.type, "format": c.format, "description": c.description,
             "priority": c.priority} for c in cols]
    else:
        table["columnDefinitions"] = None
    table["rows"] = rows
    return table
