"""Outbound webhook deliveries with retries and a per-endpoint delivery history.

Provider-neutral: the provider builds the body and the headers (its own signature
scheme); this module POSTs them, retries and records every attempt.

A delivery succeeds on a 2xx answer within ``timeout`` simulated seconds; anything else
(non-2xx, connection error, timeout, redirect) is a failed attempt, retried up to
``retries`` more times ``retry_delay`` simulated seconds apart.  The body and headers,
including the delivery id, are identical across the retries of one delivery.

HTTPS endpoints are verified against the system trust store, or against
``ssl_context`` when one is given (e.g. a sandbox CA for a self-signed receiver).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .clock import SimClock, utc_now_iso
from .ids import new_id
from .stats import RequestStats

log = logging.getLogger(__name__)


@dataclass
class Delivery:
    id: str
    endpoint_id: str
    event: str
    created_at: str
    created_sim: float
    status: str = "pending"  # pending | delivered | failed
    attempts: int = 0
    last_attempt_at: str | None = None
    response_status: int | None = None
    last_error: str | None = None
    body: bytes = field(default=b"", repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event": self.event,
            "status": self.status,
            "attempts": self.attempts,
            "lastAttemptAt": self.last_attempt_at,
            "responseStatus": self.response_status,
            "createdAt": self.created_at,
        }


class WebhookDispatcher:
    def __init__(
        self,
        clock: SimClock,
        stats: RequestStats,
        *,
        timeout: float = 10.0,
        retries: int = 4,
        retry_delay: float = 60.0,
        retention: float = 30 * 24 * 3600.0,
        max_history: int = 1000,
        user_agent: str = "cloudsim-webhooks/1.0",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.clock = clock
        self.stats = stats
        self.timeout = timeout
        self.retries = retries
        self.retry_delay = retry_delay
        self.retention = retention
        self.max_history = max_history
        self.user_agent = user_agent
        self.ssl_context = ssl_context  # None: aiohttp's default verification
        self._history: dict[str, list[Delivery]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            headers={"User-Agent": self.user_agent}, auto_decompress=True
        )

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def deliver(
        self,
        endpoint_id: str,
        url: str,
        event: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        delivery_id: str | None = None,
    ) -> Delivery:
        """Record a pending delivery and start sending it in the background."""
        delivery = Delivery(
            id=delivery_id or new_id("dlv"),
            endpoint_id=endpoint_id,
            event=event,
            created_at=utc_now_iso(),
            created_sim=self.clock.now(),
            body=body,
        )
        history = self._history.setdefault(endpoint_id, [])
        history.append(delivery)
        self._prune(endpoint_id)
        task = asyncio.get_running_loop().create_task(self._send(delivery, url, dict(headers)))
        self._tasks[delivery.id] = task
        task.add_done_callback(functools.partial(self._forget_task, delivery.id))
        return delivery

    def _forget_task(self, delivery_id: str, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(delivery_id, None)

    def deliveries(self, endpoint_id: str, limit: int) -> list[Delivery]:
        """Newest first."""
        self._prune(endpoint_id)
        return list(reversed(self._history.get(endpoint_id, [])))[:limit]

    def forget_endpoint(self, endpoint_id: str) -> None:
        """Cascade: drop the endpoint's history and stop its pending retries."""
        for delivery in self._history.pop(endpoint_id, []):
            task = self._tasks.pop(delivery.id, None)
            if task is not None:
                task.cancel()

    def _prune(self, endpoint_id: str) -> None:
        history = self._history.get(endpoint_id)
        if not history:
            return
        cutoff = self.clock.now() - self.retention
        kept = [d for d in history if d.created_sim > cutoff][-self.max_history :]
        self._history[endpoint_id] = kept

    async def _send(self, delivery: Delivery, url: str, headers: dict[str, str]) -> None:
        for attempt in range(1 + self.retries):
            if attempt:
                await self.clock.sleep(self.retry_delay)
            delivery.attempts += 1
            delivery.last_attempt_at = utc_now_iso()
            self.stats.counters["webhook_attempts"] += 1
            if await self._attempt(delivery, url, headers):
                delivery.status = "delivered"
                self.stats.counters["webhook_delivered"] += 1
                return
        delivery.status = "failed"
        self.stats.counters["webhook_failed"] += 1

    async def _attempt(self, delivery: Delivery, url: str, headers: dict[str, str]) -> bool:
        assert self._session is not None, "dispatcher not started"
        timeout = aiohttp.ClientTimeout(total=self.clock.to_real(self.timeout))
        extra: dict[str, Any] = {} if self.ssl_context is None else {"ssl": self.ssl_context}
        try:
            async with self._session.post(
                url, data=delivery.body, headers=headers, timeout=timeout, allow_redirects=False,
                **extra,
            ) as response:
                delivery.response_status = response.status
                delivery.last_error = None
                return 200 <= response.status < 300
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # No HTTP answer (refused, reset, too slow): there is no status to record.
            delivery.response_status = None
            delivery.last_error = type(exc).__name__
            log.debug("webhook %s attempt %d failed: %r", delivery.id, delivery.attempts, exc)
            return False
