"""One exception hierarchy for every provider client.

Every error a provider client raises is a :class:`ProviderError`. Subclasses say what
the caller should do about it: :class:`Transient` and :class:`RateLimited` mean "try
again later", :class:`NotFound` on a delete means "already gone", the rest are
problems with the request, the credentials or the object's state.

Messages are safe to put into logs, Kubernetes events and status conditions: the
HTTP layer scrubs credentials out of them before the exception is built, and neither
``str()`` nor ``repr()`` shows anything but provider, status and message.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "DuplicateExternalResource",
    "Forbidden",
    "Invalid",
    "InvalidState",
    "NoCapacity",
    "NotFound",
    "ProviderError",
    "RateLimited",
    "SpecRejected",
    "Transient",
    "Unauthorized",
    "Unsupported",
]


class ProviderError(Exception):
    """Base class of every error raised by a provider client.

    Attributes:
        provider: provider name, e.g. ``"krova"``.
        status: HTTP status of the response that caused it, ``None`` when there was none
            (connection error, timeout, unsupported capability, unparsable response).
        message: human readable text that never contains a credential.
        method: HTTP method of the failed call, when there was one.
        route: path template of the failed call (``/spaces/{spaceId}/cubes``), when
            there was one.
        code: the provider's own error code (``forbidden_scope``, ``VPS_NOT_FOUND``),
            when its error envelope has one.
    """

    code: str | None = None
    provider: str
    status: int | None
    message: str
    method: str | None
    route: str | None

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        method: str | None = None,
        route: str | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.message = message
        self.method = method
        self.route = route

    def __str__(self) -> str:
        where = f" ({self.method} {self.route})" if self.method and self.route else ""
        code = f"HTTP {self.status}: " if self.status is not None else ""
        return f"{self.provider}: {code}{self.message}{where}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider!r}, status={self.status!r}, "
            f"message={self.message!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        # Keep the keyword-only constructor picklable (multiprocessing, copy).
        return (
            _rebuild,
            (type(self), self.message, self.__dict__.copy()),
        )


def _rebuild(cls: type[ProviderError], message: str, state: dict[str, object]) -> ProviderError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class Unauthorized(ProviderError):
    """401: the API key is missing, malformed or revoked."""


class Forbidden(ProviderError):
    """403: the key is valid but not for this space, or lacks the permission."""


class NotFound(ProviderError):
    """404: the object does not exist (a delete's caller treats this as gone)."""


class Conflict(ProviderError):
    """409: duplicate, or another operation on the object is already in progress."""


class Invalid(ProviderError):
    """400: the request body or parameters were rejected."""


class InvalidState(ProviderError):
    """422: the object is in the wrong state for this call, or credits are insufficient."""


class RateLimited(ProviderError):
    """429 that the client stopped waiting out: ``retry_after`` seconds until a retry
    is expected to be accepted."""

    retry_after: float

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        retry_after: float,
        status: int | None = 429,
        method: str | None = None,
        route: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status=status, method=method, route=route)
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"RateLimited(provider={self.provider!r}, status={self.status!r}, "
            f"message={self.message!r}, retry_after={self.retry_after!r})"
        )


class Transient(ProviderError):
    """5xx, 503 capacity, timeouts, connection errors, garbled responses: retry later."""


class Unsupported(ProviderError):
    """The provider lacks this capability (no TCP mappings, no snapshots, ...)."""


class SpecRejected(ProviderError):
    """The spec cannot be met by this provider (no plan fits the resources, an unknown
    image or region); the message names the field and the valid choices."""


class NoCapacity(ProviderError):
    """Nothing matching the spec can be had right now (GPUs sold out in the region): a wait,
    retried with backoff, not a rejection."""


class DuplicateExternalResource(ProviderError):
    """More than one provider object matches one create attempt; the operator never
    guesses which is ours (``ids`` lists them)."""

    def __init__(self, message: str, *, provider: str, ids: list[str]) -> None:
        super().__init__(message, provider=provider)
        self.ids = list(ids)
