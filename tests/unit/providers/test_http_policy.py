"""Retry and rate-limit policy of ProviderHTTP for cases a simulator cannot produce
deterministically (HTTP-date Retry-After, exhausted wait budgets, server rate-limit
hints, connection errors before/after sending). These use httpx.MockTransport and an
injected clock; everything else is covered against the real simulator in
tests/contract."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from cube_operator.providers import (
    CallKind,
    InvalidState,
    RateLimited,
    RateLimiter,
    RetryPolicy,
    Transient,
)
from cube_operator.providers._http import ProviderHTTP

KEY = "kro_unit_0123456789abcdef"
Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, int | None]] = []
        self.waits: list[float] = []

    def on_request(
        self, provider: str, method: str, route: str, status: int | None, seconds: float
    ) -> None:
        assert provider == "test"
        assert seconds >= 0
        self.requests.append((method, route, status))

    def on_rate_limit_wait(self, provider: str, seconds: float) -> None:
        self.waits.append(seconds)


def make_http(
    clock: Any,
    handler: Handler,
    *,
    limit: int = 100,
    period: float = 60.0,
    max_wait: float = 120.0,
    retries: int = 3,
    observer: Any = None,
) -> ProviderHTTP:
    return ProviderHTTP(
        provider="test",
        base_url="http://provider.test/api/v1",
        auth_headers={"X-API-KEY": KEY},
        rate_limiter=RateLimiter(limit, period, clock=clock, sleep=clock.sleep),
        retry=RetryPolicy(retries=retries, base_delay=0.1, max_delay=1.0),
        max_rate_limit_wait=max_wait,
        observer=observer,
        transport=httpx.MockTransport(handler),
        clock=clock,
        sleep=clock.sleep,
    )


def scripted(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler returning (or raising) the given items in order, then 200s."""
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if queue:
            item = queue.pop(0)
            if isinstance(item, Exception):
                raise item
            return item
        return httpx.Response(200, json={"success": True})

    return handler, seen


def err(status: int, text: str = "nope", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": text}, headers=headers)


async def test_429_with_http_date_is_waited_out(clock: Any) -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    handler, seen = scripted(err(429, "slow down", {"Retry-After": format_datetime(when, True)}))
    recorder = Recorder()
    async with make_http(clock, handler, observer=recorder) as http:
        response = await http.request("POST", "/things", kind=CallKind.MUTATE, json={})
    assert response.status_code == 200
    assert len(seen) == 2
    assert sum(clock.sleeps) == pytest.approx(30.0, abs=2.0)
    assert recorder.waits and sum(recorder.waits) == pytest.approx(30.0, abs=2.0)
    assert [r[2] for r in recorder.requests] == [429, 200]


async def test_429_seconds_wait_blocks_other_mutations_too(clock: Any) -> None:
    handler, seen = scripted(err(429, headers={"Retry-After": "5"}))
    async with make_http(clock, handler) as http:
        await http.request("DELETE", "/things/{id}", kind=CallKind.MUTATE, path={"id": "a"})
        start = clock.now
        await http.request("DELETE", "/things/{id}", kind=CallKind.MUTATE, path={"id": "b"})
    assert clock.now == start  # the block has passed already
    assert sum(clock.sleeps) == pytest.approx(5.0)
    assert [r.url.path for r in seen] == ["/api/v1/things/a"] * 2 + ["/api/v1/things/b"]


async def test_429_beyond_budget_raises_rate_limited_without_sleeping(clock: Any) -> None:
    handler, seen = scripted(err(429, "Too many requests", {"Retry-After": "300"}))
    async with make_http(clock, handler, max_wait=120.0) as http:
        with pytest.raises(RateLimited) as info:
            await http.request("POST", "/things", kind=CallKind.MUTATE, json={})
    assert info.value.retry_after == 300.0
    assert info.value.status == 429
    assert info.value.message == "Too many requests"
    assert len(seen) == 1
    assert clock.sleeps == []


async def test_repeated_429s_exhaust_the_budget(clock: Any) -> None:
    handler, seen = scripted(*[err(429, headers={"Retry-After": "40"}) for _ in range(10)])
    async with make_http(clock, handler, max_wait=100.0) as http:
        with pytest.raises(RateLimited) as info:
            await http.request("POST", "/things", kind=CallKind.MUTATE, json={})
    # 40 + 40 waited, the third 40 would exceed 100.
    assert len(seen) == 3
    assert sum(clock.sleeps) == pytest.approx(80.0)
    assert info.value.retry_after >= 20.0


async def test_429_on_get_is_waited_out_too(clock: Any) -> None:
    handler, seen = scripted(err(429), err(429, headers={"Retry-After": "garbage"}))
    async with make_http(clock, handler, limit=10, period=60.0) as http:
        await http.request("GET", "/things", kind=CallKind.READ)
    assert len(seen) == 3
    assert clock.sleeps == [pytest.approx(6.0), pytest.approx(6.0)]  # period / limit


async def test_client_side_wait_beyond_budget_raises_before_sending(clock: Any) -> None:
    handler, seen = scripted()
    async with make_http(clock, handler, limit=2, period=600.0, max_wait=60.0) as http:
        await http.request("POST", "/a", kind=CallKind.MUTATE, json={})
        await http.request("POST", "/a", kind=CallKind.MUTATE, json={})
        with pytest.raises(RateLimited) as info:
            await http.request("POST", "/a", kind=CallKind.MUTATE, json={})
    assert info.value.status is None
    assert info.value.retry_after == pytest.approx(600.0)
    assert len(seen) == 2


async def test_window_counts_from_responses_not_requests(clock: Any) -> None:
    """With 0.5 s latency, the 3rd of 2-per-10s waits until 10 s after the 1st
    response (when the server counted it at the latest), not 10 s after its send."""
    sends: list[float] = []

    def slow(request: httpx.Request) -> httpx.Response:
        sends.append(clock.now)
        clock.now += 0.5
        return httpx.Response(201, json={})

    async with make_http(clock, slow, limit=2, period=10.0) as http:
        for _ in range(5):
            await http.request("POST", "/a", kind=CallKind.MUTATE, json={})
    for i in range(len(sends) - 2):
        assert sends[i + 2] >= sends[i] + 0.5 + 10.0


async def test_get_is_not_rate_limited_client_side(clock: Any) -> None:
    handler, seen = scripted()
    async with make_http(clock, handler, limit=1, period=600.0) as http:
        for _ in range(5):
            await http.request("GET", "/a", kind=CallKind.READ)
    assert len(seen) == 5
    assert clock.sleeps == []


async def test_server_remaining_zero_holds_next_mutation(clock: Any) -> None:
    handler, seen = scripted(
        httpx.Response(
            200,
            json={"success": True},
            headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "15"},
        )
    )
    async with make_http(clock, handler) as http:
        await http.request("POST", "/a", kind=CallKind.MUTATE, json={})
        await http.request("POST", "/a", kind=CallKind.MUTATE, json={})
    assert sum(clock.sleeps) == pytest.approx(15.0)
    assert len(seen) == 2


async def test_transient_get_is_retried_with_backoff(clock: Any) -> None:
    handler, seen = scripted(err(500), err(503), httpx.ReadTimeout("slow"))
    async with make_http(clock, handler) as http:
        response = await http.request("GET", "/a", kind=CallKind.READ)
    assert response.status_code == 200
    assert len(seen) == 4
    assert len(clock.sleeps) == 3
    assert all(0.05 <= s <= 1.0 for s in clock.sleeps)


async def test_retries_are_bounded(clock: Any) -> None:
    handler, seen = scripted(*[err(502, "bad gateway") for _ in range(10)])
    async with make_http(clock, handler, retries=2) as http:
        with pytest.raises(Transient) as info:
            await http.request("GET", "/a", kind=CallKind.READ)
    assert len(seen) == 3
    assert info.value.status == 502


async def test_post_without_key_is_not_resent_after_it_may_have_arrived(clock: Any) -> None:
    handler, seen = scripted(httpx.ReadTimeout("timed out"))
    async with make_http(clock, handler) as http:
        with pytest.raises(Transient) as info:
            await http.request("POST", "/a", kind=CallKind.MUTATE, json={})
    assert len(seen) == 1
    assert info.value.status is None
    assert "ReadTimeout" in info.value.message


async def test_post_without_key_is_resent_when_it_never_left(clock: Any) -> None:
    handler, seen = scripted(httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"))
    async with make_http(clock, handler) as http:
        await http.request("POST", "/a", kind=CallKind.MUTATE, json={})
    assert len(seen) == 3


async def test_post_with_idempotency_key_is_retried(clock: Any) -> None:
    handler, seen = scripted(httpx.RemoteProtocolError("dropped"), err(500))
    async with make_http(clock, handler) as http:
        await http.request("POST", "/a", kind=CallKind.MUTATE, json={}, idempotency_key="create-1")
    assert len(seen) == 3
    assert {r.headers["Idempotency-Key"] for r in seen} == {"create-1"}


async def test_delete_and_put_are_retried_but_not_422(clock: Any) -> None:
    ok = httpx.Response(200, json={"success": True})
    handler, seen = scripted(err(500), ok, err(504), ok, err(422, "Cube is sleeping"))
    async with make_http(clock, handler) as http:
        await http.request("DELETE", "/a/{id}", kind=CallKind.MUTATE, path={"id": "x"})
        await http.request("PUT", "/a/{id}/port", kind=CallKind.MUTATE, path={"id": "x"}, json={"p": 1})
        with pytest.raises(InvalidState):
            await http.request("DELETE", "/a/{id}", kind=CallKind.MUTATE, path={"id": "x"})
    assert len(seen) == 5


async def test_retry_safe_override(clock: Any) -> None:
    handler, seen = scripted(err(500))
    async with make_http(clock, handler) as http:
        with pytest.raises(Transient):
            await http.request("DELETE", "/a", kind=CallKind.MUTATE, retry_safe=False)
    assert len(seen) == 1


async def test_headers_auth_only_when_authenticated(clock: Any) -> None:
    handler, seen = scripted()
    async with make_http(clock, handler) as http:
        await http.request("GET", "/public", kind=CallKind.READ, authenticated=False)
        await http.request("GET", "/private", kind=CallKind.READ, params={"page": 2})
    assert "X-API-KEY" not in seen[0].headers
    assert seen[1].headers["X-API-KEY"] == KEY
    assert seen[1].url.params["page"] == "2"
    assert seen[1].headers["User-Agent"].startswith("cube-operator/")


async def test_path_parameters_are_quoted(clock: Any) -> None:
    handler, seen = scripted()
    async with make_http(clock, handler) as http:
        await http.request("GET", "/cubes/{cubeId}", kind=CallKind.READ, path={"cubeId": "../x y/z"})
    assert seen[0].url.raw_path == b"/api/v1/cubes/..%2Fx%20y%2Fz"


async def test_idempotency_key_length_is_checked(clock: Any) -> None:
    handler, _ = scripted()
    async with make_http(clock, handler) as http:
        with pytest.raises(ValueError):
            await http.request("POST", "/a", kind=CallKind.MUTATE, idempotency_key="k" * 256)
        with pytest.raises(ValueError):
            await http.request("POST", "/a", kind=CallKind.MUTATE, idempotency_key="")


async def test_request_json_rejects_non_objects(clock: Any) -> None:
    handler, _ = scripted(
        httpx.Response(200, content=b"<html>maintenance</html>"),
        httpx.Response(200, json=[1, 2]),
        httpx.Response(204),
    )
    async with make_http(clock, handler) as http:
        with pytest.raises(Transient, match="not JSON"):
            await http.request_json("GET", "/a", kind=CallKind.READ)
        with pytest.raises(Transient, match="JSON object"):
            await http.request_json("GET", "/a", kind=CallKind.READ)
        assert await http.request_json("GET", "/a", kind=CallKind.READ) == {}


async def test_broken_observer_does_not_break_calls(clock: Any) -> None:
    class Broken:
        def on_request(self, *args: object) -> None:
            raise RuntimeError("metrics down")

        def on_rate_limit_wait(self, *args: object) -> None:
            raise RuntimeError("metrics down")

    handler, _ = scripted(err(429, headers={"Retry-After": "1"}))
    async with make_http(clock, handler, observer=Broken()) as http:
        response = await http.request("POST", "/a", kind=CallKind.MUTATE, json={})
    assert response.status_code == 200


async def test_transport_error_text_is_scrubbed(clock: Any) -> None:
    handler, _ = scripted(*[httpx.ReadError(f"boom near {KEY}") for _ in range(5)])
    async with make_http(clock, handler, retries=1) as http:
        with pytest.raises(Transient) as info:
            await http.request("GET", "/a", kind=CallKind.READ)
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)
    assert "[REDACTED]" in info.value.message


def test_repr_hides_credentials(clock: Any) -> None:
    handler, _ = scripted()
    http = make_http(clock, handler)
    assert KEY not in repr(http)
    assert json.dumps(repr(http))
