"""Patch formats accepted by kube-apiserver: JSON merge, JSON patch, strategic merge, apply."""

from __future__ import annotations

import copy
from typing import Any

JSON = Any


class PatchError(Exception):
    """The patch could not be applied to the document (kube-apiserver answers 422)."""


class MalformedPatch(Exception):
    """The patch document itself is not understood (kube-apiserver answers 400)."""


# ---------------------------------------------------------------------------------------------
# RFC 7386 JSON merge patch

def merge_patch(target: JSON, patch: JSON) -> JSON:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ---------------------------------------------------------------------------------------------
# RFC 6902 JSON patch

def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise MalformedPatch(f"invalid JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _container(doc: JSON, parts: list[str], path: str) -> JSON:
    cur = doc
    for part in parts:
        if isinstance(cur, dict):
            if part not in cur:
                raise PatchError(f"doc is missing path: \"{path}\": missing value")
            cur = cur[part]
        elif isinstance(cur, list):
            cur = cur[_index(cur, part, path, allow_end=False)]
        else:
            raise PatchError(f"doc is missing path: \"{path}\": missing value")
    return cur


def _index(lst: list[Any], part: str, path: str, allow_end: bool) -> int:
    if part == "-" and allow_end:
        return len(lst)
    try:
        idx = int(part)
    except ValueError:
        raise PatchError(f"invalid array index {part!r} in {path!r}") from None
    limit = len(lst) + (1 if allow_end else 0)
    if idx < 0 or idx >= limit:
        raise PatchError(f"unable to access invalid index: {idx}: invalid index referenced")
    return idx


def _get(doc: JSON, path: str) -> JSON:
    parts = _pointer(path)
    return _container(doc, parts, path)


def _add(doc: JSON, path: str, value: JSON) -> JSON:
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    parent = _container(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, allow_end=True), copy.deepcopy(value))
    else:
        raise PatchError(f"add operation does not apply: doc is missing path: \"{path}\"")
    return doc


def _remove(doc: JSON, path: str) -> JSON:
    parts = _pointer(path)
    if not parts:
        raise PatchError("unable to remove the whole document")
    parent = _container(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"remove operation does not apply: doc is missing path: \"{path}\"")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, path, allow_end=False)]
    else:
        raise PatchError(f"remove operation does not apply: doc is missing path: \"{path}\"")
    return doc


def json_patch(doc: JSON, ops: JSON) -> JSON:
    if not isinstance(ops, list):
        raise MalformedPatch("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise MalformedPatch(f"invalid JSON patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise MalformedPatch(f"missing value for {kind} operation on {path!r}")
        if kind == "add":
            doc = _add(doc, path, op["value"])
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            if _pointer(path):
                doc = _remove(doc, path)
            doc = _add(doc, path, op["value"])
        elif kind in ("move", "copy"):
            if "from" not in op:
                raise MalformedPatch(f"missing from for {kind} operation on {path!r}")
            value = copy.deepcopy(_get(doc, op["from"]))
            if kind == "move":
                doc = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "test":
            try:
                actual = _get(doc, path)
            except PatchError:
                actual = None
            if not _json_equal(actual, op["value"]):
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise MalformedPatch(f"Unexpected kind: {kind}")
    return doc


def _json_equal(a: JSON, b: JSON) -> bool:
    # JSON has no int/bool distinction problems in Python except True == 1; guard it.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# ---------------------------------------------------------------------------------------------
# Strategic merge patch (built-in kinds only). The emulator's built-ins are schemaless, so
# list merge keys come from a table of the well-known core/apps list fields; other lists are
# replaced, as for atomic lists.

_MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",), "initContainers": ("name",), "ephemeralContainers": ("name",),
    "env": ("name",), "volumes": ("name",), "imagePullSecrets": ("name",),
    "volumeMounts": ("mountPath",), "volumeDevices": ("devicePath",),
    "conditions": ("type",), "ownerReferences": ("uid",), "hostAliases": ("ip",),
    "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
    "ports": ("containerPort", "port"), "secrets": ("name",), "readinessGates": ("conditionType",),
}
_PRIMITIVE_MERGE = {"finalizers"}


def strategic_merge_patch(target: JSON, patch: JSON) -> JSON:
    if not isinstance(patch, dict):
        raise MalformedPatch("strategic merge patch must be a JSON object")
    return _smp_map(copy.deepcopy(target) if isinstance(target, dict) else {}, patch)


def _smp_map(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            if isinstance(target.get(name), list):
                target[name] = [x for x in target[name] if x not in value]
            continue
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            target[key] = _smp_map(target[key], value)
        elif isinstance(value, dict):
            target[key] = _smp_map({}, value)
        elif isinstance(value, list) and isinstance(target.get(key), list):
            target[key] = _smp_list(key, target[key], value)
        else:
            target[key] = copy.deepcopy(_strip_directives(value))
    if isinstance(retain, list):
        for key in list(target):
            if key not in retain:
                del target[key]
    # $setElementOrder reorders the merged lists to the order the client computed.
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") and isinstance(value, list):
            name = key.split("/", 1)[1]
            if isinstance(target.get(name), list):
                target[name] = _reorder(name, target[name], value)
    return target


def _merge_key(name: str, items: list[Any]) -> str | None:
    for key in _MERGE_KEYS.get(name, ()):
        if all(isinstance(i, dict) and key in i for i in items):
            return key
    return None


def _smp_list(name: str, current: list[Any], patch: list[Any]) -> list[Any]:
    if name in _PRIMITIVE_MERGE and all(not isinstance(x, dict) for x in patch):
        return current + [x for x in patch if x not in current]
    key = _merge_key(name, current + [p for p in patch if not (isinstance(p, dict)
                                                                and "$patch" in p
                                                                and len(p) <= 2)])
    if key is None:
        return copy.deepcopy([_strip_directives(x) for x in patch])
    result = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict):
            continue
        idx = next((i for i, c in enumerate(result) if c.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                result.pop(idx)
            continue
        if idx is None:
            result.append(_smp_map({}, item))
        else:
            result[idx] = _smp_map(result[idx], item)
    return result


def _reorder(name: str, items: list[Any], order: list[Any]) -> list[Any]:
    key = _merge_key(name, [o for o in order if isinstance(o, dict)]) if order else None
    if key is None:
        if all(not isinstance(o, dict) for o in order):
            primitive: dict[Any, int] = {v: i for i, v in enumerate(order)
                                         if isinstance(v, str | int)}
            return sorted(items, key=lambda x: primitive.get(x, len(primitive))
                          if isinstance(x, str | int) else len(primitive))
        return items
    ranked: dict[Any, int] = {o.get(key): i for i, o in enumerate(order) if isinstance(o, dict)}
    return sorted(items, key=lambda x: ranked.get(x.get(key), len(ranked))
                  if isinstance(x, dict) else len(ranked))


def _strip_directives(value: JSON) -> JSON:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# Server-side apply, without managedFields: the applied configuration is merged over the live
# object (maps recursively, lists replaced). Fields the manager stopped applying are kept.

def apply_patch(target: JSON, applied: JSON) -> JSON:
    if not isinstance(applied, dict):
        raise MalformedPatch("apply patch must be an object")
    return _apply_map(copy.deepcopy(target) if isinstance(target, dict) else {}, applied)


def _apply_map(target: dict[str, Any], applied: dict[str, Any]) -> dict[str, Any]:
    for key, value in applied.items():
        if value is None:
            continue  # null in an apply configuration means "no opinion"
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            target[key] = _apply_map(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target
