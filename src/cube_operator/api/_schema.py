"""Turn pydantic models into Kubernetes structural OpenAPI v3 schemas.

The pydantic models are the single source of truth; CRDs are generated from them
(`cube-operator crds`).  Kubernetes wants structural schemas: no `$ref`, no `anyOf`
with null for optional fields, no `title`.  Kubernetes extensions (e.g.
`x-kubernetes-validations`) ride along in `json_schema_extra`.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel

_DROP_KEYS = {"title", "additionalProperties"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**_resolve(target, defs), **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    if "allOf" in node and len(node["allOf"]) == 1:
        merged = {**_resolve(node["allOf"][0], defs), **{k: v for k, v in node.items() if k != "allOf"}}
        return _resolve(merged, defs)
    if "anyOf" in node:
        variants = [v for v in node["anyOf"] if v.get("type") != "null"]
        if len(variants) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            merged = {**_resolve(variants[0], defs), **rest}
            if merged.get("default", 0) is None:
                merged.pop("default")
            return _resolve(merged, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP_KEYS or key == "$defs":
            continue
        if key == "const":
            out["enum"] = [value]
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            # JSON Schema 2020 form -> OpenAPI v3.0 form, which Kubernetes requires.
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
            continue
        if key == "properties":
            out[key] = {name: _resolve(sub, defs) for name, sub in value.items()}
            continue
        out[key] = _resolve(value, defs)
    if out.get("default", 0) is None:
        out.pop("default")
    # A free-form object (dict[str, str]) keeps its additionalProperties.
    if node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _resolve(node["additionalProperties"], defs)
    return out


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """Structural OpenAPI v3 schema of a model, with aliases (camelCase) as names."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    resolved: dict[str, Any] = _resolve(raw, defs)
    resolved.setdefault("type", "object")
    return resolved
