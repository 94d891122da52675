"""CyberPanel's per-key rate limits: two sliding windows, per minute and per hour.

Each window is :class:`cloudsim.common.ratelimit.SlidingWindowLimiter`'s sliding log,
kept per API key, with the limit taken from the key at each request (keys carry their
own ``rate_limit_per_minute`` / ``rate_limit_per_hour``).  A request is admitted only
when *both* windows have room, and then it is logged in both; a rejected request is
logged in neither, so it consumes no budget.  Windows are simulated seconds (60 and
3600); a limit of 0 turns that window off.

Headers (real seconds, i.e. divided by the time scale): ``X-RateLimit-Limit``,
``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (a unix timestamp, as in the seed's
example, at which every logged request has left the window) describe the minute
window, unless the hour window has fewer requests remaining (then the hour's).  A 429
describes the window that rejected (the hour's when both do) and carries
``Retry-After``: whole seconds, at least 1, until the request would be admitted.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from ..common.clock import SimClock
from ..common.ratelimit import RateDecision, SlidingWindowLimiter

MINUTE, HOUR = "minute", "hour"


class _Window(SlidingWindowLimiter):
    """A sliding log whose limit is given per call (each key has its own)."""

    def peek(self, client: str, limit: int, now: float) -> RateDecision:
        """Would one more request be admitted?  Logs nothing."""
        log = self._pruned(client, now)
        if limit <= 0:
            return RateDecision(True, 0, 0, 0.0, 0.0)
        if len(log) >= limit:
            retry = log[len(log) - limit] + self.window - now
            return RateDecision(False, limit, 0, log[-1] + self.window - now, retry)
        return RateDecision(True, limit, limit - len(log) - 1, self.window, 0.0)

    def admit(self, client: str, now: float) -> None:
        self._pruned(client, now).append(now)

    def forget(self, client: str) -> None:
        self._log.pop(client, None)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    window: str | None  # the window the headers describe (None: limiting off)
    limit: int
    remaining: int
    reset_after: float  # simulated seconds until that window is empty
    retry_after: float  # simulated seconds until admission (0 if allowed)


class KeyRateLimiter:
    def __init__(self, clock: SimClock, minute_window: float = 60.0,
                 hour_window: float = 3600.0) -> None:
        self.clock = clock
        self.minute = _Window(clock, 0, minute_window)
        self.hour = _Window(clock, 0, hour_window)

    def reset(self) -> None:
        self.minute.reset()
        self.hour.reset()

    def forget(self, client: str) -> None:
        self.minute.forget(client)
        self.hour.forget(client)

    def hit(self, client: str, per_minute: int, per_hour: int) -> Verdict:
        now = self.clock.now()
        m = self.minute.peek(client, per_minute, now)
        h = self.hour.peek(client, per_hour, now)
        if m.allowed and h.allowed:
            self.minute.admit(client, now)
            self.hour.admit(client, now)
            if m.limit <= 0 and h.limit <= 0:
                return Verdict(True, None, 0, 0, 0.0, 0.0)
            use_hour = m.limit <= 0 or (h.limit > 0 and h.remaining < m.remaining)
            d, window = (h, HOUR) if use_hour else (m, MINUTE)
            return Verdict(True, window, d.limit, d.remaining, d.reset_after, 0.0)
        if not h.allowed and (m.allowed or h.retry_after >= m.retry_after):
            d, window = h, HOUR
        else:
            d, window = m, MINUTE
        return Verdict(False, window, d.limit, 0, d.reset_after, d.retry_after)

    def headers(self, verdict: Verdict) -> dict[str, str]:
        if verdict.window is None:
            return {}
        reset = time.time() + self.clock.to_real(verdict.reset_after)
        headers = {
            "X-RateLimit-Limit": str(verdict.limit),
            "X-RateLimit-Remaining": str(verdict.remaining),
            "X-RateLimit-Reset": str(math.ceil(reset)),
        }
        if not verdict.allowed:
            headers["Retry-After"] = str(self.retry_seconds(verdict))
        return headers

    def retry_seconds(self, verdict: Verdict) -> int:
        return max(1, math.ceil(self.clock.to_real(verdict.retry_after)))
