"""Pure pieces: cost formula, clock scaling, the sliding window, validators, faults."""

from __future__ import annotations

import asyncio
import time

import pytest

from cloudsim.common.clock import SimClock
from cloudsim.common.errors import ApiError
from cloudsim.common.faults import FaultInjector
from cloudsim.common.idempotency import IdempotencyStore, checked_key
from cloudsim.common.ratelimit import SlidingWindowLimiter
from cloudsim.krova.catalog import cost_per_hour, tier_multiplier
from cloudsim.krova.engine import sign, sign_v1
from cloudsim.krova.validation import cidr, domain_name, ssh_public_key
from cloudsim.testing import verify_signature


def test_cost_and_tiers() -> None:
    assert [tier_multiplier(v) for v in (1, 2, 3, 4, 5, 8, 9, 64)] == [
        1.0, 1.0, 0.95, 0.95, 0.85, 0.85, 0.8, 0.8,
    ]
    assert cost_per_hour(2, 4, 30, compute=True) == 0.0135
    assert cost_per_hour(2, 4, 30, compute=False) == 0.0015


async def test_clock_scales_and_rebases() -> None:
    clock = SimClock(100.0)
    start = clock.now()
    await asyncio.sleep(0.05)
    assert 4.0 <= clock.now() - start < 20.0
    assert clock.to_real(60) == pytest.approx(0.6)
    clock.time_scale = 1.0
    before = clock.now()
    assert before >= start + 4.0  # no jump back on rebase
    with pytest.raises(ValueError):
        clock.time_scale = 0


def test_sliding_window() -> None:
    clock = SimClock(1000.0)  # 60 s window = 60 ms
    limiter = SlidingWindowLimiter(clock, limit=2, window=60.0)
    assert limiter.hit("a").allowed and limiter.hit("a").allowed
    denied = limiter.hit("a")
    assert not denied.allowed and 0 < denied.retry_after <= 60
    headers = limiter.headers(denied)
    assert headers["Retry-After"] == "1"  # at least one real second
    assert limiter.hit("b").allowed  # per client
    time.sleep(0.07)
    assert limiter.hit("a").allowed
    assert limiter.headers(SlidingWindowLimiter(clock, limit=0).hit("a")) == {}


def test_idempotency_store() -> None:
    clock = SimClock(1.0)
    store = IdempotencyStore(clock, ttl=0.05)
    store.put("sp", "k", 400, b"{}", "application/json")
    assert store.get("sp", "k") is None  # errors are not kept
    store.put("sp", "k", 201, b"{}", "application/json")
    assert store.get("sp", "k") is not None and store.get("other", "k") is None
    time.sleep(0.06)
    assert store.get("sp", "k") is None
    assert checked_key(None) is None
    with pytest.raises(ApiError):
        checked_key("")


def test_validators() -> None:
    assert cidr("10.0.0.1", "f") == "10.0.0.1/32"
    assert cidr("2001:db8::1", "f") == "2001:db8::1/128"
    with pytest.raises(ApiError):
        cidr("10.0.0.1/8", "f")
    assert domain_name("App.Example.COM.") == "app.example.com"
    assert domain_name("*.example.com") == "*.example.com"
    for bad in ("example", "a..b.com", "exa mple.com", "*.com", "1.2.3.4"):
        with pytest.raises(ApiError):
            domain_name(bad)
    assert ssh_public_key("  ssh-ed25519 AAAA x ") == "ssh-ed25519 AAAA x"
    with pytest.raises(ApiError):
        ssh_public_key("ecdsa-sha2 AAAA")


def test_signature_helpers_agree() -> None:
    header = sign("s3cret", b'{"a":1}')
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature("s3cret", b'{"a":1}', header)
    assert not verify_signature("s3cret", b'{"a":2}', header)
    assert not verify_signature("s3cret", b'{"a":1}', None)


def test_sign_v1_matches_a_hand_computed_hmac() -> None:
    # HMAC-SHA256, key "s3cret", of '1700000000.{"a":1}', computed outside the code under
    # test: printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
    expected = "t=1700000000,v1=" + (
        "1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
    )
    assert sign_v1("s3cret", b'{"a":1}', 1700000000) == expected
    # The timestamp is part of what is signed, and the old format is untouched.
    assert sign_v1("s3cret", b'{"a":1}', 1700000001) != expected
    assert sign_v1("other", b'{"a":1}', 1700000000) != expected
    assert not verify_signature("s3cret", b'{"a":1}', expected)
    assert sign("s3cret", b'{"a":1}').startswith("sha256=")


def test_fault_matching() -> None:
    faults = FaultInjector(seed=1)
    faults.add({"method": "post", "route": "create_cube", "count": 1})
    assert faults.pick("GET", "/x", {"create_cube"}) is None
    rule = faults.pick("POST", "/x", {"create_cube"})
    assert rule is not None and rule.fired == 1
    assert faults.pick("POST", "/x", {"create_cube"}) is None  # count used up
    faults.add({"path": "/api/v1/spaces/*/cubes", "probability": 0.5})
    fired = sum(faults.pick("GET", "/api/v1/spaces/sp/cubes", set()) is not None
                for _ in range(400))
    assert 120 < fired < 280
