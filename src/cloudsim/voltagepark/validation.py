"""Request validation answered the way a FastAPI service does.

Every problem is collected as a pydantic v2 error item (``type``, ``loc``, ``msg``,
``input``, sometimes ``ctx``) and the request fails with 422 ``{"detail": [items]}``.
Path parameters typed ``uuid`` and query parameters are checked the same way; ``loc``
starts with ``"path"``, ``"query"`` or ``"body"``.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from aiohttp import web

from ..common.errors import json_response

Loc = tuple[str | int, ...]

_UUID_CHARS = re.compile(r"^(urn:uuid:)?[0-9a-fA-F-]*$")


class ValidationFailed(Exception):
    """422 with FastAPI's ``{"detail": [...]}`` body."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("validation failed")
        self.errors = errors

    def response(self) -> web.Response:
        return json_response({"detail": self.errors}, status=422)


class HttpError(Exception):
    """A FastAPI ``HTTPException``: ``{"detail": "message"}`` with ``status``."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}

    def response(self) -> web.Response:
        return json_response({"detail": self.detail}, status=self.status, headers=self.headers)


class Errors:
    """Collects error items; :meth:`raise_if_any` ends the request with 422."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, type_: str, loc: Loc, msg: str, value: Any,
            ctx: dict[str, Any] | None = None) -> None:
        item: dict[str, Any] = {"type": type_, "loc": list(loc), "msg": msg, "input": value}
        if ctx:
            item["ctx"] = ctx
        self.items.append(item)

    def missing(self, loc: Loc, parent: Any) -> None:
        self.add("missing", loc, "Field required", parent)

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationFailed(self.items)

    # ---- scalar checks: return the value, or None after recording an error -----------

    def string(self, loc: Loc, value: Any, *, min_length: int | None = None,
               max_length: int | None = None, pattern: str | None = None) -> str | None:
        if not isinstance(value, str):
            self.add("string_type", loc, "Input should be a valid string", value)
            return None
        if min_length is not None and len(value) < min_length:
            noun = "character" if min_length == 1 else "characters"
            self.add("string_too_short", loc,
                     f"String should have at least {min_length} {noun}", value,
                     {"min_length": min_length})
            return None
        if max_length is not None and len(value) > max_length:
            self.add("string_too_long", loc,
                     f"String should have at most {max_length} characters", value,
                     {"max_length": max_length})
            return None
        if pattern is not None and re.search(pattern, value) is None:
            self.add("string_pattern_mismatch", loc, f"String should match pattern '{pattern}'",
                     value, {"pattern": pattern})
            return None
        return value

    def uuid(self, loc: Loc, value: Any) -> str | None:
        if not isinstance(value, str):
            self.add("uuid_type", loc, "UUID input should be a string, bytes or UUID object",
                     value)
            return None
        try:
            return str(uuid.UUID(value))
        except ValueError:
            if _UUID_CHARS.match(value) is None:
                bad = next(c for c in value if not re.match(r"[0-9a-fA-F-]", c))
                reason = (f"invalid character: expected an optional prefix of `urn:uuid:` "
                          f"followed by [0-9a-fA-F-], found `{bad}` at "
                          f"{value.index(bad) + 1}")
            else:
                reason = f"invalid length: expected length 32 for simple format, found " \
                         f"{len(value.replace('-', ''))}"
            self.add("uuid_parsing", loc, f"Input should be a valid UUID, {reason}", value,
                     {"error": reason})
            return None

    def string_list(self, loc: Loc, value: Any) -> list[str] | None:
        if not isinstance(value, list):
            self.add("list_type", loc, "Input should be a valid list", value)
            return None
        ok = True
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.add("string_type", (*loc, i), "Input should be a valid string", item)
                ok = False
        return list(value) if ok else None

    def uuid_list(self, loc: Loc, value: Any) -> list[str] | None:
        if not isinstance(value, list):
            self.add("list_type", loc, "Input should be a valid list", value)
            return None
        out = [self.uuid((*loc, i), item) for i, item in enumerate(value)]
        return None if any(v is None for v in out) else [v for v in out if v is not None]

    def enum(self, loc: Loc, value: Any, choices: tuple[str, ...]) -> str | None:
        if value in choices and isinstance(value, str):
            return value
        expected = ", ".join(f"'{c}'" for c in choices[:-1]) + f" or '{choices[-1]}'"
        self.add("enum", loc, f"Input should be {expected}", value, {"expected": expected})
        return None

    def extra_forbidden(self, loc: Loc, obj: dict[str, Any], allowed: set[str]) -> None:
        for key, value in obj.items():
            if key not in allowed:
                self.add("extra_forbidden", (*loc, key), "Extra inputs are not permitted",
                         value)


def check_uuid_path(request: web.Request, name: str) -> str:
    errors = Errors()
    value = errors.uuid(("path", name), request.match_info[name])
    errors.raise_if_any()
    assert value is not None
    return value


_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


def query_bool(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ValidationFailed([{"type": "bool_parsing", "loc": ["query", name],
                             "msg": "Input should be a valid boolean, unable to interpret "
                                    "input", "input": raw}])


def query_int(request: web.Request, name: str, default: int, *, minimum: int | None = None,
              maximum: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    loc = ["query", name]
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValidationFailed([{"type": "int_parsing", "loc": loc,
                                 "msg": "Input should be a valid integer, unable to parse "
                                        "string as an integer", "input": raw}]) from None
    if minimum is not None and value < minimum:
        raise ValidationFailed([{"type": "greater_than_equal", "loc": loc,
                                 "msg": f"Input should be greater than or equal to {minimum}",
                                 "input": raw, "ctx": {"ge": minimum}}])
    if maximum is not None and value > maximum:
        raise ValidationFailed([{"type": "less_than_equal", "loc": loc,
                                 "msg": f"Input should be less than or equal to {maximum}",
                                 "input": raw, "ctx": {"le": maximum}}])
    return value


async def read_body(request: web.Request) -> dict[str, Any]:
    """The JSON object body, or 422 as FastAPI answers a missing/invalid/non-object one."""
    raw = await request.read()
    if not raw.strip():
        raise ValidationFailed([{"type": "missing", "loc": ["body"], "msg": "Field required",
                                 "input": None}])
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        pos = exc.pos if isinstance(exc, json.JSONDecodeError) else 0
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "invalid encoding"
        raise ValidationFailed([{"type": "json_invalid", "loc": ["body", pos],
                                 "msg": "JSON decode error", "input": {},
                                 "ctx": {"error": reason}}]) from None
    if not isinstance(body, dict):
        raise ValidationFailed([{"type": "model_attributes_type", "loc": ["body"],
                                 "msg": "Input should be a valid dictionary or object to "
                                        "extract fields from", "input": body}])
    return body


# ---- cloud-init (instant VM flavour: packages, write_files, runcmd) ---------------------

CLOUD_INIT_KEYS = {"packages", "write_files", "runcmd"}
WRITE_FILE_KEYS = {"encoding", "content", "owner", "path", "permissions"}
WRITE_FILE_REQUIRED = ("path", "content")


def check_cloud_init(errors: Errors, loc: Loc, value: Any) -> dict[str, Any] | None:
    """``{packages, write_files, runcmd}`` (each optional, extra keys forbidden)."""
    if not isinstance(value, dict):
        errors.add("model_attributes_type", loc, "Input should be a valid dictionary or "
                   "object to extract fields from", value)
        return None
    before = len(errors.items)
    errors.extra_forbidden(loc, value, CLOUD_INIT_KEYS)
    out: dict[str, Any] = {"packages": [], "write_files": [], "runcmd": []}
    for key in ("packages", "runcmd"):
        if key in value:
            checked = errors.string_list((*loc, key), value[key])
            if checked is not None:
                out[key] = checked
    if "write_files" in value:
        files = value["write_files"]
        if not isinstance(files, list):
            errors.add("list_type", (*loc, "write_files"), "Input should be a valid list", files)
        else:
            for i, item in enumerate(files):
                floc = (*loc, "write_files", i)
                if not isinstance(item, dict):
                    errors.add("model_attributes_type", floc, "Input should be a valid "
                               "dictionary or object to extract fields from", item)
                    continue
                errors.extra_forbidden(floc, item, WRITE_FILE_KEYS)
                for field in WRITE_FILE_REQUIRED:
                    if field not in item:
                        errors.missing((*floc, field), item)
                for field in WRITE_FILE_KEYS:
                    if field in item and item[field] is not None:
                        errors.string((*floc, field), item[field])
                out["write_files"].append({k: item.get(k) for k in sorted(WRITE_FILE_KEYS)})
    return out if len(errors.items) == before else None
