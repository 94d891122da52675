"""NoKYC's per-token token buckets.

The seed: "60 requests/minute per token with a 10-request burst. Bucket replenishes at
1 req/s.  Provisioning endpoints (POST /servers, POST /images) use a separate 200
req/minute bucket."  So every token has two buckets:

* general: capacity ``burst`` (10), refilled at ``limit / window`` tokens per simulated
  second (60 / 60 s = 1/s); every request except provisioning takes one token.
* provisioning: capacity ``provisioning_burst`` (200), refilled at
  ``provisioning_limit / window`` per simulated second.

A rejected request takes nothing.  Headers (real seconds, i.e. divided by the time
scale): ``X-RateLimit-Limit`` (the bucket's per-window limit, 60 or 200),
``X-RateLimit-Remaining`` (whole tokens left), ``X-RateLimit-Reset`` (unix epoch at
which the bucket is full again) and, on a 429, ``Retry-After`` (whole seconds until
one token is back, at least 1).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from ..common.clock import SimClock


@dataclass(frozen=True)
class BucketDecision:
    allowed: bool
    limit: int
    remaining: int
    full_in: float  # simulated seconds until the bucket is full
    retry_in: float  # simulated seconds until one token is available (0 if allowed)


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """One bucket per key; ``limit <= 0`` disables the buckets (no headers either)."""

    def __init__(self, clock: SimClock, *, limit: int, burst: int, window: float = 60.0) -> None:
        self.clock = clock
        self.limit = limit
        self.burst = burst
        self.window = window
        self._buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.limit > 0 and self.burst > 0

    @property
    def rate(self) -> float:
        """Tokens per simulated second."""
        return self.limit / self.window

    def reset(self) -> None:
        self._buckets.clear()

    def _current(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        return bucket

    def take(self, key: str) -> BucketDecision | None:
        if not self.enabled:
            return None
        now = self.clock.now()
        bucket = self._current(key, now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            allowed, retry = True, 0.0
        else:
            allowed, retry = False, (1.0 - bucket.tokens) / self.rate
        full_in = (self.burst - bucket.tokens) / self.rate
        return BucketDecision(allowed, self.limit, math.floor(bucket.tokens + 1e-9), full_in,
                              retry)

    def headers(self, decision: BucketDecision) -> dict[str, str]:
        reset = time.time() + self.clock.to_real(decision.full_in)
        headers = {
            "X-RateLimit-Limit": str(decision.limit),
            "X-RateLimit-Remaining": str(decision.remaining),
            "X-RateLimit-Reset": str(math.ceil(reset)),
        }
        if not decision.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.clock.to_real(decision.retry_in))))
        return headers
