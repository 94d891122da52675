"""Kubernetes ``Status`` errors, shaped exactly as kube-apiserver returns them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Cause:
    """One ``details.causes`` entry (a field.Error in apimachinery terms)."""

    reason: str
    message: str
    field: str = ""

    def as_dict(self) -> dict[str, str]:
        out = {"reason": self.reason, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


@dataclass
class APIError(Exception):
    """An error that renders as a ``kind: Status`` body with the given HTTP code."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] | None = None
    causes: list[Cause] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        details = dict(self.details or {})
        if self.causes:
            details["causes"] = [c.as_dict() for c in self.causes]
        if details:
            body["details"] = details
        return body


def qualified(resource: str, group: str) -> str:
    """``widgets.example.test`` / ``configmaps`` — the GroupResource string."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> APIError:
    return APIError(
        404, "NotFound", f'{qualified(resource, group)} "{name}" not found',
        {"name": name, "group": group, "kind": resource} if group else
        {"name": name, "kind": resource},
    )


def route_not_found() -> APIError:
    return APIError(404, "NotFound", "the server could not find the requested resource",
                    {})


def already_exists(resource: str, group: str, name: str) -> APIError:
    return APIError(
        409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists',
        _details(resource, group, name),
    )


def conflict(resource: str, group: str, name: str,
             why: str = "the object has been modified; please apply your changes "
                        "to the latest version and try again") -> APIError:
    return APIError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
        _details(resource, group, name),
    )


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> APIError:
    """422 Invalid with the aggregated ``field: body`` message kube-apiserver prints."""
    lines = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    summary = lines[0] if len(lines) == 1 else "[" + ", ".join(lines) + "]"
    return APIError(
        422, "Invalid", f'{qualified(kind, group)} "{name}" is invalid: {summary}',
        _details(kind, group, name), causes,
    )


def unprocessable(message: str) -> APIError:
    return APIError(422, "Invalid", message)


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def forbidden(resource: str, group: str, name: str, why: str) -> APIError:
    return APIError(403, "Forbidden", f'{qualified(resource, group)} "{name}" is forbidden: {why}',
                    _details(resource, group, name))


def method_not_allowed(message: str) -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str, accepted: list[str]) -> APIError:
    return APIError(
        415, "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(accepted)}",
    )


def not_acceptable(accepted: list[str]) -> APIError:
    return APIError(406, "NotAcceptable",
                    f"only the following media types are accepted: {', '.join(accepted)}")


def expired(message: str) -> APIError:
    return APIError(410, "Expired", message)


def _details(resource: str, group: str, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if group:
        out["group"] = group
    out["kind"] = resource
    return out
