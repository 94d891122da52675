from __future__ import annotations

from cube_operator.providers import CreateAttempt
from cube_operator.providers.krova import vm_name


def test_provider_name_fits_krova_limit_and_is_stable() -> None:
    assert vm_name("web-1") == "web-1"
    long = "a" * 200
    assert len(vm_name(long)) == 64
    assert vm_name(long) == vm_name(long)
    assert vm_name(long) != vm_name("b" * 200)


def test_idempotency_key_is_deterministic_per_attempt() -> None:
    uid = "0b6c1f8e-1111-2222-3333-444455556666"
    assert CreateAttempt(uid, 1).idempotency_key == CreateAttempt(uid, 1).idempotency_key
    assert CreateAttempt(uid, 1).idempotency_key != CreateAttempt(uid, 2).idempotency_key
    assert len(CreateAttempt(uid, 99).idempotency_key) <= 255
    assert CreateAttempt(uid, 3).idempotency_key == f"cube-operator-{uid}-3"
