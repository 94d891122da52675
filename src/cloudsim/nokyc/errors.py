"""NoKYC's error envelope.

Every error answer is ``{"error": {"code", "message", "errors": [...], "request_id"}}``
with the seed's semantic code for the HTTP status; ``errors[]`` holds one
``{"field", "issue", ...}`` entry per problem (empty when no field is to blame).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from ..common.errors import ApiError, json_response

CODES: dict[int, str] = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden_scope",
    404: "not_found",
    409: "conflict_state",
    422: "unprocessable",
    429: "rate_limited",
    451: "jurisdictional_block",
    500: "internal",
    503: "maintenance",
}


def code_for(status: int) -> str:
    """The semantic code of ``status``; statuses the seed does not list get the code of
    their class (``invalid_request`` for 4xx, ``internal`` for 5xx)."""
    if status in CODES:
        return CODES[status]
    return "internal" if status >= 500 else "invalid_request"


def problem(field: str, issue: str, **extra: Any) -> dict[str, Any]:
    """One ``errors[]`` entry."""
    return {"field": field, "issue": issue, **extra}


class NoKycError(ApiError):
    """An error answer with NoKYC's code and field problems."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: Sequence[Mapping[str, Any]] = (),
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status, message, headers)
        self.code = code or code_for(status)
        self.errors = [dict(e) for e in errors]


def invalid(message: str, *errors: Mapping[str, Any]) -> NoKycError:
    return NoKycError(400, message, errors)


def not_found(kind: str, resource_id: str) -> NoKycError:
    return NoKycError(404, f"No {kind} with id {resource_id!r}.")


def conflict(message: str, *errors: Mapping[str, Any]) -> NoKycError:
    return NoKycError(409, message, errors)


def unprocessable(message: str, *errors: Mapping[str, Any]) -> NoKycError:
    return NoKycError(422, message, errors)


def envelope(
    status: int,
    message: str,
    request_id: str,
    *,
    code: str | None = None,
    errors: Sequence[Mapping[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body = {
        "error": {
            "code": code or code_for(status),
            "message": message,
            "errors": [dict(e) for e in errors],
            "request_id": request_id,
        }
    }
    return json_response(body, status=status, headers=headers)


def error_to_response(exc: ApiError, request_id: str) -> web.Response:
    """Any ``ApiError`` (a plain one from shared code too) as the envelope."""
    if isinstance(exc, NoKycError):
        return envelope(exc.status, exc.message, request_id, code=exc.code, errors=exc.errors,
                        headers=exc.headers)
    message = exc.message if exc.message.endswith(".") else exc.message + "."
    return envelope(exc.status, message, request_id, headers=exc.headers)
