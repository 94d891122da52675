"""Verifying NoKYC's webhook deliveries: ``X-Nokyc-Signature: t=<unix>,v1=<hex>`` where
v1 is HMAC-SHA256 of ``"{t}.{raw body}"`` with the subscription secret, refused when t is
more than 5 minutes from now; ``X-Nokyc-Delivery-Id`` names the delivery."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping

from ..base import VerifiedEvent, WebhookRejected, WebhookRejection

__all__ = ["TOLERANCE_SECONDS", "sign", "verify"]

TOLERANCE_SECONDS = 300
SIGNATURE_HEADER = "X-Nokyc-Signature"
DELIVERY_HEADER = "X-Nokyc-Delivery-Id"
_GONE_EVENTS = frozenset({"server.destroyed"})


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), "")
    return value.strip()


def verify(headers: Mapping[str, str], body: bytes, secret: str, now: float) -> VerifiedEvent:
    signature = _header(headers, SIGNATURE_HEADER)
    parts: dict[str, list[str]] = {}
    for item in signature.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    if "t" not in parts or "v1" not in parts:
        raise WebhookRejected(WebhookRejection.MISSING_SIGNATURE, f"missing or malformed {SIGNATURE_HEADER}")
    try:
        timestamp = int(parts["t"][0])
    except ValueError:
        raise WebhookRejected(WebhookRejection.MALFORMED, "signature timestamp is not a number") from None
    expected = sign(secret, body, timestamp).split("v1=", 1)[1].encode()
    if not any(hmac.compare_digest(expected, v.encode()) for v in parts["v1"]):
        raise WebhookRejected(WebhookRejection.BAD_SIGNATURE, "signature does not match")
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise WebhookRejected(WebhookRejection.STALE_TIMESTAMP,
                              f"signature timestamp is {abs(now - timestamp):.0f}s from now "
                              f"(tolerance {TOLERANCE_SECONDS}s)")
    delivery_id = _header(headers, DELIVERY_HEADER)
    if not delivery_id:
        raise WebhookRejected(WebhookRejection.MALFORMED, f"missing {DELIVERY_HEADER}")
    try:
        payload = json.loads(body)
        event = str(payload["type"])
        data = payload["data"]
        if "server" in data:
            vm_id = str(data["server"]["id"])
        else:
            vm_id = str(data["snapshot"]["server"])
    except (ValueError, KeyError, TypeError, RecursionError):  # deep nesting too
        raise WebhookRejected(WebhookRejection.MALFORMED, "payload is not a NoKYC server event") from None
    return VerifiedEvent(event=event, vm_id=vm_id, delivery_id=delivery_id, vm_gone=event in _GONE_EVENTS)
