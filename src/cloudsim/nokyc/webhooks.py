"""NoKYC's webhook deliveries: signing, the seed's retry schedule and 410 Gone.

Each delivery is one event for one subscription: ``POST`` of the event JSON with

* ``Content-Type: application/json``
* ``X-Nokyc-Delivery-Id: del_…`` (the same on every attempt, for replay-safety)
* ``X-Nokyc-Signature: t=<unix>,v1=<hex>``: ``v1`` is the lowercase hex HMAC-SHA256,
  keyed with the subscription secret, of ``"{t}." + raw body``.  ``t`` is the
  wall-clock time of *that attempt* (receivers reject a ``t`` more than 5 minutes off,
  so a retry a day later carries a fresh one); the body is the same on every attempt.

Attempts follow ``schedule`` (simulated seconds after the previous attempt; the seed's
``0, 60, 300, 1800, 18000, 86400``).  Success is a 2xx within ``timeout`` simulated
seconds (10).  A 410 stops the delivery and pauses the subscription (``on_gone``).
Before each attempt the subscription is looked up again: a deleted one stops the
delivery, a paused one fails it (``error: "subscription_paused"``), a changed URL or
secret is used from then on.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..common.clock import SimClock
from ..common.stats import RequestStats
from ..common.webhooks import Delivery, WebhookDispatcher
from .models import maybe_rfc3339, rfc3339

SIGNATURE_HEADER = "X-Nokyc-Signature"
DELIVERY_HEADER = "X-Nokyc-Delivery-Id"
RETRY_SCHEDULE: tuple[float, ...] = (0.0, 60.0, 300.0, 1800.0, 18000.0, 86400.0)
RETENTION = 7 * 24 * 3600.0


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Nokyc-Signature`` value for ``body`` signed at unix time ``timestamp``."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str | None, *, tolerance: float = 300.0,
           now: float | None = None) -> bool:
    """The seed's receiver-side check of ``X-Nokyc-Signature``."""
    if not header:
        return False
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
        v1 = parts["v1"]
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(v1, expected)


@dataclass
class NoKycDelivery(Delivery):
    event_id: str = ""
    seq: int = 0
    next_attempt_at: float | None = None  # unix seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "webhook_delivery",
            "webhook": self.endpoint_id,
            "event": self.event_id,
            "type": self.event,
            "status": self.status,
            "attempts": self.attempts,
            "response_status": self.response_status,
            "error": self.last_error,
            "last_attempt_at": self.last_attempt_at,
            "next_attempt_at": maybe_rfc3339(self.next_attempt_at),
            "created_at": self.created_at,
        }


# (url, secret, active) of a subscription, or None once it is deleted.
Lookup = Callable[[str], tuple[str, str, bool] | None]


class NoKycDispatcher(WebhookDispatcher):
    def __init__(
        self,
        clock: SimClock,
        stats: RequestStats,
        *,
        lookup: Lookup,
        on_gone: Callable[[str], None],
        new_delivery_id: Callable[[], str],
    ) -> None:
        super().__init__(clock, stats, timeout=10.0, retries=len(RETRY_SCHEDULE) - 1,
                         retention=RETENTION, user_agent="NoKYC-Webhooks/1.0")
        self.schedule: tuple[float, ...] = RETRY_SCHEDULE
        self.lookup = lookup
        self.on_gone = on_gone
        self.new_delivery_id = new_delivery_id
        self._seq = itertools.count(1)

    def send(self, webhook_id: str, event_type: str, event_id: str, body: bytes) -> NoKycDelivery:
        """Record a pending delivery of ``body`` and start its attempts."""
        delivery = NoKycDelivery(
            id=self.new_delivery_id(),
            endpoint_id=webhook_id,
            event=event_type,
            created_at=rfc3339(),
            created_sim=self.clock.now(),
            body=body,
            event_id=event_id,
            seq=next(self._seq),
            next_attempt_at=time.time(),
        )
        self._history.setdefault(webhook_id, []).append(delivery)
        self._prune(webhook_id)
        task = asyncio.get_running_loop().create_task(self._run(delivery, tuple(self.schedule)))
        self._tasks[delivery.id] = task
        task.add_done_callback(functools.partial(self._forget_task, delivery.id))
        return delivery

    def history(self, webhook_id: str) -> list[NoKycDelivery]:
        """Oldest first, pruned to the retention window."""
        self._prune(webhook_id)
        return [d for d in self._history.get(webhook_id, []) if isinstance(d, NoKycDelivery)]

    async def _run(self, delivery: NoKycDelivery, schedule: Sequence[float]) -> None:
        for index, delay in enumerate(schedule):
            if delay:
                delivery.next_attempt_at = time.time() + self.clock.to_real(delay)
                await self.clock.sleep(delay)
            target = self.lookup(delivery.endpoint_id)
            if target is None:
                delivery.status, delivery.next_attempt_at = "failed", None
                return
            url, secret, active = target
            if not active:
                delivery.status, delivery.next_attempt_at = "failed", None
                delivery.last_error = "subscription_paused"
                return
            delivery.next_attempt_at = None
            delivery.attempts += 1
            delivery.last_attempt_at = rfc3339()
            self.stats.counters["webhook_attempts"] += 1
            headers = {
                "Content-Type": "application/json",
                DELIVERY_HEADER: delivery.id,
                SIGNATURE_HEADER: sign(secret, delivery.body, int(time.time())),
            }
            if await self._attempt(delivery, url, headers):
                delivery.status = "succeeded"
                self.stats.counters["webhook_delivered"] += 1
                return
            if delivery.response_status == 410:
                delivery.status = "failed"
                delivery.last_error = "gone"
                self.stats.counters["webhook_failed"] += 1
                self.on_gone(delivery.endpoint_id)
                return
            if delivery.last_error is None and delivery.response_status is not None:
                delivery.last_error = f"http_{delivery.response_status}"
            if index == len(schedule) - 1:
                break
        delivery.status = "failed"
        delivery.next_attempt_at = None
        self.stats.counters["webhook_failed"] += 1
