"""The error envelope and JSON request/response helpers.

Every provider simulated here answers errors as ``{"error": "Human-readable"}`` (Krova
documents exactly that shape); handlers raise :class:`ApiError` and the server's
middleware turns it, and aiohttp's own 404/405/413, into that envelope.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web


class ConfigError(ValueError):
    """A bad knob value (``PUT /_sim/config``, constructor settings)."""


class ApiError(Exception):
    """An error answer: HTTP status, message for the envelope, optional extra headers."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    # Compact separators keep the bytes stable, which matters for idempotent replays.
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return json_response({"error": message}, status=status, headers=headers)


async def read_json(request: web.Request, *, required: bool = True) -> Any:
    """The parsed JSON body; ``None`` for an empty body when not ``required``."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise ApiError(400, "Request body must be a JSON object")
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "Invalid JSON body") from None


async def read_json_object(request: web.Request, *, required: bool = True) -> dict[str, Any]:
    """The JSON body, which must be an object; ``{}`` for an empty optional body."""
    body = await read_json(request, required=required)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return body
