"""Verifying Krova's webhook deliveries.

Two signature formats, both in ``X-Krova-Signature``:

* the seed's ``sha256=<hex>``: HMAC-SHA256 of the raw body with the endpoint secret;
* Krova's current ``t=<unix seconds>,v1=<hex>``: HMAC-SHA256 of ``"{t}.{raw body}"``,
  accepted within :data:`TOLERANCE_SECONDS` of now (what Krova's own webhook package
  checks), which bounds how long a captured delivery can be replayed.

Replays inside the window are stopped by the receiver's delivery-id log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping

from ..base import VerifiedEvent, WebhookRejected, WebhookRejection

__all__ = ["TOLERANCE_SECONDS", "sign_seed", "sign_v1", "verify"]

TOLERANCE_SECONDS = 300
SIGNATURE_HEADER = "X-Krova-Signature"
DELIVERY_HEADER = "X-Krova-Delivery"
EVENT_HEADER = "X-Krova-Event"


def _hmac(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def sign_seed(secret: str, body: bytes) -> str:
    """The seed's header value: ``sha256=<hex>``."""
    return "sha256=" + _hmac(secret, body)


def sign_v1(secret: str, body: bytes, timestamp: int) -> str:
    """The current header value: ``t=<unix>,v1=<hex of HMAC("{t}.{body}")>``."""
    return f"t={timestamp},v1=" + _hmac(secret, f"{timestamp}.".encode() + body)


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # plain dicts in tests; aiohttp's headers are case-insensitive
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), "")
    return value.strip()


def _check_signature(header: str, body: bytes, secret: str, now: float) -> None:
    if header.startswith("sha256="):
        if not hmac.compare_digest(sign_seed(secret, body).encode(), header.encode()):
            raise WebhookRejected(WebhookRejection.BAD_SIGNATURE, "signature does not match")
        return
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    if "t" not in parts or "v1" not in parts:
        raise WebhookRejected(WebhookRejection.MISSING_SIGNATURE,
                              f"{SIGNATURE_HEADER} is neither sha256=<hex> nor t=<unix>,v1=<hex>")
    try:
        timestamp = int(parts["t"][0])
    except ValueError:
        raise WebhookRejected(WebhookRejection.MALFORMED, "signature timestamp is not a number") from None
    expected = _hmac(secret, f"{timestamp}.".encode() + body).encode()
    # Several v1 values are allowed (secret rotation): any match will do.
    if not any(hmac.compare_digest(expected, v.encode()) for v in parts["v1"]):
        raise WebhookRejected(WebhookRejection.BAD_SIGNATURE, "signature does not match")
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise WebhookRejected(WebhookRejection.STALE_TIMESTAMP,
                              f"signature timestamp is {abs(now - timestamp):.0f}s from now "
                              f"(tolerance {TOLERANCE_SECONDS}s)")


def verify(headers: Mapping[str, str], body: bytes, secret: str, now: float) -> VerifiedEvent:
    """A verified Krova event, or :class:`WebhookRejected` saying why not."""
    signature = _header(headers, SIGNATURE_HEADER)
    if not signature:
        raise WebhookRejected(WebhookRejection.MISSING_SIGNATURE, f"missing {SIGNATURE_HEADER}")
    _check_signature(signature, body, secret, now)
    delivery_id = _header(headers, DELIVERY_HEADER)
    if not delivery_id:
        raise WebhookRejected(WebhookRejection.MALFORMED, f"missing {DELIVERY_HEADER}")
    try:
        payload = json.loads(body)
        vm_id = str(payload["data"]["id"])
        event = str(payload.get("event") or _header(headers, EVENT_HEADER))
    except (ValueError, KeyError, TypeError, RecursionError):  # deep nesting too
        raise WebhookRejected(WebhookRejection.MALFORMED, "payload is not a Krova event") from None
    return VerifiedEvent(event=event, vm_id=vm_id, delivery_id=delivery_id,
                         vm_gone=event == "cube.deleted")
