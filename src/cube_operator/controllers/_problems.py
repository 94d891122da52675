"""The exception a reconciler raises to wait on something the user or another object
must change first."""
from __future__ import annotations

from pydantic import ValidationError

# Problems that need the user; nothing is retried quickly until something changes.
SLOW_RETRY_REASONS = frozenset({
    "InvalidSpec", "Unsupported", "CrossNamespaceReference", "DuplicateExternalResource",
    "InvalidCredentials", "SecretConflict", "SecretNotAllowed", "AdoptionRefused",
    "EndpointNotAllowed",
    # Watched by name: creating or fixing the Secret wakes the object at once.
    "SecretNotFound", "SecretKeyMissing",
})


class ConfigProblem(Exception):
    """The object cannot be reconciled until the user fixes something; says what."""

    def __init__(self, reason: str, message: str, *, retry: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry = retry if retry is not None else (60.0 if reason in SLOW_RETRY_REASONS else 5.0)


def spec_error(error: ValidationError) -> str:
    """The first validation error as `spec.<path>: <what is wrong>`."""
    first = error.errors()[0]
    if not first["loc"]:  # a rule across fields: its message names them
        return str(first["msg"]).removeprefix("Value error, ")
    return "spec." + ".".join(map(str, first["loc"])) + ": " + first["msg"]
