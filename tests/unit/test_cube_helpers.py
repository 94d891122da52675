from __future__ import annotations

import pytest

from cube_operator.controllers._common import BACKOFF_CAP_SECONDS, JITTER, human_size, retry_delay
from cube_operator.providers import CreateAttempt, RateLimited, Transient
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


@pytest.mark.parametrize(("size", "text"), [
    (None, None), (0, "0B"), (512, "512B"), (1024, "1KiB"), (1536 * 1024**2, "1.5GiB"),
    (123 * 1024**3, "123GiB"), (5 * 1024**4, "5TiB"), (2048 * 1024**4, "2048TiB"),
])
def test_human_size_is_one_word_in_binary_units(size: int | None, text: str | None) -> None:
    assert human_size(size) == text


def test_backoff_doubles_to_a_cap_with_jitter_and_never_undercuts_retry_after() -> None:
    for attempt in range(1, 12):
        expected = min(3.0 * 2 ** (attempt - 1), BACKOFF_CAP_SECONDS)
        seen = [retry_delay(Transient("x", provider="p"), 3.0, attempt) for _ in range(200)]
        assert all(expected * (1 - JITTER) <= d <= expected * (1 + JITTER) for d in seen)
        assert max(seen) - min(seen) > expected * JITTER  # spread, not one instant
    limited = [retry_delay(RateLimited("slow", provider="p", retry_after=7.0), 3.0, 5) for _ in range(200)]
    assert all(7.0 <= d <= 7.0 * (1 + JITTER) for d in limited)


def test_a_converging_cube_acts_on_a_fresh_observation_and_backs_off_to_the_poll_interval() -> None:
    from cube_operator.controllers.cube import CONVERGING_LIST_AGE, fleet_view_age

    assert fleet_view_age(30.0, None) == 30.0  # steady: one list per poll interval
    assert fleet_view_age(30.0, 0.0) == CONVERGING_LIST_AGE  # just created
    assert fleet_view_age(30.0, 20.0) == 5.0  # a quarter of the time it has converged
    assert fleet_view_age(30.0, 600.0) == 30.0  # stuck: no more lists than when steady
    assert fleet_view_age(1.0, 0.0) == 1.0  # never older than the poll interval allows
