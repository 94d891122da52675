"""Per-VPS deployment webhooks (the ``webhook_url`` of ``POST /vps/create``).

When a deployment ends the simulator POSTs, once per VPS, the seed's payload::

    {"event": "vps.deployment.completed" | "vps.deployment.failed",
     "timestamp": "2026-01-05T15:03:00Z",
     "data": {"vps_id", "name", "status", "ip_address", "deployment_time_seconds",
              "failed_task", "error"}}          # the last two for failed only

with ``Content-Type: application/json``, ``User-Agent: CyberPanel-Webhooks/1.0`` and,
only when the create had a ``webhook_secret``, ``X-Webhook-Signature: sha256=<hex
HMAC-SHA256 of the exact body bytes, keyed with the secret>``.  Delivery, retries
(``webhook_retries`` more attempts ``webhook_retry_delay`` simulated seconds apart on
a non-2xx answer, an error or no answer within ``webhook_timeout``) and the history
are :class:`cloudsim.common.webhooks.WebhookDispatcher`'s; the endpoint id of a
delivery is the VPS id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from ..common.clock import SimClock
from ..common.stats import RequestStats
from ..common.webhooks import Delivery, WebhookDispatcher

SIGNATURE_HEADER = "X-Webhook-Signature"
USER_AGENT = "CyberPanel-Webhooks/1.0"
COMPLETED_EVENT = "vps.deployment.completed"
FAILED_EVENT = "vps.deployment.failed"


def sign(secret: str, body: bytes) -> str:
    """The ``X-Webhook-Signature`` value: ``sha256=`` + hex HMAC-SHA256(secret, body)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """The receiver's check of ``X-Webhook-Signature``."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


class DeploymentWebhooks:
    def __init__(self, clock: SimClock, stats: RequestStats) -> None:
        self.dispatcher = WebhookDispatcher(clock, stats, timeout=10.0, retries=3,
                                            retry_delay=30.0, user_agent=USER_AGENT)
        self.urls: dict[str, str] = {}  # endpoint (VPS id) -> url, for the admin listing

    async def start(self) -> None:
        await self.dispatcher.start()

    async def stop(self) -> None:
        await self.dispatcher.stop()

    def send(self, vps_id: int, url: str, secret: str | None, event: str,
             payload: dict[str, Any]) -> Delivery:
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, body)
        endpoint = str(vps_id)
        self.urls[endpoint] = url
        return self.dispatcher.deliver(endpoint, url, event, body, headers)

    def deliveries(self, vps_id: int | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Newest first; every VPS's when ``vps_id`` is None."""
        endpoints = [str(vps_id)] if vps_id is not None else list(self.urls)
        rows: list[tuple[float, dict[str, Any]]] = []
        for endpoint in endpoints:
            for d in self.dispatcher.deliveries(endpoint, limit):
                row = {**d.to_json(), "vps_id": int(endpoint), "url": self.urls.get(endpoint),
                       "last_error": d.last_error, "payload": json.loads(d.body)}
                rows.append((d.created_sim, row))
        rows.sort(key=lambda r: r[0], reverse=True)
        return [r for _, r in rows[:limit]]
