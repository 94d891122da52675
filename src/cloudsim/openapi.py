"""Validate simulator responses against a provider's own OpenAPI document.

The Krova spec says ``openapi: 3.1.0`` but writes nullability the 3.0 way
(``nullable: true``), which JSON Schema ignores.  :func:`to_json_schema` resolves the
local ``$ref`` s and turns ``nullable`` into a type union (and ``null`` into the enum)
so a stock ``jsonschema`` validator checks what the spec means.

Lookup rules of :meth:`SpecValidator.validate`:

* a path/method/status the spec documents with a JSON schema: validated against it;
* documented without a body schema: anything goes;
* any other status >= 400: validated against ``#/components/schemas/Error`` (the
  provider promises the error envelope everywhere);
* a path or method the spec does not know (seed-only endpoints such as Krova's
  ``/sleep``), other 2xx: not checked.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker

SPEC_FILES = {"krova": "krova-openapi.json"}

_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if "T" not in value:
        raise ValueError(f"not an ISO 8601 date-time: {value!r}")
    datetime.fromisoformat(value)
    return True


@_FORMATS.checks("uri", raises=ValueError)
def _is_uri(value: object) -> bool:
    if isinstance(value, str) and not urlsplit(value).scheme:
        raise ValueError(f"not an absolute URI: {value!r}")
    return True


@cache
def _spec_text(provider: str) -> str:
    name = SPEC_FILES[provider]
    return resources.files("cloudsim").joinpath("data", name).read_text(encoding="utf-8")


def load_spec(provider: str = "krova") -> dict[str, Any]:
    """A fresh copy of the provider's OpenAPI document (shipped as package data)."""
    return json.loads(_spec_text(provider))


def _resolve_ref(spec: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported: {ref}")
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def to_json_schema(node: Any, spec: dict[str, Any], _depth: int = 0) -> Any:
    """``node`` with ``$ref`` s inlined and ``nullable`` turned into JSON Schema."""
    if _depth > 64:
        raise ValueError("$ref nesting too deep (cyclic schema?)")
    if isinstance(node, list):
        return [to_json_schema(item, spec, _depth + 1) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return to_json_schema(copy.deepcopy(_resolve_ref(spec, node["$ref"])), spec, _depth + 1)
    out = {k: to_json_schema(v, spec, _depth + 1) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"] if "null" not in types else types
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


class SpecValidator:
    def __init__(self, spec: dict[str, Any], *, prefix: str = "/api/v1") -> None:
        self.spec = spec
        self.prefix = prefix
        self._error = to_json_schema(spec["components"]["schemas"]["Error"], spec)
        self._cache: dict[tuple[str, str, int], Draft202012Validator | None] = {}

    @classmethod
    def for_provider(cls, provider: str = "krova") -> SpecValidator:
        return cls(load_spec(provider))

    def knows(self, method: str, path_template: str) -> bool:
        path = self._spec_path(path_template)
        return method.lower() in self.spec["paths"].get(path, {})

    def _spec_path(self, template: str) -> str:
        return template.removeprefix(self.prefix) or "/"

    def validator(self, method: str, path_template: str, status: int) -> Draft202012Validator | None:
        key = (method.upper(), path_template, status)
        if key not in self._cache:
            self._cache[key] = self._build(method, path_template, status)
        return self._cache[key]

    def _build(self, method: str, path_template: str, status: int) -> Draft202012Validator | None:
        operation = self.spec["paths"].get(self._spec_path(path_template), {}).get(method.lower())
        response = (operation or {}).get("responses", {}).get(str(status))
        schema: Any = None
        if response is not None:
            if "$ref" in response:
                response = _resolve_ref(self.spec, response["$ref"])
            media = response.get("content", {}).get("application/json")
            if media is None or "schema" not in media:
                return None  # documented without a body schema
            schema = to_json_schema(media["schema"], self.spec)
        elif status >= 400:
            schema = self._error
        else:
            return None
        return Draft202012Validator(schema, format_checker=_FORMATS)

    def validate(self, method: str, path_template: str, status: int, body: Any) -> None:
        """Raise ``jsonschema.ValidationError`` if ``body`` breaks the spec."""
        validator = self.validator(method, path_template, status)
        if validator is not None:
            validator.validate(body)

    def errors(self, method: str, path_template: str, status: int, body: Any) -> list[str]:
        validator = self.validator(method, path_template, status)
        if validator is None:
            return []
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(body)
        ]

