"""CyberPanel's error envelope: ``{"success": false, "error", "error_code", "message"}``.

``error`` is the short description of the seed's error-code tables, ``message`` the
human-readable explanation.  Every error answer of the API (including unknown routes,
405, 413, malformed JSON and injected faults) has this shape.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from ..common.errors import ApiError, json_response

# Codes for answers whose cause has no code of its own in the seed (unknown route,
# injected faults, a plain ApiError from shared code).
STATUS_CODES: dict[int, tuple[str, str]] = {
    400: ("BAD_REQUEST", "Bad request"),
    401: ("UNAUTHORIZED", "Unauthorized"),
    403: ("FORBIDDEN", "Forbidden"),
    404: ("NOT_FOUND", "Not found"),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed"),
    409: ("CONFLICT", "Conflict"),
    413: ("PAYLOAD_TOO_LARGE", "Request body too large"),
    429: ("RATE_LIMIT_EXCEEDED", "Rate limit exceeded"),
    500: ("INTERNAL_ERROR", "Internal server error"),
    502: ("BAD_GATEWAY", "Bad gateway"),
    503: ("SERVICE_UNAVAILABLE", "Service unavailable"),
    504: ("GATEWAY_TIMEOUT", "Gateway timeout"),
}


def status_code(status: int) -> tuple[str, str]:
    """(error_code, error) for an HTTP status (the class's code when not listed)."""
    if status in STATUS_CODES:
        return STATUS_CODES[status]
    return STATUS_CODES[500] if status >= 500 else STATUS_CODES[400]


class CyberPanelError(ApiError):
    """An error answer with CyberPanel's code, short ``error`` and ``message``."""

    def __init__(self, status: int, code: str, error: str, message: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, message or error, headers)
        self.code = code
        self.error = error


def envelope(status: int, code: str, error: str, message: str,
             headers: Mapping[str, str] | None = None) -> web.Response:
    body = {"success": False, "error": error, "error_code": code, "message": message}
    return json_response(body, status=status, headers=headers)


def error_to_response(exc: ApiError) -> web.Response:
    if isinstance(exc, CyberPanelError):
        return envelope(exc.status, exc.code, exc.error, exc.message, exc.headers)
    code, error = status_code(exc.status)
    return envelope(exc.status, code, error, exc.message, exc.headers)


def success(data: object, message: str | None = None, status: int = 200,
            headers: Mapping[str, str] | None = None) -> web.Response:
    """``{"success": true, "data": ..., "message"?: ...}`` (no ``message`` when None, as
    the seed's read endpoints answer)."""
    body: dict[str, object] = {"success": True, "data": data}
    if message is not None:
        body["message"] = message
    return json_response(body, status=status, headers=headers)


# ---- the seed's codes -------------------------------------------------------------------


def no_api_key() -> CyberPanelError:
    return CyberPanelError(401, "NO_API_KEY", "No API key provided",
                           "Provide your API key in the Authorization header: "
                           "'Authorization: Bearer cyp_live_...'")


def invalid_api_key(message: str = "The API key is invalid or malformed") -> CyberPanelError:
    return CyberPanelError(401, "INVALID_API_KEY", "Invalid API key", message)


def vps_not_found(vps_id: object) -> CyberPanelError:
    return CyberPanelError(404, "VPS_NOT_FOUND", "VPS not found",
                           f"VPS {vps_id} doesn't exist or isn't owned by you")


def bad_request(code: str, error: str, message: str | None = None) -> CyberPanelError:
    return CyberPanelError(400, code, error, message)
