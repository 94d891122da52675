"""Verifying CyberPanel's per-VPS deployment callbacks: ``X-Webhook-Signature:
sha256=<hex>``, HMAC-SHA256 of the raw body with the ``webhook_secret`` given at create.

The seed names no delivery id, so a delivery is known by its body's digest (a replayed
body changes nothing twice); events are ``vps.deployment.completed`` / ``.failed``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping

from ..base import VerifiedEvent, WebhookRejected, WebhookRejection

__all__ = ["EVENTS", "SIGNATURE_HEADER", "sign", "verify"]

SIGNATURE_HEADER = "X-Webhook-Signature"
EVENTS = frozenset({"vps.deployment.completed", "vps.deployment.failed"})


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(headers: Mapping[str, str], body: bytes, secret: str, now: float) -> VerifiedEvent:
    signature = headers.get(SIGNATURE_HEADER)
    if signature is None:
        signature = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER.lower()), "")
    signature = signature.strip()
    if not signature.startswith("sha256="):
        raise WebhookRejected(WebhookRejection.MISSING_SIGNATURE, f"missing or malformed {SIGNATURE_HEADER}")
    if not hmac.compare_digest(sign(secret, body).encode(), signature.encode()):
        raise WebhookRejected(WebhookRejection.BAD_SIGNATURE, "signature does not match")
    try:
        payload = json.loads(body)
        event = str(payload["event"])
        vps_id = payload["data"]["vps_id"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise WebhookRejected(WebhookRejection.MALFORMED, "payload is not a CyberPanel deployment event") from None
    if event not in EVENTS or not isinstance(vps_id, int) or isinstance(vps_id, bool):
        raise WebhookRejected(WebhookRejection.MALFORMED, "payload is not a CyberPanel deployment event")
    return VerifiedEvent(event=event, vm_id=str(vps_id), delivery_id="sha256:" + hashlib.sha256(body).hexdigest())
