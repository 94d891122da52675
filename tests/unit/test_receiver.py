from __future__ import annotations

import hashlib
import hmac

from cube_operator.controllers.receiver import DeliveryLog, expected_signature, signature_valid


def test_signature_matches_the_seeds_recipe() -> None:
    body = b'{"id":"evt_1","event":"cube.running"}'
    header = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert expected_signature("s3cret", body) == header
    assert signature_valid("s3cret", body, header)
    assert not signature_valid("other", body, header)
    assert not signature_valid("s3cret", body + b" ", header)
    assert not signature_valid("s3cret", body, header.upper())
    assert not signature_valid("s3cret", body, "")


def test_delivery_log_is_bounded_and_forgets_oldest_first() -> None:
    log = DeliveryLog(size=3)
    for delivery in ("a", "b", "c", "d"):
        log.add(delivery)
    assert "a" not in log
    assert all(d in log for d in ("b", "c", "d"))
