"""Krova's webhook verifier (both signature formats) and the receiver's delivery log."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from cube_operator.controllers.receiver import DeliveryLog
from cube_operator.providers import WebhookRejected, WebhookRejection
from cube_operator.providers.krova import sign_seed, sign_v1, verify

SECRET = "s3cret"
BODY = json.dumps({"id": "evt_1", "event": "cube.running", "data": {"id": "cube_1"}}).encode()
NOW = 1_800_000_000.0


def headers(signature: str, delivery: str = "dlv_1") -> dict[str, str]:
    return {"X-Krova-Signature": signature, "X-Krova-Delivery": delivery, "X-Krova-Event": "cube.running"}


def rejection(hdrs: dict[str, str], body: bytes = BODY, now: float = NOW) -> WebhookRejection:
    with pytest.raises(WebhookRejected) as caught:
        verify(hdrs, body, SECRET, now)
    return caught.value.reason


def test_seed_signature_matches_the_seeds_recipe() -> None:
    header = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert sign_seed(SECRET, BODY) == header
    event = verify(headers(header), BODY, SECRET, NOW)
    assert (event.vm_id, event.event, event.delivery_id, event.vm_gone) == ("cube_1", "cube.running", "dlv_1", False)
    assert rejection(headers(sign_seed("other", BODY))) is WebhookRejection.BAD_SIGNATURE
    assert rejection(headers(header), BODY + b" ") is WebhookRejection.BAD_SIGNATURE
    assert rejection(headers(header.upper())) is WebhookRejection.MISSING_SIGNATURE
    assert rejection(headers("")) is WebhookRejection.MISSING_SIGNATURE


def test_v1_signature_is_hmac_of_timestamp_dot_body() -> None:
    t = int(NOW)
    expected = hmac.new(SECRET.encode(), f"{t}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign_v1(SECRET, BODY, t) == f"t={t},v1={expected}"
    assert verify(headers(sign_v1(SECRET, BODY, t)), BODY, SECRET, NOW).vm_id == "cube_1"
    # Rotation: one of several v1 values may match.
    assert verify(headers(f"t={t},v1={'0' * 64},v1={expected}"), BODY, SECRET, NOW).vm_id == "cube_1"
    assert rejection(headers(sign_v1("other", BODY, t))) is WebhookRejection.BAD_SIGNATURE
    # The timestamp is signed: moving it breaks the signature.
    assert rejection(headers(f"t={t + 1},v1={expected}")) is WebhookRejection.BAD_SIGNATURE
    assert rejection(headers(f"t=soon,v1={expected}")) is WebhookRejection.MALFORMED
    assert rejection(headers(f"v1={expected}")) is WebhookRejection.MISSING_SIGNATURE


def test_v1_timestamp_tolerance_is_300_seconds() -> None:
    t = int(NOW)
    assert verify(headers(sign_v1(SECRET, BODY, t - 300)), BODY, SECRET, NOW)
    assert verify(headers(sign_v1(SECRET, BODY, t + 300)), BODY, SECRET, NOW)
    assert rejection(headers(sign_v1(SECRET, BODY, t - 301))) is WebhookRejection.STALE_TIMESTAMP
    assert rejection(headers(sign_v1(SECRET, BODY, t + 301))) is WebhookRejection.STALE_TIMESTAMP


def test_a_signed_delivery_without_id_or_event_data_is_malformed() -> None:
    signature = sign_seed(SECRET, BODY)
    assert rejection({"X-Krova-Signature": signature}) is WebhookRejection.MALFORMED
    other = b'{"event": "cube.running"}'
    assert rejection(headers(sign_seed(SECRET, other)), other) is WebhookRejection.MALFORMED
    gone = json.dumps({"event": "cube.deleted", "data": {"id": "cube_9"}}).encode()
    assert verify(headers(sign_seed(SECRET, gone)), gone, SECRET, NOW).vm_gone


def test_rejections_map_to_http_statuses() -> None:
    assert WebhookRejected(WebhookRejection.BAD_SIGNATURE, "x").http_status == 401
    assert WebhookRejected(WebhookRejection.STALE_TIMESTAMP, "x").http_status == 401
    assert WebhookRejected(WebhookRejection.REPLAY, "x").http_status == 409
    assert WebhookRejected(WebhookRejection.MALFORMED, "x").http_status == 400


def test_delivery_log_is_bounded_and_forgets_oldest_first() -> None:
    log = DeliveryLog(size=3)
    for delivery in ("a", "b", "c", "d"):
        log.add(delivery)
    assert "a" not in log
    assert all(d in log for d in ("b", "c", "d"))
