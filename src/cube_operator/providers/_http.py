"""The HTTP layer every provider client sits on, written once.

:class:`ProviderHTTP` wraps one :class:`httpx.AsyncClient` and adds, for every call:

* client-side rate limiting of mutating calls (a shared :class:`RateLimiter`), so the
  provider's limit is respected before the provider enforces it;
* 429 handling: ``Retry-After`` (seconds or HTTP-date) is waited out and the same
  request is sent again, up to a bounded total wait, then :class:`RateLimited`;
* bounded, jittered exponential backoff for transient failures of *safe* calls only
  (GET/HEAD/PUT/DELETE, and POST/PATCH carrying an idempotency key); a mutating call
  that may have reached the server is never sent twice unless it is safe, while a
  connection that never opened is always retried;
* mapping of status + ``{"error": "..."}`` body to :mod:`.errors`;
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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Protocol, Self, runtime_checkable
from urllib.parse import quote

import httpx

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
    "ProviderHTTP",
    "ProviderObserver",
    "RetryPolicy",
    "map_error",
    "redact",
]

logger = logging.getLogger("cube_operator.providers")

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


def _error_text(body: bytes | str | None, fallback: str) -> str:
    """The provider's ``{"error": "..."}`` text, else ``fallback``."""
    if not body:
        return fallback
    try:
        parsed = jsonlib.loads(body)
    except (ValueError, UnicodeDecodeError):
        return fallback
    if isinstance(parsed, dict):
        for key in ("error", "message", "detail"):
            value = parsed.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])
    return fallback


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
) -> ProviderError:
    """The exception for an HTTP error response; its message never holds a secret."""
    try:
        from http import HTTPStatus

        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "error"
    message = redact(_error_text(body, reason), secrets)
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 3] + "..."
    kwargs: dict[str, Any] = {
        "provider": provider,
        "status": status,
        "method": method,
        "route": route,
    }
    if status == 429:
        return RateLimited(message, retry_after=retry_after or 0.0, **kwargs)
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = Transient if status >= 500 else ProviderError
    return cls(message, **kwargs)


class ProviderHTTP:
    """Async HTTP client for one provider account (one per ProviderConfig).

    Args:
        provider: provider name used in errors, logs and metrics.
        base_url: API root, e.g. ``https://krova.cloud/api/v1``; routes are appended.
        auth_headers: headers sent on authenticated calls; their values are secrets.
        timeout: seconds for connect, read, write and pool each.
        rate_limiter: shared limiter for mutating calls; ``None`` disables it.
        retry: retry policy for transient failures of safe calls.
        max_rate_limit_wait: total seconds one call may spend waiting on rate limits
            (client-side and 429s) before :class:`RateLimited` is raised.
        observer: metrics hooks.
        transport: httpx transport (tests, ASGI).
        secrets: further strings to scrub from error messages.
        clock, sleep: injectable for tests.
    """

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        auth_headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        rate_limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        max_rate_limit_wait: float = 120.0,
        observer: ProviderObserver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        idempotency_header: str = "Idempotency-Key",
        user_agent: str = USER_AGENT,
        secrets: Iterable[str] = (),
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.rate_limiter = rate_limiter
        self.retry = retry if retry is not None else RetryPolicy()
        self.max_rate_limit_wait = max_rate_limit_wait
        self.observer = observer
        self._auth_headers = dict(auth_headers or {})
        self._secrets = tuple(s for s in (*self._auth_headers.values(), *secrets) if s)
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

    @staticmethod
    def expand(route: str, path: Mapping[str, str] | None) -> str:
        """``route`` with ``{name}`` placeholders replaced by URL-quoted values."""
        if not path:
            return route
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
        path: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
        authenticated: bool = True,
        retry_safe: bool | None = None,
    ) -> httpx.Response:
        """Send one logical call; returns the 2xx response or raises a ProviderError.

        ``route`` is the path template (``/spaces/{spaceId}/cubes``), filled from
        ``path``. ``retry_safe`` overrides whether transient failures after the request
        may have reached the server are retried (default: GET/HEAD/OPTIONS/PUT/DELETE,
        or any call carrying an ``idempotency_key``).
        """
        method = method.upper()
        url = self.expand(route, path).lstrip("/")
        headers: dict[str, str] = {}
        if authenticated:
            headers.update(self._auth_headers)
        if idempotency_key is not None:
            if not idempotency_key or len(idempotency_key) > 255:
                raise ValueError("idempotency key must be 1..255 characters")
            headers[self._idempotency_header] = idempotency_key
        if retry_safe is None:
            retry_safe = method in _SAFE_METHODS or idempotency_key is not None
        limited = self.rate_limiter is not None and method in MUTATING_METHODS

        waited = 0.0  # seconds spent on rate limits by this call
        attempt = 0  # transient retries so far
        while True:
            reservation: Reservation | None = None
            if limited:
                reservation, slept = await self._wait_for_slot(method, route, waited)
                waited += slept

            started = time.perf_counter()
            failure: httpx.TransportError | None = None
            try:
                response = await self._client.request(
                    method, url, params=params, json=json, headers=headers
                )
            except httpx.TransportError as exc:
                failure = exc
            finally:
                if reservation is not None and self.rate_limiter is not None:
                    if isinstance(failure, _NOT_SENT_ERRORS):
                        self.rate_limiter.release(reservation)
                    else:
                        self.rate_limiter.complete(reservation)
            if failure is not None:
                # Handled outside the ``except`` so the httpx exception (whose text or
                # attached request could carry secrets) is not chained as __context__.
                elapsed = time.perf_counter() - started
                self._observe_request(method, route, None, elapsed)
                kind = type(failure).__name__
                not_sent = isinstance(failure, _NOT_SENT_ERRORS)
                if (retry_safe or not_sent) and attempt < self.retry.retries:
                    attempt += 1
                    await self._backoff(method, route, attempt, kind)
                    continue
                detail = redact(str(failure) or kind, self._secrets)
                raise Transient(
                    f"{kind}: {detail}"[:_MAX_MESSAGE],
                    provider=self.provider,
                    method=method,
                    route=route,
                )
            elapsed = time.perf_counter() - started
            status = response.status_code
            self._observe_request(method, route, status, elapsed)
            if limited:
                self._observe_server_limits(response)
            if response.headers.get("Idempotency-Replayed", "").lower() == "true":
                logger.debug("%s %s %s: idempotent replay", self.provider, method, route)

            if status < 400:
                return response

            body = await response.aread()
            if status == 429:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if retry_after is None:
                    retry_after = self._fallback_retry_after()
                retry_after = max(retry_after, _MIN_RETRY_AFTER)
                if limited and self.rate_limiter is not None:
                    self.rate_limiter.block_for(retry_after)
                budget = self.max_rate_limit_wait - waited
                if retry_after > budget:
                    raise map_error(
                        self.provider,
                        status,
                        body,
                        method=method,
                        route=route,
                        secrets=self._secrets,
                        retry_after=retry_after,
                    )
                if not limited:
                    self._observe_wait(retry_after, "429 Retry-After")
                    await self._sleep(retry_after)
                    waited += retry_after
                continue  # limited: the limiter now holds the send until Retry-After

            if (status >= 500 or status == 408) and retry_safe and attempt < self.retry.retries:
                attempt += 1
                await self._backoff(method, route, attempt, f"HTTP {status}")
                continue
            raise map_error(
                self.provider, status, body, method=method, route=route, secrets=self._secrets
            )

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

    async def _wait_for_slot(
        self, method: str, route: str, waited: float
    ) -> tuple[Reservation, float]:
        """Sleep until the limiter grants a send slot; returns it and the seconds slept.

        Raises RateLimited, without sleeping, when the wait would exceed what is left of
        the call's budget (``waited`` seconds of it are already spent).
        """
        limiter = self.rate_limiter
        assert limiter is not None
        delay = limiter.peek_delay()
        self._check_budget(method, route, waited, delay)
        reservation = limiter.reserve()
        slept = 0.0
        delay = reservation.delay
        try:
            while delay > 0:
                self._observe_wait(delay, "rate limit slot")
                await self._sleep(delay)
                slept += delay
                # Earlier sends may have finished later than planned, or a 429 arrived.
                delay = limiter.recheck(reservation)
                if delay > 0:
                    self._check_budget(method, route, waited + slept, delay)
        except BaseException:
            limiter.release(reservation)
            raise
        return reservation, slept

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

    def _fallback_retry_after(self) -> float:
        """A 429 without a usable ``Retry-After``: wait for one slot to free up."""
        limiter = self.rate_limiter
        if limiter is not None:
            return limiter.period / limiter.limit
        return 1.0

    def _observe_server_limits(self, response: httpx.Response) -> None:
        limiter = self.rate_limiter
        if limiter is None:
            return
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
        await self._sleep(delay)
