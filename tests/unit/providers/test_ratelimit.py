from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from cube_operator.providers._ratelimit import (
    RateLimiter,
    parse_rate_limit_reset,
    parse_retry_after,
)

# -- sliding window --------------------------------------------------------------------


async def test_ten_allowed_then_eleventh_waits_for_window(clock: Any) -> None:
    limiter = RateLimiter(10, 60.0, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(10):
        assert await limiter.acquire() == 0.0
    assert clock.now == start  # no waiting for the first ten
    waited = await limiter.acquire()
    assert waited == pytest.approx(60.0)
    assert clock.now == pytest.approx(start + 60.0)


async def test_window_slides_per_send(clock: Any) -> None:
    limiter = RateLimiter(3, 10.0, clock=clock, sleep=clock.sleep)
    sends = []
    for _ in range(3):
        await limiter.acquire()
        sends.append(clock.now)
        clock.now += 2.0  # sends at t, t+2, t+4
    # at t+6: the 4th must wait for the first send (t) to leave the window -> t+10
    await limiter.acquire()
    assert clock.now == pytest.approx(sends[0] + 10.0)
    # the 5th waits for the second send (t+2) to leave -> t+12
    await limiter.acquire()
    assert clock.now == pytest.approx(sends[1] + 10.0)


async def test_no_more_than_limit_in_any_window(clock: Any) -> None:
    limiter = RateLimiter(4, 5.0, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(25):
        await limiter.acquire()
        times.append(clock.now)
    for i, t in enumerate(times):
        in_window = [u for u in times if t <= u < t + 5.0]
        assert len(in_window) <= 4, (i, in_window)


async def test_old_sends_expire(clock: Any) -> None:
    limiter = RateLimiter(2, 10.0, clock=clock, sleep=clock.sleep)
    await limiter.acquire()
    await limiter.acquire()
    clock.now += 10.0
    assert limiter.peek_delay() == 0.0
    assert await limiter.acquire() == 0.0


def test_reservations_queue_in_order_without_sleeping(clock: Any) -> None:
    limiter = RateLimiter(2, 30.0, clock=clock, sleep=clock.sleep)
    delays = [limiter.reserve().delay for _ in range(5)]
    assert delays == [0.0, 0.0, 30.0, 30.0, 60.0]


def test_peek_does_not_reserve(clock: Any) -> None:
    limiter = RateLimiter(1, 5.0, clock=clock, sleep=clock.sleep)
    assert limiter.peek_delay() == 0.0
    assert limiter.peek_delay() == 0.0
    limiter.reserve()
    assert limiter.peek_delay() == pytest.approx(5.0)


async def test_cancelled_waiter_gives_its_slot_back() -> None:
    limiter = RateLimiter(1, 0.5)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    # Only the first send counts: the next caller waits for it, not for the cancelled one.
    assert limiter.peek_delay() <= 0.5


def test_sends_count_from_when_their_response_arrived(clock: Any) -> None:
    limiter = RateLimiter(1, 10.0, clock=clock, sleep=clock.sleep)
    first = limiter.reserve()
    assert first.delay == 0.0
    clock.now += 3.0  # the response takes 3 s
    limiter.complete(first)
    # The server may have counted the request as late as t+3, so the next waits to t+13.
    assert limiter.peek_delay() == pytest.approx(10.0)


def test_recheck_extends_a_wait_when_an_earlier_send_finished_late(clock: Any) -> None:
    limiter = RateLimiter(1, 10.0, clock=clock, sleep=clock.sleep)
    start = clock.now
    first = limiter.reserve()
    second = limiter.reserve()
    assert second.delay == pytest.approx(10.0)
    clock.now = start + 5.0
    limiter.complete(first)  # finished 5 s after it was planned to start
    clock.now = start + 10.0  # the second caller wakes up as planned
    assert limiter.recheck(second) == pytest.approx(5.0)
    clock.now = start + 15.0
    assert limiter.recheck(second) == 0.0


def test_recheck_honours_a_block_that_arrived_meanwhile(clock: Any) -> None:
    limiter = RateLimiter(5, 10.0, clock=clock, sleep=clock.sleep)
    waiting = limiter.reserve()
    assert waiting.delay == 0.0
    limiter.block_for(4.0)
    assert limiter.recheck(waiting) == pytest.approx(4.0)


async def test_acquire_rechecks_until_free(clock: Any) -> None:
    limiter = RateLimiter(1, 10.0, clock=clock, sleep=clock.sleep)
    first = limiter.reserve()
    start = clock.now

    async def late_completion() -> None:
        # Runs while the second caller sleeps: the first send ends at t+4.
        clock.now = start + 4.0
        limiter.complete(first)

    real_sleep = clock.sleep
    calls = 0

    async def sleep(seconds: float) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await late_completion()
            clock.now = start + seconds
        else:
            await real_sleep(seconds)

    limiter._sleep = sleep
    waited = await limiter.acquire()
    assert clock.now == pytest.approx(start + 14.0)
    assert waited == pytest.approx(14.0)


def test_block_for_holds_everyone(clock: Any) -> None:
    limiter = RateLimiter(10, 60.0, clock=clock, sleep=clock.sleep)
    limiter.block_for(7.0)
    assert limiter.peek_delay() == pytest.approx(7.0)
    assert limiter.reserve().delay == pytest.approx(7.0)
    # A shorter block does not shorten a longer one.
    limiter.block_for(1.0)
    assert limiter.peek_delay() == pytest.approx(7.0)


def test_server_remaining_tightens_view(clock: Any) -> None:
    limiter = RateLimiter(10, 60.0, clock=clock, sleep=clock.sleep)
    # The server says only 2 sends are left in its window, which resets in 20 s.
    limiter.observe_server(remaining=2, reset_in=20.0)
    delays = [limiter.reserve().delay for _ in range(4)]
    assert delays[:2] == [0.0, 0.0]
    assert delays[2] == pytest.approx(20.0)
    assert delays[3] == pytest.approx(20.0)


def test_server_remaining_zero_without_reset_assumes_full_window(clock: Any) -> None:
    limiter = RateLimiter(10, 60.0, clock=clock, sleep=clock.sleep)
    limiter.observe_server(remaining=0, reset_in=None)
    assert limiter.peek_delay() == pytest.approx(60.0)


def test_server_hint_counts_pending_reservations(clock: Any) -> None:
    limiter = RateLimiter(10, 60.0, clock=clock, sleep=clock.sleep)
    limiter.block_for(1.0)
    limiter.reserve()  # pending: goes out in 1 s
    limiter.observe_server(remaining=1, reset_in=30.0)
    # The pending send will take the last credit, so the next one waits for the reset.
    assert limiter.peek_delay() == pytest.approx(30.0)


def test_server_hint_expires_with_reset(clock: Any) -> None:
    limiter = RateLimiter(10, 60.0, clock=clock, sleep=clock.sleep)
    limiter.observe_server(remaining=0, reset_in=5.0)
    clock.now += 5.0
    assert limiter.peek_delay() == 0.0


@pytest.mark.parametrize("limit,period", [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_rejects_nonsense_configuration(limit: int, period: float) -> None:
    with pytest.raises(ValueError):
        RateLimiter(limit, period)


# -- Retry-After -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,expected",
    [("120", 120.0), (" 3 ", 3.0), ("0", 0.0), ("1.5", 1.5), ("-4", 0.0)],
)
def test_retry_after_seconds(value: str, expected: float) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_http_date() -> None:
    now = datetime(2026, 5, 4, 8, 0, 0, tzinfo=UTC)
    value = format_datetime(now + timedelta(seconds=42), usegmt=True)
    assert value.endswith("GMT")
    assert parse_retry_after(value, now=now) == pytest.approx(42.0)


def test_retry_after_rfc_example_in_the_past_is_zero() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


@pytest.mark.parametrize(
    "value", [None, "", "   ", "soon", "nan", "inf", "Wed, 99 Foo 2015", "12 apples"]
)
def test_retry_after_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_rate_limit_reset_delta_epoch_and_garbage() -> None:
    assert parse_rate_limit_reset("30") == 30.0
    assert parse_rate_limit_reset("1800000030", now_epoch=1_800_000_000.0) == pytest.approx(30.0)
    assert parse_rate_limit_reset("1700000000", now_epoch=1_800_000_000.0) == 0.0
    assert parse_rate_limit_reset(None) is None
    assert parse_rate_limit_reset("later") is None


async def test_a_reset_counted_until_every_call_left_does_not_hold_back_our_own_window(clock: Any) -> None:
    # Krova-like: the server says remaining 0 and a reset when *all* logged calls have left
    # the window. When our own ten sends are what filled it, the 11th may go when the
    # oldest leaves (t+60), not at the server's reset (t+9+60).
    limiter = RateLimiter(10, 60.0, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(10):
        await limiter.acquire()
        clock.now += 1.0
    limiter.observe_server(remaining=0, reset_in=60.0)
    await limiter.acquire()
    assert clock.now == pytest.approx(start + 60.0)


async def test_a_window_another_client_spent_waits_for_the_servers_reset(clock: Any) -> None:
    limiter = RateLimiter(10, 60.0, clock=clock, sleep=clock.sleep)
    start = clock.now
    await limiter.acquire()  # one of ours; the server counts ten (another client's nine)
    limiter.observe_server(remaining=0, reset_in=30.0)
    await limiter.acquire()
    assert clock.now == pytest.approx(start + 30.0)


async def test_answers_read_out_of_order_do_not_bring_back_spent_credits(clock: Any) -> None:
    # Two concurrent calls: the server answered "1 left" to the first and "0 left" to the
    # second, but the client reads the second answer first.
    limiter = RateLimiter(100, 60.0, clock=clock, sleep=clock.sleep)
    limiter.observe_server(remaining=0, reset_in=30.0)
    limiter.observe_server(remaining=1, reset_in=30.0)
    assert limiter.peek_delay() == pytest.approx(30.0)


async def test_a_window_we_filled_opens_when_our_oldest_leaves_though_the_server_said_none_left(
        clock: Any) -> None:
    # The server's "0 left, reset when every logged call has left" still stands after our
    # oldest send has left the sliding window: the next send goes then, not at the reset.
    limiter = RateLimiter(10, 60.0, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(10):
        await limiter.acquire()
        clock.now += 1.0
    limiter.observe_server(remaining=0, reset_in=60.0)  # at start + 10: resets at start + 70
    clock.now = start + 60.5
    assert limiter.peek_delay() == 0.0
    await limiter.acquire()
    assert clock.now == pytest.approx(start + 60.5)
