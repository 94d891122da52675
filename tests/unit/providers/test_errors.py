from __future__ import annotations

import copy
import json
import pickle
import random

import pytest

from cube_operator.providers import (
    Conflict,
    Forbidden,
    Invalid,
    InvalidState,
    NotFound,
    ProviderError,
    RateLimited,
    RetryPolicy,
    Transient,
    Unauthorized,
    Unsupported,
)
from cube_operator.providers._http import map_error, redact

KEY = "kro_live_5f3a9c0d1e2b4a6f8e7d"


@pytest.mark.parametrize(
    "status,cls",
    [
        (400, Invalid),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (408, Transient),
        (409, Conflict),
        (422, InvalidState),
        (429, RateLimited),
        (500, Transient),
        (502, Transient),
        (503, Transient),
        (504, Transient),
        (418, ProviderError),
    ],
)
def test_status_maps_to_class(status: int, cls: type[ProviderError]) -> None:
    err = map_error("krova", status, b'{"error": "Human-readable description"}')
    assert type(err) is cls
    assert err.status == status
    assert err.provider == "krova"
    assert err.message == "Human-readable description"


def test_all_errors_are_provider_errors() -> None:
    for cls in (
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        Invalid,
        InvalidState,
        RateLimited,
        Transient,
        Unsupported,
    ):
        assert issubclass(cls, ProviderError)


def test_message_falls_back_to_reason_phrase() -> None:
    assert map_error("krova", 400, b"").message == "Bad Request"
    assert map_error("krova", 502, b"<html>bad gateway</html>").message == "Bad Gateway"
    assert map_error("krova", 500, b'["not", "an object"]').message == "Internal Server Error"
    assert map_error("krova", 599, None).message == "error"


def test_a_404_is_not_found_only_in_the_providers_own_words() -> None:
    from cube_operator.providers import NotFound, Transient

    assert isinstance(map_error("krova", 404, b'{"error": "Cube not found"}'), NotFound)
    for foreign in (b"", b"<html><body>404 Not Found</body></html>", b"not found"):
        error = map_error("krova", 404, foreign)
        assert isinstance(error, Transient) and "proxy" in error.message


def test_message_is_bounded() -> None:
    err = map_error("krova", 400, json.dumps({"error": "x" * 5000}))
    assert len(err.message) <= 500


def test_rate_limited_carries_retry_after() -> None:
    err = map_error("krova", 429, b'{"error": "Too many"}', retry_after=12.5)
    assert isinstance(err, RateLimited)
    assert err.retry_after == 12.5


def test_str_and_repr_are_informative() -> None:
    err = map_error(
        "krova",
        404,
        b'{"error": "Cube not found"}',
        method="GET",
        route="/spaces/{spaceId}/cubes/{cubeId}",
    )
    assert str(err) == "krova: HTTP 404: Cube not found (GET /spaces/{spaceId}/cubes/{cubeId})"
    assert repr(err) == "NotFound(provider='krova', status=404, message='Cube not found')"
    assert str(Unsupported("no snapshots", provider="voltagepark")) == "voltagepark: no snapshots"


def test_key_echoed_by_server_is_scrubbed() -> None:
    body = json.dumps({"error": f"API key {KEY} is not valid for space sp_x"})
    err = map_error("krova", 401, body, secrets=[KEY])
    for text in (str(err), repr(err), err.message, *map(str, err.args)):
        assert KEY not in text
    assert "[REDACTED]" in err.message


def test_redact_ignores_empty_secrets() -> None:
    assert redact("abc", ["", KEY]) == "abc"
    assert redact(f"a{KEY}b{KEY}", [KEY]) == "a[REDACTED]b[REDACTED]"


def test_errors_survive_pickle_and_copy() -> None:
    err = RateLimited("slow down", provider="krova", retry_after=3.0, method="POST", route="/x")
    for clone in (pickle.loads(pickle.dumps(err)), copy.copy(err)):
        assert isinstance(clone, RateLimited)
        assert clone.retry_after == 3.0
        assert clone.provider == "krova"
        assert clone.route == "/x"
        assert str(clone) == str(err)


# -- backoff ---------------------------------------------------------------------------


def test_backoff_stays_within_equal_jitter_bounds() -> None:
    policy = RetryPolicy(retries=5, base_delay=0.5, max_delay=4.0, rng=random.Random(7))
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (60, 4.0)]:
        assert policy.ceiling(attempt) == ceiling
        for _ in range(200):
            delay = policy.backoff(attempt)
            assert ceiling / 2 <= delay <= ceiling


def test_backoff_is_jittered() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0, rng=random.Random(1))
    assert len({round(policy.backoff(3), 6) for _ in range(20)}) > 10


def test_backoff_huge_attempt_does_not_overflow() -> None:
    assert RetryPolicy(max_delay=8.0).backoff(10_000) <= 8.0


def test_retry_policy_validates() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(retries=-1)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay=-1)
