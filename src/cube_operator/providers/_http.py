"""The HTTP layer every provider client sits on, written once.

:class:`ProviderHTTP` wraps one :class:`httpx.AsyncClient` and adds, for every call:

* authentication as an :class:`httpx.Auth` (:class:`HeaderAuth`, :class:`BearerAuth`,
  or a provider's own body-signing auth), whose secret values are scrubbed from errors;
* client-side rate limiting by *budgets*: each call declares its kind (read, mutate,
  provision) and waits for a slot in every budget that covers that kind, so the
  provider's limits are respected before the provider enforces them;
* 429 handling: ``Retry-After`` (seconds or HTTP-date) is waited out and the same
  request is sent again, up to a bounded total wait, then :class:`RateLimited`;
* bounded, jittered exponential backoff for transient failures of *safe* calls only
  (GET/HEAD/PUT/DELETE, and POST/PATCH carrying an idempotency key); a mutating call
  that may have reached the server is never sent twice unless it is safe, while a
  connection that never opened is always retried;
* mapping of status + the provider's error envelope (a pluggable parser) to :mod:`.errors`;
* credential hygiene: auth header values are scrubbed from every error message and
  never logged; ``repr`` shows provider and base URL only;
* debug logging (method, route template, status, duration) and observer hooks for
  metrics.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
import random
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import metadata
from typing import Any, Protocol, Self, TypeVar, runtime_checkable
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from ._ratelimit import (
    Clock,
    RateLimiter,
    Reservation,
    Sleep,
    parse_rate_limit_reset,
    parse_retry_after,
)
from .errors import (
    Conflict,
    Forbidden,
    Invalid,
    InvalidState,
    NotFound,
    ProviderError,
    RateLimited,
    Transient,
    Unauthorized,
)

__all__ = [
    "MUTATING_METHODS",
    "BearerAuth",
    "CallKind",
    "ErrorParser",
    "HeaderAuth",
    "ProviderHTTP",
    "ProviderObserver",
    "RateBudget",
    "RetryPolicy",
    "SecretAuth",
    "map_error",
    "parse_model",
    "redact",
]

logger = logging.getLogger("cube_operator.providers")
_M = TypeVar("_M", bound=BaseModel)

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Raised before a single byte of the request left: always safe to send again.
_NOT_SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
_MAX_MESSAGE = 500
_NOT_JSON = object()
_REDACTED = "[REDACTED]"
# Never spin on a ``Retry-After: 0``.
_MIN_RETRY_AFTER = 0.05

try:
    _VERSION = metadata.version("cube-operator")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    _VERSION = "0"
USER_AGENT = f"cube-operator/{_VERSION}"


class CallKind(StrEnum):
    """What a call does, declared by the provider client (not guessed from the method):
    budgets are per kind, e.g. NoKYC's separate limit for provisioning calls."""

    READ = "read"
    MUTATE = "mutate"
    PROVISION = "provision"


WRITES = frozenset({CallKind.MUTATE, CallKind.PROVISION})
ALL_CALLS = frozenset(CallKind)


#: Set by whoever runs provider calls in a bounded number of slots (the operator's
#: reconcile queue): while a call sleeps (a rate-limit slot, a Retry-After, a retry
#: backoff) it enters this context, which gives the slot to someone else meanwhile.
WHILE_WAITING: ContextVar[Callable[[], AbstractAsyncContextManager[None]] | None] = ContextVar(
    "cube_operator_while_waiting", default=None)


async def waiting(sleep: Callable[[float], Any], seconds: float) -> None:
    """``await sleep(seconds)``, inside :data:`WHILE_WAITING` when one is set."""
    hook = WHILE_WAITING.get()
    if hook is None:
        await sleep(seconds)
        return
    async with hook():
        await sleep(seconds)


async def acquire_waiting(semaphore: asyncio.Semaphore) -> None:
    """``await semaphore.acquire()``, inside :data:`WHILE_WAITING` when it has to wait."""
    hook = WHILE_WAITING.get()
    if hook is None or not semaphore.locked():
        await semaphore.acquire()
        return
    async with hook():
        await semaphore.acquire()


@dataclass(frozen=True)
class RateBudget:
    """One client-side limit: ``limiter`` holds the calls of ``kinds``."""

    limiter: RateLimiter
    kinds: frozenset[CallKind] = WRITES
    #: The budget the provider's ``X-RateLimit-*`` headers describe.
    reports_server_headers: bool = True
    #: For a budget several accounts share: this account's turn (a few unsent calls at a
    #: time), so accounts take turns instead of one queueing all its calls first.
    gate: asyncio.Semaphore | None = field(default=None, compare=False)

    def covers(self, kind: CallKind) -> bool:
        return kind in self.kinds


class SecretAuth(httpx.Auth):
    """An :class:`httpx.Auth` that knows its secret values, so errors can scrub them."""

    def secret_values(self) -> tuple[str, ...]:
        return ()


class HeaderAuth(SecretAuth):
    """An API key in a header (Krova's ``X-API-KEY``, Voltage Park's ``x-api-token``)."""

    def __init__(self, header: str, value: str) -> None:
        self._header = header
        self._value = value

    def __repr__(self) -> str:
        return f"HeaderAuth({self._header!r})"

    def secret_values(self) -> tuple[str, ...]:
        return (self._value,)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._header] = self._value
        yield request


class BearerAuth(HeaderAuth):
    """``Authorization: Bearer <token>``."""

    def __init__(self, token: str) -> None:
        super().__init__("Authorization", f"Bearer {token}")
        self._token = token

    def __repr__(self) -> str:
        return "BearerAuth()"

    def secret_values(self) -> tuple[str, ...]:
        return (self._token, self._value)


#: Reads a provider's error body: (message, provider error code), either may be None.
ErrorParser = Callable[[bytes | str | None], tuple[str | None, str | None]]


@runtime_checkable
class ProviderObserver(Protocol):
    """Hooks for metrics. Called synchronously; must be quick and must not raise
    (exceptions are logged and swallowed)."""

    def on_request(
        self, provider: str, method: str, route: str, status: int | None, seconds: float
    ) -> None:
        """One HTTP attempt finished: ``status`` is ``None`` when no response came back.
        ``route`` is the path template, e.g. ``/spaces/{spaceId}/cubes/{cubeId}/sleep``."""

    def on_rate_limit_wait(self, provider: str, seconds: float) -> None:
        """The client is about to wait ``seconds`` because of a rate limit."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with jittered exponential backoff.

    Attempt ``n`` (1-based) waits a random time in ``[c/2, c]`` where
    ``c = min(max_delay, base_delay * 2**(n-1))`` ("equal jitter").
    """

    retries: int = 3
    base_delay: float = 0.25
    max_delay: float = 8.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must not be negative")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")

    def ceiling(self, attempt: int) -> float:
        """Upper bound of the backoff before retry number ``attempt`` (1-based)."""
        # Cap the exponent: 2.0**1100 would overflow a float.
        exponent = min(max(0, attempt - 1), 62)
        return min(self.max_delay, self.base_delay * 2.0**exponent)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of every non-empty secret replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text


def json_error_envelope(body: bytes | str | None) -> tuple[str | None, str | None]:
    """The common envelopes: ``{"error": "..."}``, ``{"error": {"message", "code"}}``,
    ``{"message": ...}``, ``{"detail": ...}``; (None, None) for anything else."""
    if not body:
        return None, None
    try:
        parsed = jsonlib.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if isinstance(parsed, dict):
        for key in ("error", "message", "detail"):
            value = parsed.get(key)
            if isinstance(value, str) and value:
                code = parsed.get("code") or parsed.get("error_code")
                return value, str(code) if isinstance(code, str) else None
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                code = value.get("code")
                return str(value["message"]), str(code) if isinstance(code, str) else None
    return None, None




_STATUS_ERRORS: dict[int, type[ProviderError]] = {
    400: Invalid,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    408: Transient,
    409: Conflict,
    422: InvalidState,
}


def map_error(
    provider: str,
    status: int,
    body: bytes | str | None,
    *,
    method: str | None = None,
    route: str | None = None,
    secrets: Iterable[str] = (),
    retry_after: float | None = None,
    parser: ErrorParser = json_error_envelope,
    status_errors: Mapping[int, type[ProviderError]] | None = None,
    code_errors: Mapping[str, type[ProviderError]] | None = None,
) -> ProviderError:
    """The exception for an HTTP error response; its message never holds a secret."""
    try:
        from http import HTTPStatus

        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "error"
    try:
        text, code = parser(body)
    except Exception:  # noqa: BLE001 - a parser bug must not hide the HTTP error itself
        text, code = None, None
    if status == 404 and not text:
        # Not the provider's own "not found" (an HTML page from a proxy, a wrong endpoint):
        # treating it as "gone" would drop a VM that still bills.
        return Transient(f"HTTP 404 without {provider}'s error body (a proxy or a wrong endpoint?)",
                         provider=provider, status=status, method=method, route=route)
    message = redact(text or reason, secrets)
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 3] + "..."
    kwargs: dict[str, Any] = {
        "provider": provider,
        "status": status,
        "method": method,
        "route": route,
    }
    if status == 429:
        error: ProviderError = RateLimited(message, retry_after=retry_after or 0.0, **kwargs)
    else:
        # A provider's own code says more than the status (CyberPanel's 400 VPS_DELETED is "gone").
        cls = ((code_errors or {}).get(code or "") or (status_errors or {}).get(status)
               or _STATUS_ERRORS.get(status))
        if cls is None:
            cls = Transient if status >= 500 else ProviderError
        error = cls(message, **kwargs)
    error.code = redact(code, secrets) if code else None
    return error


class ProviderHTTP:
    """Async HTTP client for one provider account (one per ProviderConfig).

    Args:
        provider: provider name used in errors, logs and metrics.
        base_url: API root, e.g. ``https://krova.cloud/api/v1``; routes are appended.
        auth: how authenticated calls are signed; its secret values are scrubbed.
        auth_headers: shorthand for a :class:`HeaderAuth` per header (tests, simple keys).
        timeout: seconds for connect, read, write and pool each.
        budgets: client-side limits; a call waits for a slot in each budget covering
            its kind. Budgets may be shared by several clients (one provider account).
        rate_limiter: shorthand for one budget over mutating and provisioning calls.
        retry: retry policy for transient failures of safe calls.
        max_rate_limit_wait: total seconds one call may spend waiting on rate limits
            (client-side and 429s) before :class:`RateLimited` is raised.
        observer: metrics hooks.
        transport: httpx transport (tests, ASGI).
        error_parser: reads the provider's error envelope (message, code).
        secrets: further strings to scrub from error messages.
        clock, sleep: injectable for tests.
    """

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        auth: SecretAuth | None = None,
        auth_headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        budgets: Sequence[RateBudget] = (),
        rate_limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        max_rate_limit_wait: float = 120.0,
        observer: ProviderObserver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        idempotency_header: str = "Idempotency-Key",
        user_agent: str = USER_AGENT,
        error_parser: ErrorParser = json_error_envelope,
        status_errors: Mapping[int, type[ProviderError]] | None = None,
        code_errors: Mapping[str, type[ProviderError]] | None = None,
        secrets: Iterable[str] = (),
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.budgets: tuple[RateBudget, ...] = tuple(budgets)
        if rate_limiter is not None:
            self.budgets += (RateBudget(rate_limiter, WRITES),)
        self.retry = retry if retry is not None else RetryPolicy()
        self.max_rate_limit_wait = max_rate_limit_wait
        self.observer = observer
        auths: list[SecretAuth] = [auth] if auth is not None else []
        auths += [HeaderAuth(k, v) for k, v in (auth_headers or {}).items()]
        self._auth: SecretAuth | None = auths[0] if len(auths) == 1 else (
            _AllOf(auths) if auths else None)
        self._secrets = tuple(
            s for s in (*(v for a in auths for v in a.secret_values()), *secrets) if s)
        self._error_parser = error_parser
        # What a status means differs by provider (FastAPI's 422 is a validation error).
        self._status_errors = dict(status_errors or {})
        self._code_errors = dict(code_errors or {})
        self._idempotency_header = idempotency_header
        self._clock = clock
        self._sleep = sleep
        self._client = httpx.AsyncClient(
            base_url=self.base_url + "/",
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"User-Agent": user_agent, "Accept": "application/json"},
            follow_redirects=False,
        )

    @property
    def rate_limiter(self) -> RateLimiter | None:
        """The first budget's limiter (the one most providers have)."""
        return self.budgets[0].limiter if self.budgets else None

    def __repr__(self) -> str:
        return f"ProviderHTTP(provider={self.provider!r}, base_url={self.base_url!r})"

    @property
    def closed(self) -> bool:
        return self._client.is_closed

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- hooks ----------------------------------------------------------------------

    def _observe_request(self, method: str, route: str, status: int | None, seconds: float) -> None:
        logger.debug("%s %s %s -> %s in %.3fs", self.provider, method, route, status, seconds)
        hook = getattr(self.observer, "on_request", None)
        if hook is None:
            return
        try:
            hook(self.provider, method, route, status, seconds)
        except Exception:
            logger.warning("%s: observer.on_request failed", self.provider, exc_info=True)

    def _observe_wait(self, seconds: float, why: str) -> None:
        logger.debug("%s: waiting %.3fs for %s", self.provider, seconds, why)
        hook = getattr(self.observer, "on_rate_limit_wait", None)
        if hook is None:
            return
        try:
            hook(self.provider, seconds)
        except Exception:
            logger.warning("%s: observer.on_rate_limit_wait failed", self.provider, exc_info=True)

    # -- requests -------------------------------------------------------------------

    def expand(self, route: str, path: Mapping[str, str] | None) -> str:
        """``route`` with ``{name}`` placeholders replaced by URL-quoted values. Empty and
        dot segments are refused: ``.`` would turn ``/cubes/{id}`` into the collection."""
        if not path:
            return route
        for key, value in path.items():
            if str(value) in ("", ".", ".."):
                raise Invalid(f"{key} {str(value)!r} is not an id", provider=self.provider, route=route)
        return route.format_map({k: quote(str(v), safe="") for k, v in path.items()})

    def _rate_limited(
        self, method: str, route: str, retry_after: float, status: int | None, text: str
    ) -> RateLimited:
        return RateLimited(
            redact(text, self._secrets),
            provider=self.provider,
            retry_after=retry_after,
            status=status,
            method=method,
            route=route,
        )

    async def request(
        self,
        method: str,
        route: str,
        *,
        kind: CallKind,
        path: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        authenticated: bool = True,
        retry_safe: bool | None = None,
    ) -> httpx.Response:
        """Send one logical call; returns the 2xx response or raises a ProviderError.

        ``route`` is the path template (``/spaces/{spaceId}/cubes``), filled from
        ``path``. ``kind`` picks the rate-limit budgets the call waits for. ``retry_safe``
        overrides whether transient failures after the request may have reached the
        server are retried (default: GET/HEAD/OPTIONS/PUT/DELETE, or any call carrying
        an ``idempotency_key``). ``data`` is a form body (signed-form providers).
        """
        method = method.upper()
        url = self.expand(route, path).lstrip("/")
        headers: dict[str, str] = {}
        auth = self._auth if authenticated else None
        if idempotency_key is not None:
            if not idempotency_key or len(idempotency_key) > 255:
                raise ValueError("idempotency key must be 1..255 characters")
            headers[self._idempotency_header] = idempotency_key
        if retry_safe is None:
            retry_safe = method in _SAFE_METHODS or idempotency_key is not None
        budgets = [b for b in self.budgets if b.covers(kind)]
        limited = bool(budgets)

        waited = 0.0  # seconds spent on rate limits by this call
        attempt = 0  # transient retries so far
        gates = [b.gate for b in budgets if b.gate is not None]
        while True:
            # A budget shared by several accounts admits few unsent calls per account at a
            # time, so one account's burst cannot queue ahead of everyone else's.
            turns: list[asyncio.Semaphore] = []
            failure: httpx.TransportError | None = None
            try:
                for gate in gates:
                    await acquire_waiting(gate)
                    turns.append(gate)
                reservations: list[Reservation] = []
                if limited:
                    reservations, slept = await self._wait_for_slots(budgets, method, route, waited)
                    waited += slept
                # The turn is for an unsent call: given back as it is sent, not when its
                # answer comes, or one account's calls would go out two per round trip and
                # leave most of a window it alone uses empty.
                for gate in turns:
                    gate.release()
                turns.clear()

                started = time.perf_counter()
                try:
                    response = await self._client.request(
                        method, url, params=params, json=json, data=data, headers=headers,
                        auth=auth,
                    )
                except httpx.TransportError as exc:
                    failure = exc
                finally:
                    for budget, reservation in zip(budgets, reservations, strict=False):
                        if isinstance(failure, _NOT_SENT_ERRORS):
                            budget.limiter.release(reservation)
                        else:
                            budget.limiter.complete(reservation)
            finally:
                for gate in turns:
                    gate.release()
            if failure is not None:
                # Handled outside the ``except`` so the httpx exception (whose text or
                # attached request could carry secrets) is not chained as __context__.
                elapsed = time.perf_counter() - started
                self._observe_request(method, route, None, elapsed)
                error_name = type(failure).__name__
                not_sent = isinstance(failure, _NOT_SENT_ERRORS)
                if (retry_safe or not_sent) and attempt < self.retry.retries:
                    attempt += 1
                    await self._backoff(method, route, attempt, error_name)
                    continue
                detail = redact(str(failure) or error_name, self._secrets)
                raise Transient(
                    f"{error_name}: {detail}"[:_MAX_MESSAGE],
                    provider=self.provider,
                    method=method,
                    route=route,
                )
            elapsed = time.perf_counter() - started
            status = response.status_code
            self._observe_request(method, route, status, elapsed)
            if limited:
                self._observe_server_limits(response, budgets)
            if response.headers.get("Idempotency-Replayed", "").lower() == "true":
                logger.debug("%s %s %s: idempotent replay", self.provider, method, route)

            if status < 400:
                return response

            body = await response.aread()
            if status == 429:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if retry_after is None:
                    retry_after = self._fallback_retry_after(budgets or self.budgets)
                retry_after = max(retry_after, _MIN_RETRY_AFTER)
                for held in budgets:
                    held.limiter.block_for(retry_after)
                remaining = self.max_rate_limit_wait - waited
                if retry_after > remaining:
                    raise map_error(
                        self.provider,
                        status,
                        body,
                        method=method,
                        route=route,
                        secrets=self._secrets,
                        retry_after=retry_after,
                        parser=self._error_parser,
                        status_errors=self._status_errors,
                        code_errors=self._code_errors,
                    )
                if not limited:
                    self._observe_wait(retry_after, "429 Retry-After")
                    await waiting(self._sleep, retry_after)
                    waited += retry_after
                continue  # limited: the limiter now holds the send until Retry-After

            if ((status >= 500 or status == 408) and retry_safe and attempt < self.retry.retries
                    and not self._known_code(body)):
                attempt += 1
                await self._backoff(method, route, attempt, f"HTTP {status}")
                continue
            raise map_error(
                self.provider, status, body, method=method, route=route, secrets=self._secrets,
                parser=self._error_parser, status_errors=self._status_errors, code_errors=self._code_errors,
            )

    def _known_code(self, body: bytes) -> bool:
        """A 5xx whose code the provider documents as final (not worth a retry)."""
        if not self._code_errors:
            return False
        try:
            code = self._error_parser(body)[1]
        except Exception:  # noqa: BLE001 - an unparsable body is simply not a known code
            return False
        return bool(code) and code in self._code_errors

    async def request_json(
        self,
        method: str,
        route: str,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """:meth:`request`, returning the JSON object body (``{}`` for an empty body)."""
        response = await self.request(method, route, **kwargs)
        if not response.content:
            return {}
        try:
            parsed = response.json()
        except ValueError:
            parsed = _NOT_JSON
        if parsed is _NOT_JSON:
            raise Transient(
                "response is not JSON",
                provider=self.provider,
                status=response.status_code,
                method=method.upper(),
                route=route,
            )
        if not isinstance(parsed, dict):
            raise Transient(
                f"expected a JSON object, got {type(parsed).__name__}",
                provider=self.provider,
                status=response.status_code,
                method=method.upper(),
                route=route,
            )
        return parsed

    # -- waiting --------------------------------------------------------------------

    async def _wait_for_slots(
        self, budgets: Sequence[RateBudget], method: str, route: str, waited: float
    ) -> tuple[list[Reservation], float]:
        """Sleep until every budget grants a send slot; returns them and the seconds slept.

        Raises RateLimited, without sleeping, when the wait would exceed what is left of
        the call's budget (``waited`` seconds of it are already spent).
        """
        limiters = [b.limiter for b in budgets]
        delay = max(limiter.peek_delay() for limiter in limiters)
        self._check_budget(method, route, waited, delay)
        reservations = [limiter.reserve() for limiter in limiters]
        slept = 0.0
        delay = max(r.delay for r in reservations)
        try:
            while delay > 0:
                self._observe_wait(delay, "rate limit slot")
                await waiting(self._sleep, delay)
                slept += delay
                # Earlier sends may have finished later than planned, or a 429 arrived.
                delay = max(
                    limiter.recheck(r) for limiter, r in zip(limiters, reservations, strict=True))
                if delay > 0:
                    self._check_budget(method, route, waited + slept, delay)
        except BaseException:
            for limiter, reservation in zip(limiters, reservations, strict=True):
                limiter.release(reservation)
            raise
        return reservations, slept

    def _check_budget(self, method: str, route: str, waited: float, delay: float) -> None:
        budget = self.max_rate_limit_wait - waited
        if delay > budget:
            raise self._rate_limited(
                method,
                route,
                delay,
                None,
                f"client-side rate limit: next slot in {delay:.1f}s exceeds the "
                f"remaining wait budget of {max(budget, 0.0):.1f}s",
            )

    @staticmethod
    def _fallback_retry_after(budgets: Sequence[RateBudget]) -> float:
        """A 429 without a usable ``Retry-After``: wait for one slot to free up."""
        if budgets:
            return max(b.limiter.period / b.limiter.limit for b in budgets)
        return 1.0

    @staticmethod
    def _observe_server_limits(response: httpx.Response, budgets: Sequence[RateBudget]) -> None:
        reporting = [b for b in budgets if b.reports_server_headers]
        if not reporting:
            return
        limiter = reporting[0].limiter
        headers = response.headers
        raw_remaining = headers.get("X-RateLimit-Remaining", headers.get("RateLimit-Remaining"))
        if raw_remaining is None:
            return
        try:
            remaining = int(float(raw_remaining.strip()))
        except ValueError:
            return
        reset_in = parse_rate_limit_reset(
            headers.get("X-RateLimit-Reset", headers.get("RateLimit-Reset"))
        )
        limiter.observe_server(remaining, reset_in)

    async def _backoff(self, method: str, route: str, attempt: int, why: str) -> None:
        delay = self.retry.backoff(attempt)
        logger.debug(
            "%s %s %s: %s, retry %d/%d in %.3fs",
            self.provider,
            method,
            route,
            why,
            attempt,
            self.retry.retries,
            delay,
        )
        await waiting(self._sleep, delay)


def parse_model(model: type[_M], data: Any, *, provider: str, method: str, route: str) -> _M:
    """Validate a provider's answer; a mismatch is a Transient error whose message names
    the offending fields but never echoes values (they can be secrets)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<body>'}: {err['type']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
    # Raised outside ``except``: the ValidationError quotes the input values.
    raise Transient(f"unexpected {model.__name__} in response: {problems}"[:_MAX_MESSAGE],
                    provider=provider, method=method, route=route)


class _AllOf(SecretAuth):
    """Several auths applied in turn (e.g. two header keys)."""

    def __init__(self, auths: Sequence[SecretAuth]) -> None:
        self._auths = tuple(auths)

    def secret_values(self) -> tuple[str, ...]:
        return tuple(v for a in self._auths for v in a.secret_values())

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        for auth in self._auths:
            flow = auth.auth_flow(request)
            request = next(flow)
            flow.close()
        yield request
