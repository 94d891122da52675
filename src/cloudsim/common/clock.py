"""Simulated time shared by every part of a simulator.

Simulated time runs ``time_scale`` times faster than real time: with ``time_scale=60``
a 60 s rate-limit window lasts one real second, a 2 s boot lasts 33 ms.  Every delay a
provider documents (provisioning, retries, windows, expiry) is expressed in simulated
seconds and converted here, so the knob scales all of them at once.

Wall-clock timestamps in response bodies (``createdAt`` ...) stay real UTC time: they
are what a client compares with its own clock.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime


def utc_now_iso() -> str:
    """Current UTC time as ISO 8601 with milliseconds and ``Z``, like the providers."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SimClock:
    """A monotonic simulated clock whose speed can change at runtime.

    Changing the scale rebases the clock so simulated time never jumps; sleeps already
    in progress keep the real duration computed when they started.
    """

    def __init__(self, time_scale: float = 1.0) -> None:
        self._scale = self._checked(time_scale)
        self._real_base = time.monotonic()
        self._sim_base = 0.0

    @staticmethod
    def _checked(scale: float) -> float:
        scale = float(scale)
        if not scale > 0 or scale == float("inf"):
            raise ValueError("time_scale must be a positive finite number")
        return scale

    @property
    def time_scale(self) -> float:
        return self._scale

    @time_scale.setter
    def time_scale(self, scale: float) -> None:
        scale = self._checked(scale)
        now_real = time.monotonic()
        self._sim_base = self._sim_base + (now_real - self._real_base) * self._scale
        self._real_base = now_real
        self._scale = scale

    def now(self) -> float:
        """Simulated monotonic seconds (arbitrary origin)."""
        return self._sim_base + (time.monotonic() - self._real_base) * self._scale

    def to_real(self, sim_seconds: float) -> float:
        return sim_seconds / self._scale

    def to_sim(self, real_seconds: float) -> float:
        return real_seconds * self._scale

    async def sleep(self, sim_seconds: float) -> None:
        await asyncio.sleep(max(0.0, self.to_real(sim_seconds)))
