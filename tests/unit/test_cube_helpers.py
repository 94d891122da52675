from __future__ import annotations

from cube_operator.controllers.cube import idempotency_key, provider_name


def test_provider_name_fits_krova_limit_and_is_stable() -> None:
    assert provider_name("web-1") == "web-1"
    long = "a" * 200
    assert len(provider_name(long)) == 64
    assert provider_name(long) == provider_name(long)
    assert provider_name(long) != provider_name("b" * 200)


def test_idempotency_key_is_deterministic_per_attempt() -> None:
    uid = "0b6c1f8e-1111-2222-3333-444455556666"
    assert idempotency_key(uid, 1) == idempotency_key(uid, 1)
    assert idempotency_key(uid, 1) != idempotency_key(uid, 2)
    assert len(idempotency_key(uid, 99)) <= 255
