"""Structural-schema semantics of CRD ``openAPIV3Schema``: pruning, defaulting, validation.

Messages follow kube-openapi / apiextensions-apiserver so that clients see the same text as
on a real cluster, e.g. ``spec.replicas: Invalid value: 0: spec.replicas in body should be
greater than or equal to 1``. Validation ratchets like Kubernetes >= 1.30: a subtree that
is unchanged from the old object is not re-validated on update.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import ipaddress
import json
import re
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from . import cel
from .errors import Cause
from .meta import OBJECT_META_FIELDS

Schema = dict[str, Any]

_ROOT_KEEP = ("apiVersion", "kind", "metadata")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# ---------------------------------------------------------------------------------------------
# Pruning

def prune(obj: dict[str, Any], schema: Schema | None) -> list[str]:
    """Drop fields the schema does not declare; returns the dropped paths (for warnings)."""
    dropped: list[str] = []
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in list(meta):
            if key not in OBJECT_META_FIELDS:
                del meta[key]
                dropped.append(f"metadata.{key}")
    if schema is None:
        return dropped
    _prune(obj, schema, "", dropped, root=True)
    return dropped


def _prune(value: Any, schema: Schema, path: str, dropped: list[str], root: bool = False) -> None:
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(schema.get("x-kubernetes-embedded-resource"))
    if isinstance(value, dict):
        props: dict[str, Schema] = schema.get("properties") or {}
        addl = schema.get("additionalProperties")
        for key in list(value):
            if (root or embedded) and key in _ROOT_KEEP:
                if key == "metadata" and embedded and isinstance(value[key], dict):
                    for mk in list(value[key]):
                        if mk not in OBJECT_META_FIELDS:
                            del value[key][mk]
                continue
            if key in props:
                _prune(value[key], props[key], _join(path, key), dropped)
            elif isinstance(addl, dict):
                _prune(value[key], addl, _join(path, key), dropped)
            elif preserve or addl is True:
                continue
            else:
                del value[key]
                dropped.append(_join(path, key))
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _prune(item, items, f"{path}[{i}]", dropped)


# ---------------------------------------------------------------------------------------------
# Defaulting

def apply_defaults(value: Any, schema: Schema | None) -> None:
    """Structural defaulting: set ``default`` where absent, drop non-nullable nulls."""
    if schema is None:
        return
    if isinstance(value, dict):
        props: dict[str, Schema] = schema.get("properties") or {}
        for key, sub in props.items():
            if key in value and value[key] is None and not sub.get("nullable"):
                if "default" in sub:
                    value[key] = copy.deepcopy(sub["default"])
                else:
                    del value[key]
                    continue
            elif key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                apply_defaults(value[key], sub)
        addl = schema.get("additionalProperties")
        if isinstance(addl, dict):
            for key in value:
                if key not in props:
                    apply_defaults(value[key], addl)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                if item is None and "default" in items and not items.get("nullable"):
                    value[i] = copy.deepcopy(items["default"])
                apply_defaults(value[i], items)


# ---------------------------------------------------------------------------------------------
# Validation

_ABSENT = object()


#: Set while the structural pass of validate() runs: rules are evaluated only after it passes.
_STRUCTURAL_ONLY: ContextVar[bool] = ContextVar("structural_only", default=False)
#: Schema errors after which kube-apiserver does not evaluate CEL rules, and its cause saying so.
_BLOCKING = frozenset({"FieldValueRequired", "FieldValueNotSupported", "FieldValueTypeInvalid"})
RULES_NOT_CHECKED = Cause("FieldValueInvalid", "Invalid value: null: some validation rules were not "
                          "checked because the object was invalid; correct the existing errors to "
                          "complete validation", "<nil>")


def _has_rules(schema: Any) -> bool:
    if isinstance(schema, dict):
        return "x-kubernetes-validations" in schema or any(_has_rules(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_has_rules(v) for v in schema)
    return False


def validate(obj: Any, schema: Schema | None, old: Any = _ABSENT) -> list[Cause]:
    """Validate a whole object; pass ``old`` on update (ratcheting and transition rules)."""
    if schema is None:
        return []
    causes: list[Cause] = []
    body = {k: v for k, v in obj.items() if k not in _ROOT_KEEP} if isinstance(obj, dict) else obj
    old_body = ({k: v for k, v in old.items() if k not in _ROOT_KEEP}
                if isinstance(old, dict) else old)
    root_schema = {k: v for k, v in schema.items() if k != "required"}
    # The root "required" still applies, minus the keys the server manages itself.
    required = [r for r in schema.get("required", []) if r not in _ROOT_KEEP]
    if required:
        root_schema["required"] = required
    props = root_schema.get("properties")
    if isinstance(props, dict):
        root_schema["properties"] = {k: v for k, v in props.items() if k not in _ROOT_KEEP}
    # As kube-apiserver (apiextensions' hasBlockingErr): the schema first; CEL rules are not
    # evaluated on an object with a missing, unsupported or wrongly typed value.
    token = _STRUCTURAL_ONLY.set(True)
    try:
        _validate(body, root_schema, "", old_body, causes)
    finally:
        _STRUCTURAL_ONLY.reset(token)
    if any(c.reason in _BLOCKING for c in causes):
        return causes + ([RULES_NOT_CHECKED] if _has_rules(root_schema) else [])
    causes = []
    _validate(body, root_schema, "", old_body, causes)
    return causes


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _fmt_value(value: Any) -> str:
    """The Go ``%#v``-ish rendering field.Invalid uses for values in messages."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return _fmt_number(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _fmt_number(n: Any) -> str:
    if isinstance(n, float) and n.is_integer():
        return str(int(n))
    return str(n)


def _type_ok(value: Any, typ: str) -> bool:
    actual = _type_name(value)
    if typ == "number":
        return actual in ("integer", "number")
    return actual == typ


def _validate(value: Any, schema: Schema, path: str, old: Any, causes: list[Cause]) -> None:
    if old is not _ABSENT and _deep_equal(value, old):
        return  # ratcheting: unchanged subtrees keep validating as they did
    where = path or "<root>"
    if value is None:
        if schema.get("nullable") or (not schema.get("type")
                                      and schema.get("x-kubernetes-preserve-unknown-fields")):
            return
        typ = "integer-or-string" if schema.get("x-kubernetes-int-or-string") else \
            schema.get("type")
        if typ:
            causes.append(Cause("FieldValueTypeInvalid",
                                f'Invalid value: "null": {where} in body must be of type '
                                f'{typ}: "null"', path))
            return
    if schema.get("x-kubernetes-int-or-string"):
        if _type_name(value) not in ("integer", "string"):
            causes.append(Cause("FieldValueTypeInvalid",
                                f'Invalid value: "{_type_name(value)}": {where} in body must be '
                                f'of type integer,string: "{_type_name(value)}"', path))
            return
    elif schema.get("type") and not _type_ok(value, schema["type"]):
        actual = _type_name(value)
        causes.append(Cause("FieldValueTypeInvalid",
                            f'Invalid value: "{actual}": {where} in body must be of type '
                            f'{schema["type"]}: "{actual}"', path))
        return

    if "enum" in schema and not any(_deep_equal(value, e) for e in schema["enum"]):
        supported = ", ".join(_fmt_value(e) for e in schema["enum"])
        causes.append(Cause("FieldValueNotSupported",
                            f"Unsupported value: {_fmt_value(value)}: supported values: "
                            f"{supported}", path))

    if isinstance(value, str):
        _validate_string(value, schema, path, where, causes)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _validate_number(value, schema, path, where, causes)
    elif isinstance(value, list):
        _validate_array(value, schema, path, where, old, causes)
    elif isinstance(value, dict):
        _validate_object(value, schema, path, where, old, causes)

    for key in ("allOf", "anyOf", "oneOf"):
        subs = schema.get(key)
        if not isinstance(subs, list):
            continue
        results = [_sub_causes(value, s, path) for s in subs]
        passed = sum(1 for r in results if not r)
        if key == "allOf":
            for r in results:
                causes.extend(r)
        elif key == "anyOf" and passed == 0:
            causes.append(Cause("FieldValueInvalid", f"Invalid value: {_fmt_value(value)}: "
                                f"{where} in body must validate at least one schema (anyOf)",
                                path))
        elif key == "oneOf" and passed != 1:
            causes.append(Cause("FieldValueInvalid", f"Invalid value: {_fmt_value(value)}: "
                                f"{where} in body must validate one and only one schema (oneOf)",
                                path))
    if isinstance(schema.get("not"), dict) and not _sub_causes(value, schema["not"], path):
        causes.append(Cause("FieldValueInvalid", f"Invalid value: {_fmt_value(value)}: {where} "
                            "in body should not validate the given schema", path))

    _validate_rules(value, schema, path, old, causes)


def _sub_causes(value: Any, schema: Schema, path: str) -> list[Cause]:
    out: list[Cause] = []
    _validate(value, schema, path, _ABSENT, out)
    return out


def _validate_string(value: str, schema: Schema, path: str, where: str,
                     causes: list[Cause]) -> None:
    length = len(value)
    if "maxLength" in schema and length > schema["maxLength"]:
        causes.append(Cause("FieldValueTooLong",
                            f"Too long: may not be more than {schema['maxLength']} bytes", path))
    if "minLength" in schema and length < schema["minLength"]:
        causes.append(Cause("FieldValueInvalid",
                            f"Invalid value: {_fmt_value(value)}: {where} in body should be at "
                            f"least {schema['minLength']} chars long", path))
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        rx = _compile_pattern(pattern)
        if rx is not None and not rx.search(value):
            causes.append(Cause("FieldValueInvalid",
                                f"Invalid value: {_fmt_value(value)}: {where} in body should "
                                f"match '{pattern}'", path))
    fmt = schema.get("format")
    if isinstance(fmt, str) and not _format_ok(fmt, value):
        causes.append(Cause("FieldValueInvalid",
                            f"Invalid value: {_fmt_value(value)}: {where} in body must be of "
                            f"type {fmt}: {_fmt_value(value)}", path))


@lru_cache(maxsize=512)
def _compile_pattern(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _validate_number(value: float, schema: Schema, path: str, where: str,
                     causes: list[Cause]) -> None:
    shown = _fmt_value(value)
    if "minimum" in schema:
        low = schema["minimum"]
        if schema.get("exclusiveMinimum") is True:
            if not value > low:
                causes.append(Cause("FieldValueInvalid", f"Invalid value: {shown}: {where} in "
                                    f"body should be greater than {_fmt_number(low)}", path))
        elif value < low:
            causes.append(Cause("FieldValueInvalid", f"Invalid value: {shown}: {where} in body "
                                f"should be greater than or equal to {_fmt_number(low)}", path))
    if "maximum" in schema:
        high = schema["maximum"]
        if schema.get("exclusiveMaximum") is True:
            if not value < high:
                causes.append(Cause("FieldValueInvalid", f"Invalid value: {shown}: {where} in "
                                    f"body should be less than {_fmt_number(high)}", path))
        elif value > high:
            causes.append(Cause("FieldValueInvalid", f"Invalid value: {shown}: {where} in body "
                                f"should be less than or equal to {_fmt_number(high)}", path))
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and step and (value / step) != int(value / step):
        causes.append(Cause("FieldValueInvalid", f"Invalid value: {shown}: {where} in body "
                            f"should be a multiple of {_fmt_number(step)}", path))


def _validate_array(value: list[Any], schema: Schema, path: str, where: str, old: Any,
                    causes: list[Cause]) -> None:
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        causes.append(Cause("FieldValueTooMany", f"Too many: {len(value)}: must have at most "
                            f"{schema['maxItems']} items", path))
    if "minItems" in schema and len(value) < schema["minItems"]:
        causes.append(Cause("FieldValueInvalid", f"Invalid value: {len(value)}: {where} in body "
                            f"should have at least {schema['minItems']} items", path))
    list_type = schema.get("x-kubernetes-list-type")
    keys = schema.get("x-kubernetes-list-map-keys") or []
    if list_type == "set" or schema.get("uniqueItems"):
        seen: list[Any] = []
        for i, item in enumerate(value):
            if any(_deep_equal(item, s) for s in seen):
                causes.append(Cause("FieldValueDuplicate",
                                    f"Duplicate value: {_fmt_value(item)}", f"{path}[{i}]"))
            seen.append(item)
    elif list_type == "map" and keys:
        seen_keys: set[str] = set()
        for i, item in enumerate(value):
            if isinstance(item, dict):
                ident = json.dumps({k: item.get(k) for k in keys}, sort_keys=True)
                if ident in seen_keys:
                    causes.append(Cause("FieldValueDuplicate", f"Duplicate value: {ident}",
                                        f"{path}[{i}]"))
                seen_keys.add(ident)
    items = schema.get("items")
    if isinstance(items, dict):
        old_items = _correlate_list(value, old, schema)
        for i, item in enumerate(value):
            _validate(item, items, f"{path}[{i}]", old_items[i], causes)


def _correlate_list(value: list[Any], old: Any, schema: Schema) -> list[Any]:
    """Old counterparts of list items; only map-lists correlate (as for CEL's oldSelf)."""
    keys = schema.get("x-kubernetes-list-map-keys") or []
    if schema.get("x-kubernetes-list-type") != "map" or not keys or not isinstance(old, list):
        return [_ABSENT] * len(value)
    index = {json.dumps({k: o.get(k) for k in keys}, sort_keys=True): o
             for o in old if isinstance(o, dict)}
    return [index.get(json.dumps({k: v.get(k) for k in keys}, sort_keys=True), _ABSENT)
            if isinstance(v, dict) else _ABSENT for v in value]


def _validate_object(value: dict[str, Any], schema: Schema, path: str, where: str, old: Any,
                     causes: list[Cause]) -> None:
    for req in schema.get("required") or []:
        if req not in value:
            causes.append(Cause("FieldValueRequired", "Required value", _join(path, req)))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        causes.append(Cause("FieldValueTooMany", f"Too many: {len(value)}: must have at most "
                            f"{schema['maxProperties']} items", path))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        causes.append(Cause("FieldValueInvalid", f"Invalid value: {len(value)}: {where} in body "
                            f"should have at least {schema['minProperties']} properties", path))
    props: dict[str, Schema] = schema.get("properties") or {}
    addl = schema.get("additionalProperties")
    old_map = old if isinstance(old, dict) else {}
    for key, item in value.items():
        sub = props.get(key) or (addl if isinstance(addl, dict) else None)
        if sub is not None:
            _validate(item, sub, _join(path, key), old_map.get(key, _ABSENT), causes)


def _validate_rules(value: Any, schema: Schema, path: str, old: Any,
                    causes: list[Cause]) -> None:
    rules = schema.get("x-kubernetes-validations")
    if not isinstance(rules, list) or _STRUCTURAL_ONLY.get():
        return
    for rule in rules:
        if not isinstance(rule, dict) or not isinstance(rule.get("rule"), str):
            continue
        program = _compiled(rule["rule"])
        if program is None:
            continue  # outside the supported CEL subset: ignored, never rejects
        if program.is_transition and old is _ABSENT:
            continue  # transition rules only run when there is an old value to compare to
        try:
            ok = program.evaluate(value, None if old is _ABSENT else old) is True
            detail = rule.get("message") or f"failed rule: {_rule_text(rule['rule'])}"
        except cel.EvalError as e:
            ok, detail = False, f"{e} evaluating rule: {rule['rule']}"
        if ok:
            continue
        field_path = path
        if isinstance(rule.get("fieldPath"), str) and rule["fieldPath"]:
            field_path = path + rule["fieldPath"] if rule["fieldPath"].startswith(".") \
                else _join(path, rule["fieldPath"])
        reason = rule.get("reason") or "FieldValueInvalid"
        typ = schema.get("type") or ("object" if isinstance(value, dict) else _type_name(value))
        body = {
            "FieldValueForbidden": f"Forbidden: {detail}",
            "FieldValueRequired": f"Required value: {detail}",
            "FieldValueDuplicate": f"Duplicate value: {detail}",
        }.get(reason, f'Invalid value: "{typ}": {detail}')
        causes.append(Cause(reason, body, field_path))


def _rule_text(rule: str) -> str:
    return " ".join(rule.split())


@lru_cache(maxsize=1024)
def _compiled(rule: str) -> cel.Program | None:
    return cel.compile_rule(rule)


def _deep_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b) or (
        isinstance(a, int | float) and isinstance(b, int | float) and a == b)


# ---------------------------------------------------------------------------------------------
# Formats (the simple ones kube-openapi checks for strings)

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?"
                          r"(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$")
_DURATION_RE = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h|d|w))+$")
_MAC_RE = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
_DATE_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _format_ok(fmt: str, value: str) -> bool:
    try:
        if fmt in ("uuid", "uuid3", "uuid4", "uuid5"):
            uuid.UUID(value)
        elif fmt == "email":
            return bool(_EMAIL_RE.match(value))
        elif fmt == "hostname":
            return bool(_HOSTNAME_RE.match(value))
        elif fmt == "ipv4":
            ipaddress.IPv4Address(value)
        elif fmt == "ipv6":
            ipaddress.IPv6Address(value)
        elif fmt == "cidr":
            ipaddress.ip_network(value, strict=False)
        elif fmt == "mac":
            return bool(_MAC_RE.match(value))
        elif fmt == "byte":
            base64.b64decode(value, validate=True)
        elif fmt == "date":
            dt.date.fromisoformat(value)
        elif fmt == "date-time":
            return bool(_DATE_TIME_RE.match(value))
        elif fmt == "duration":
            return bool(_DURATION_RE.match(value))
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Structural checks for CRD registration

def structural_problems(schema: Any, path: str = "spec.validation.openAPIV3Schema"
                        ) -> Iterator[Cause]:
    """The few structural-schema rules whose violation makes a CRD unusable here."""
    if not isinstance(schema, dict):
        yield Cause("FieldValueRequired", "Required value: schemas are required", path)
        return
    if schema.get("type") is None and not schema.get("x-kubernetes-preserve-unknown-fields") \
            and not schema.get("x-kubernetes-int-or-string"):
        yield Cause("FieldValueRequired", "Required value: must not be empty for specified "
                    "object fields", f"{path}.type")
    for key, sub in (schema.get("properties") or {}).items():
        yield from structural_problems(sub, f"{path}.properties[{key}]")
    if isinstance(schema.get("items"), dict):
        yield from structural_problems(schema["items"], f"{path}.items")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from structural_problems(schema["additionalProperties"],
                                       f"{path}.additionalProperties")
