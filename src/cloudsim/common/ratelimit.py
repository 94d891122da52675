"""Per-client sliding-window rate limiting of mutating requests.

Algorithm: a sliding log.  A request is admitted when fewer than ``limit`` admitted
requests from the same client lie within the last ``window`` simulated seconds.
Rejected requests are *not* logged, so a client that keeps retrying is not punished
beyond the window and ``Retry-After`` is always honest.

Headers (all in real seconds, i.e. already divided by the time scale):

* ``X-RateLimit-Limit``: the limit.
* ``X-RateLimit-Remaining``: admissions left right now.
* ``X-RateLimit-Reset``: seconds (delta, not a Unix time) until every logged request
  has left the window, i.e. until the full limit is available again.  A client that
  treats the window as fixed and refills at this point is therefore never wrong.
* ``Retry-After`` (429 only): seconds until the oldest logged request leaves the
  window and one admission frees up; an integer, at least 1.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from .clock import SimClock


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: float  # simulated seconds until the window is empty
    retry_after: float  # simulated seconds until one admission frees up (0 if allowed)


class SlidingWindowLimiter:
    """``limit`` admissions per ``window`` simulated seconds per client key.

    ``limit <= 0`` disables limiting (every request admitted, headers still sent).
    """

    def __init__(self, clock: SimClock, limit: int = 10, window: float = 60.0) -> None:
        self.clock = clock
        self.limit = limit
        self.window = window
        self._log: dict[str, deque[float]] = {}

    def reset(self) -> None:
        self._log.clear()

    def _pruned(self, client: str, now: float) -> deque[float]:
        log = self._log.setdefault(client, deque())
        while log and log[0] <= now - self.window:
            log.popleft()
        return log

    def hit(self, client: str) -> RateDecision:
        """Try to admit one request from ``client``."""
        now = self.clock.now()
        log = self._pruned(client, now)
        if self.limit <= 0:
            return RateDecision(True, 0, 0, 0.0, 0.0)
        if len(log) >= self.limit:
            retry = log[0] + self.window - now
            return RateDecision(False, self.limit, 0, log[-1] + self.window - now, retry)
        log.append(now)
        return RateDecision(
            True, self.limit, self.limit - len(log), log[-1] + self.window - now, 0.0
        )

    def headers(self, decision: RateDecision) -> dict[str, str]:
        if decision.limit <= 0:
            return {}
        headers = {
            "X-RateLimit-Limit": str(decision.limit),
            "X-RateLimit-Remaining": str(decision.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.clock.to_real(decision.reset_after))),
        }
        if not decision.allowed:
            headers["Retry-After"] = str(
                max(1, math.ceil(self.clock.to_real(decision.retry_after)))
            )
        return headers
