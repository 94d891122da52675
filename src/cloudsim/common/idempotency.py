"""Idempotency-Key replay store.

Semantics (shared by Krova and NoKYC, which document the same header):

* Keys are scoped (Krova: per Space) and expire ``ttl`` simulated seconds after the
  first response was stored (24 h by default).
* Only successful (2xx) responses are stored.  An error means the operation did not
  happen, so a corrected retry under the same key runs normally instead of replaying
  the old error for a day.
* A replay returns the stored status and body byte-for-byte plus
  ``Idempotency-Replayed: true`` and does not run the operation again, even if the
  request body differs or the resource has changed since.
* Keys are 1..255 characters; anything else is a 400.
"""

from __future__ import annotations

from dataclasses import dataclass

from .clock import SimClock
from .errors import ApiError

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotency-Replayed"
MAX_KEY_LENGTH = 255


def checked_key(value: str | None) -> str | None:
    """The header's key, or ``None`` when absent; 400 when out of bounds."""
    if value is None:
        return None
    if not value or len(value) > MAX_KEY_LENGTH:
        raise ApiError(
            400, f"{IDEMPOTENCY_HEADER} must be between 1 and {MAX_KEY_LENGTH} characters"
        )
    return value


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes
    content_type: str
    stored_at: float


class IdempotencyStore:
    def __init__(self, clock: SimClock, ttl: float = 24 * 3600.0) -> None:
        self.clock = clock
        self.ttl = ttl
        self._entries: dict[tuple[str, str], StoredResponse] = {}

    def _expire(self) -> None:
        cutoff = self.clock.now() - self.ttl
        for k in [k for k, v in self._entries.items() if v.stored_at <= cutoff]:
            del self._entries[k]

    def get(self, scope: str, key: str) -> StoredResponse | None:
        self._expire()
        return self._entries.get((scope, key))

    def put(self, scope: str, key: str, status: int, body: bytes, content_type: str) -> None:
        if not 200 <= status < 300:
            return
        self._entries[(scope, key)] = StoredResponse(status, body, content_type, self.clock.now())

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)
