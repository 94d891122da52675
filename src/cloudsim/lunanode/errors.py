"""LunaNode's error answer: HTTP 200 with ``{"success": "no", "error": "..."}``.

LunaNode reports every API-level failure (missing parameter, bad signature, unknown
id, an action the VM's state does not allow) in the body, never in the HTTP status;
clients treat anything but ``success == "yes"`` as failure and show ``error``.
Other statuses only come from the transport (405 for a GET, 413, injected faults).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class LunaNodeError(Exception):
    """An API-level failure: answered as ``{"success": "no", "error": message}``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def required(name: str) -> LunaNodeError:
    """LunaNode's own wording for a missing parameter (the seed's example)."""
    return LunaNodeError(f"required parameter {name} not set")


def answer(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status,
                        content_type="application/json")


def success(fields: dict[str, Any] | None = None) -> web.Response:
    return answer({"success": "yes", **(fields or {})})


def failure(message: str, status: int = 200, headers: dict[str, str] | None = None
            ) -> web.Response:
    response = answer({"success": "no", "error": message}, status)
    if headers:
        response.headers.update(headers)
    return response
