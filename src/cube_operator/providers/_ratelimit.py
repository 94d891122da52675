"""Client-side rate limiting and ``Retry-After`` parsing, shared by every provider.

:class:`RateLimiter` is a sliding-window log: at most ``limit`` sends in any window of
``period`` seconds. Callers *reserve* a send slot, which is O(1) and tells them how long
to sleep before sending; reservations are handed out in order, so concurrent callers
queue fairly without holding a lock across the sleep. Server hints tighten the view:
a 429's ``Retry-After`` blocks every caller until it passes, and
``X-RateLimit-Remaining``/``X-RateLimit-Reset`` cap how many more sends go out before
the server's window resets.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = [
    "Clock",
    "RateLimiter",
    "Reservation",
    "Sleep",
    "parse_rate_limit_reset",
    "parse_retry_after",
]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# A reset value above this is a Unix timestamp, not a number of seconds (2001-09-09).
_EPOCH_THRESHOLD = 1_000_000_000.0


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header value.

    Accepts delay-seconds (``"120"``, also tolerating fractions like ``"1.5"``) and an
    HTTP-date (``"Wed, 21 Oct 2015 07:28:00 GMT"``), whose distance from ``now`` (wall
    clock, UTC) is returned, never negative. Returns ``None`` for a missing or
    unparsable value.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isnan(seconds) or math.isinf(seconds):
            return None
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    if current.tzinfo is None:
        current = current.replace(tzinfo=UTC)
    return max(0.0, (when - current).total_seconds())


def parse_rate_limit_reset(value: str | None, *, now_epoch: float | None = None) -> float | None:
    """Seconds until the server's window resets, from an ``X-RateLimit-Reset`` value.

    Providers disagree on the unit: small numbers are seconds from now, large ones are
    a Unix timestamp. An HTTP-date is accepted too. ``None`` if unparsable.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        return parse_retry_after(text)
    if math.isnan(number) or math.isinf(number):
        return None
    if number >= _EPOCH_THRESHOLD:
        current = now_epoch if now_epoch is not None else time.time()
        return max(0.0, number - current)
    return max(0.0, number)


class Reservation:
    """One send slot handed out by :meth:`RateLimiter.reserve`.

    ``at`` is the clock time the send may start; after the send it becomes the time
    the response came back (see :meth:`RateLimiter.complete`), an upper bound of when
    the server counted the request. ``delay`` is how long the reserving caller sleeps.
    """

    __slots__ = ("at", "delay", "done")

    def __init__(self, at: float, delay: float) -> None:
        self.at = at
        self.delay = delay
        self.done = False

    def __repr__(self) -> str:
        return f"Reservation(at={self.at:.3f}, delay={self.delay:.3f}, done={self.done})"


class RateLimiter:
    """At most ``limit`` sends per sliding window of ``period`` seconds.

    One instance is shared by all calls of one client. Each send is counted from the
    moment its response arrived (the latest moment the server can have counted it), so
    network latency never lets two sends look further apart to us than to the server.
    ``clock`` and ``sleep`` are injectable for tests (``clock`` must be monotonic).
    """

    def __init__(
        self,
        limit: int,
        period: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if period <= 0:
            raise ValueError("period must be positive")
        self.limit = limit
        self.period = float(period)
        self._clock = clock
        self._sleep = sleep
        # Reservations in the order they were handed out (FIFO).
        self._slots: list[Reservation] = []
        self._blocked_until = -math.inf
        self._server_remaining: int | None = None
        self._server_reset_at = -math.inf
        # Whether, when the server last said how many were left, our own sends in the window
        # were as many as the limit (its count is then ours, not another client's).
        self._server_spent_by_us = False

    def __repr__(self) -> str:
        return f"RateLimiter(limit={self.limit}, period={self.period})"

    # -- computing and taking slots -------------------------------------------------

    def _prune(self, now: float) -> None:
        horizon = now - self.period
        if any(r.done and r.at <= horizon for r in self._slots):
            self._slots = [r for r in self._slots if not (r.done and r.at <= horizon)]

    def _window_slot(self, now: float, earlier: list[Reservation]) -> float:
        """Earliest time after ``earlier`` sends that respects block and window."""
        slot = max(now, self._blocked_until)
        # First come, first served: never jump ahead of an earlier reservation.
        for r in earlier:
            if not r.done and r.at > slot:
                slot = r.at
        if len(earlier) >= self.limit:
            # The ``limit``-th latest send must have left the window.
            latest = sorted((r.at for r in earlier), reverse=True)
            slot = max(slot, latest[self.limit - 1] + self.period)
        return slot

    def _next_slot(self, now: float) -> tuple[float, bool]:
        """Earliest send time for the next caller, and whether it uses a server credit."""
        self._prune(now)
        slot = self._window_slot(now, self._slots)
        uses_credit = False
        if self._server_remaining is not None and slot < self._server_reset_at:
            if self._server_remaining > 0:
                uses_credit = True
            elif not self._server_spent_by_us:
                # Someone else (another client at this address) spent the window: wait for
                # the server's reset. When our own sends filled it, the window slot above is
                # when the oldest of them leaves, which is all a sliding window asks (a reset
                # that counts until every call has left would waste most of it) — also once
                # that oldest has left our view, while the server's "0 left" still stands.
                slot = self._server_reset_at
        return slot, uses_credit

    def peek_delay(self) -> float:
        """Seconds the next :meth:`reserve` would have to wait, without reserving."""
        now = self._clock()
        slot, _ = self._next_slot(now)
        return slot - now

    def reserve(self) -> Reservation:
        """Take the next send slot; the caller sleeps ``delay`` seconds, then should
        :meth:`recheck`, send, and :meth:`complete` (or :meth:`release` if it gives up)."""
        now = self._clock()
        slot, uses_credit = self._next_slot(now)
        if uses_credit and self._server_remaining is not None:
            self._server_remaining -= 1
        reservation = Reservation(at=slot, delay=slot - now)
        self._slots.append(reservation)
        return reservation

    def recheck(self, reservation: Reservation) -> float:
        """Seconds ``reservation`` must still wait, because earlier sends finished later
        than planned or the server asked everyone to back off meanwhile (0 if none)."""
        now = self._clock()
        self._prune(now)
        try:
            index = self._slots.index(reservation)
        except ValueError:
            self._slots.append(reservation)
            index = len(self._slots) - 1
        slot = self._window_slot(now, self._slots[:index])
        if slot <= now:
            return 0.0
        reservation.at = slot
        return slot - now

    def complete(self, reservation: Reservation) -> None:
        """The send is over: count it from now, when its response arrived."""
        reservation.at = max(reservation.at, self._clock())
        reservation.done = True

    def release(self, reservation: Reservation) -> None:
        """Give back a slot that will not be used (its caller was cancelled)."""
        try:
            self._slots.remove(reservation)
        except ValueError:
            pass

    async def acquire(self) -> float:
        """Reserve a slot and sleep until it may be used; returns the seconds waited.

        For callers that cannot report completion: the send is counted from the
        moment this returns.
        """
        reservation = self.reserve()
        waited = 0.0
        delay = reservation.delay
        try:
            while delay > 0:
                await self._sleep(delay)
                waited += delay
                delay = self.recheck(reservation)
        except BaseException:
            self.release(reservation)
            raise
        reservation.done = True
        reservation.at = max(reservation.at, self._clock())
        return waited

    # -- server feedback ------------------------------------------------------------

    def block_for(self, seconds: float) -> None:
        """Hold every send for ``seconds`` from now (a 429's ``Retry-After``)."""
        until = self._clock() + max(0.0, seconds)
        self._blocked_until = max(self._blocked_until, until)

    def observe_server(self, remaining: int | None, reset_in: float | None) -> None:
        """Tighten the view from ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset``.

        With ``remaining`` sends left until the window resets in ``reset_in`` seconds,
        no more than ``remaining`` further slots are handed out before the reset.
        """
        if remaining is None:
            return
        now = self._clock()
        # Reservations not yet sent will still spend credits the server just counted.
        pending = sum(1 for r in self._slots if not r.done and r.at > now)
        seen = max(0, remaining - pending)
        reset_at = now + reset_in if reset_in is not None else (
            # No reset given: assume the worst case of a full window.
            self._server_reset_at if self._server_reset_at > now else now + self.period)
        if (self._server_remaining is not None and self._server_reset_at > now
                and abs(reset_at - self._server_reset_at) < 1.0):
            # Answers to concurrent calls arrive in any order: within one window the
            # lowest count is the latest truth, not the last answer read.
            seen = min(seen, self._server_remaining)
        self._server_remaining = seen
        self._server_reset_at = reset_at
        horizon = now - self.period
        ours = sum(1 for r in self._slots if r.at > horizon and (r.done or r.at <= now))
        self._server_spent_by_us = ours >= self.limit
