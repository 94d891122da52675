"""Rate limits, retries, faults, observer hooks and credential hygiene, against the
simulator's real rate limiter and fault injection."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from cube_operator.providers import (
    ProviderError,
    RateLimited,
    Transient,
    Unauthorized,
)
from cube_operator.providers.krova import (
    CreateCubeRequest,
    KrovaClient,
)

pytestmark = pytest.mark.timeout(60)

CUBES = "/spaces/{spaceId}/cubes"
CUBE = "/spaces/{spaceId}/cubes/{cubeId}"
SLEEP = "/spaces/{spaceId}/cubes/{cubeId}/sleep"

# Simulator at 30x: Krova's 10 mutations per 60 s become 10 per 2 real seconds.
SCALED_PERIOD = 2.0


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, int | None, float]] = []
        self.waits: list[tuple[str, float]] = []

    def on_request(
        self, provider: str, method: str, route: str, status: int | None, seconds: float
    ) -> None:
        self.requests.append((provider, method, route, status, seconds))

    def on_rate_limit_wait(self, provider: str, seconds: float) -> None:
        self.waits.append((provider, seconds))


async def create_many(
    client: KrovaClient, new_cube: Callable[..., CreateCubeRequest], count: int, prefix: str
) -> list[str]:
    cubes = await asyncio.gather(
        *(
            client.create_cube(new_cube(f"{prefix}-{i}"), idempotency_key=f"{prefix}-{i}")
            for i in range(count)
        )
    )
    return [c.id for c in cubes]


async def test_client_limiter_keeps_the_simulator_from_ever_saying_429(
    make_client: Callable[..., KrovaClient],
    new_cube: Callable[..., CreateCubeRequest],
    admin: Any,
) -> None:
    await admin.config(time_scale=30.0)
    recorder = Recorder()
    client = make_client(rate_limit=10, rate_period=SCALED_PERIOD, observer=recorder)
    started = time.monotonic()

    ids = await create_many(client, new_cube, 20, "paced")

    elapsed = time.monotonic() - started
    assert len(set(ids)) == 20
    statuses = await admin.statuses()
    assert statuses.count(201) == 20
    assert 429 not in statuses
    # The second ten had to wait for the first ten to leave the 2 s window.
    assert elapsed >= SCALED_PERIOD
    assert recorder.waits and all(p == "krova" and s > 0 for p, s in recorder.waits)


async def test_429s_are_absorbed_as_waits(
    make_client: Callable[..., KrovaClient],
    new_cube: Callable[..., CreateCubeRequest],
    admin: Any,
) -> None:
    await admin.config(time_scale=30.0)
    recorder = Recorder()
    # The client believes it may send 100 per window; the simulator allows 10.
    client = make_client(rate_limit=100, rate_period=SCALED_PERIOD, observer=recorder)

    ids = await create_many(client, new_cube, 20, "eager")

    assert len(set(ids)) == 20
    statuses = await admin.statuses()
    assert statuses.count(201) == 20
    assert statuses.count(429) >= 1
    assert any(r[3] == 429 for r in recorder.requests)
    assert recorder.waits
    assert len(await client.list_cubes()) == 20


async def test_wait_budget_exhausted_raises_rate_limited(
    make_client: Callable[..., KrovaClient],
    new_cube: Callable[..., CreateCubeRequest],
    admin: Any,
) -> None:
    # Real-time window: once 10 creates are in, the next is possible only in ~60 s,
    # far beyond a 0.5 s wait budget.
    await admin.config(time_scale=1.0)
    client = make_client(rate_limit=100, rate_period=60.0, max_rate_limit_wait=0.5)
    await create_many(client, new_cube, 10, "budget")
    await admin.reset_stats()

    # This client learnt from X-RateLimit-Remaining: 0 and gives up without sending.
    with pytest.raises(RateLimited) as known:
        await client.create_cube(new_cube("one-too-many"), idempotency_key="budget-10")
    assert known.value.status is None
    assert known.value.retry_after > 0.5
    assert await admin.statuses() == []

    # A second client (same IP, own limiter) has to hear it from the server: a 429
    # whose Retry-After exceeds its budget becomes RateLimited at once.
    other = make_client(rate_limit=100, rate_period=60.0, max_rate_limit_wait=0.5)
    with pytest.raises(RateLimited) as told:
        await other.create_cube(new_cube("other"), idempotency_key="budget-11")
    assert told.value.status == 429
    assert told.value.retry_after > 0.5
    assert await admin.statuses() == [429]


async def test_get_survives_two_injected_500s(
    client: KrovaClient, new_cube: Callable[..., CreateCubeRequest], admin: Any
) -> None:
    cube = await client.create_cube(new_cube("flaky"), idempotency_key="flaky-1")
    await admin.reset_stats()
    await admin.fault(kind="status", status=500, method="GET", route=CUBE, count=2)

    fetched = await client.get_cube(cube.id)

    assert fetched.id == cube.id
    assert await admin.count("GET", CUBE, 500) == 2
    assert await admin.count("GET", CUBE, 200) == 1


async def test_get_that_times_out_is_retried(
    make_client: Callable[..., KrovaClient], admin: Any, wait_for: Any
) -> None:
    recorder = Recorder()
    client = make_client(timeout=0.3, observer=recorder)
    await admin.fault(kind="timeout", seconds=1.0, method="GET", route=CUBES, count=1)
    started = time.monotonic()

    assert await client.list_cubes() == []

    assert time.monotonic() - started < 1.0  # did not sit out the server's hang
    assert [r[3] for r in recorder.requests] == [None, 200]
    assert await admin.count("GET", CUBES, 200) == 1
    # The simulator books the hung request once it gives up on it.
    await wait_for(lambda: admin.count("GET", CUBES, "timeout"), lambda n: n == 1)


async def test_get_gives_up_after_bounded_retries(
    make_client: Callable[..., KrovaClient], admin: Any
) -> None:
    client = make_client(retries=2)
    await admin.fault(kind="status", status=503, method="GET", route=CUBES)
    with pytest.raises(Transient) as info:
        await client.list_cubes()
    assert info.value.status == 503
    assert await admin.count("GET", CUBES, 503) == 3


async def test_post_without_idempotency_is_not_retried(
    client: KrovaClient, new_cube: Callable[..., CreateCubeRequest], admin: Any, wait_for: Any
) -> None:
    cube = await client.create_cube(new_cube("once"), idempotency_key="once-1")
    await admin.reset_stats()
    await admin.fault(kind="status", status=500, method="POST", route=SLEEP, count=1)

    with pytest.raises(Transient) as info:
        await client.sleep_cube(cube.id)

    assert info.value.status == 500
    assert await admin.count("POST", SLEEP) == 1


async def test_post_dropped_without_idempotency_is_not_retried(
    client: KrovaClient, new_cube: Callable[..., CreateCubeRequest], admin: Any
) -> None:
    cube = await client.create_cube(new_cube("drop"), idempotency_key="drop-1")
    await admin.reset_stats()
    await admin.fault(kind="drop", method="POST", route=SLEEP, count=1)
    with pytest.raises(Transient):
        await client.sleep_cube(cube.id)
    assert await admin.count("POST", SLEEP) == 1


async def test_create_dropped_mid_flight_is_retried_without_duplicates(
    client: KrovaClient, new_cube: Callable[..., CreateCubeRequest], admin: Any
) -> None:
    await admin.fault(kind="drop", method="POST", route=CUBES, count=1)
    cube = await client.create_cube(new_cube("crash-safe"), idempotency_key="crash-safe-1")
    assert [c.id for c in await client.list_cubes()] == [cube.id]
    assert await admin.count("POST", CUBES, "drop") == 1
    assert await admin.count("POST", CUBES, 201) == 1


async def test_create_with_500_is_retried_under_its_idempotency_key(
    client: KrovaClient, new_cube: Callable[..., CreateCubeRequest], admin: Any
) -> None:
    await admin.fault(kind="status", status=500, method="POST", route=CUBES, count=1)
    cube = await client.create_cube(new_cube("retry"), idempotency_key="retry-1")
    assert [c.id for c in await client.list_cubes()] == [cube.id]


async def test_observer_sees_route_templates(
    make_client: Callable[..., KrovaClient],
    new_cube: Callable[..., CreateCubeRequest],
    admin: Any,
) -> None:
    recorder = Recorder()
    client = make_client(observer=recorder)
    await admin.fault(kind="status", status=502, method="GET", route=CUBE, count=1)
    cube = await client.create_cube(new_cube("seen"), idempotency_key="seen-1")
    await client.get_cube(cube.id)
    await client.sleep_cube(cube.id)

    calls = [(p, m, r, s) for p, m, r, s, _ in recorder.requests]
    assert calls == [
        ("krova", "POST", CUBES, 201),
        ("krova", "GET", CUBE, 502),
        ("krova", "GET", CUBE, 200),
        ("krova", "POST", SLEEP, 200),
    ]
    assert all(seconds >= 0 for *_, seconds in recorder.requests)


async def test_api_key_absent_from_logs_and_errors(
    make_client: Callable[..., KrovaClient],
    new_cube: Callable[..., CreateCubeRequest],
    admin: Any,
    api_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(retries=1, timeout=0.3)
    errors: list[ProviderError] = []

    cube = await client.create_cube(new_cube("quiet"), idempotency_key="quiet-1")
    await client.get_cube(cube.id)
    await admin.fault(kind="status", status=500, method="POST", route=SLEEP, count=1)
    await admin.fault(kind="timeout", seconds=3, method="GET", route=CUBE, count=2)
    for call in (client.sleep_cube(cube.id), client.get_cube(cube.id)):
        try:
            await call
        except ProviderError as exc:
            errors.append(exc)
    wrong = make_client(api_key=api_key[::-1])
    try:
        await wrong.list_cubes()
    except Unauthorized as exc:
        errors.append(exc)

    assert [type(e) for e in errors] == [Transient, Transient, Unauthorized]
    for err in errors:
        text = str(err) + repr(err) + "".join(traceback.format_exception(err))
        assert api_key not in text
        assert api_key[::-1] not in text
    assert any(r.name == "cube_operator.providers" for r in caplog.records)
    assert api_key not in caplog.text
    assert api_key[::-1] not in caplog.text
    for record in caplog.records:
        assert api_key not in str(record.args)
    assert api_key not in repr(client)
