"""The daemon loop as a work queue: bounded concurrency, coalesced kicks, jittered requeues."""
from __future__ import annotations

import asyncio
import logging

from cube_operator.controllers._common import jittered, run_daemon_loop
from cube_operator.controllers._runtime import Kick
from cube_operator.providers._http import waiting


class Stop:
    """kopf's DaemonStopped, as much of it as the loop uses."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    async def wait(self) -> None:
        await self.event.wait()


async def stop_loops(stop: Stop, *loops: asyncio.Task[None]) -> None:
    """As kopf stops a daemon: the flag, then a cancel; a sleeping loop ends normally."""
    stop.event.set()
    for loop in loops:
        loop.cancel()
    outcomes = await asyncio.gather(*loops, return_exceptions=True)
    assert outcomes == [None] * len(loops)  # a stop, not an error: kopf logs no warning


async def test_at_most_k_passes_run_at_once() -> None:
    slots = asyncio.Semaphore(3)
    running, peak, passes = 0, 0, 0
    stop = Stop()

    async def reconcile() -> float:
        nonlocal running, peak, passes
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        passes += 1
        return 0.01

    loops = [asyncio.create_task(run_daemon_loop("Cube", reconcile, Kick(), stop, logging.getLogger(),
                                                 slots=slots)) for _ in range(20)]
    await asyncio.sleep(0.3)
    stop.event.set()  # their sleeps are short: each ends after its pass
    await asyncio.gather(*loops)
    assert peak == 3 and passes >= 20  # every object got its turn, never more than 3 at once


async def test_kicks_during_a_pass_are_one_more_pass() -> None:
    kick, stop = Kick(), Stop()
    passes = 0

    async def reconcile() -> float:
        nonlocal passes
        passes += 1
        if passes == 1:
            for _ in range(10):
                kick.set()  # ten changes while the first pass runs
            await asyncio.sleep(0.01)
        return 3600.0

    loop = asyncio.create_task(run_daemon_loop("Cube", reconcile, kick, stop, logging.getLogger()))
    await asyncio.sleep(0.2)
    await stop_loops(stop, loop)
    assert passes == 2


async def test_a_kick_wakes_a_sleep_and_kicks_coalesce() -> None:
    kick = Kick()
    kick.set()
    kick.set()
    assert await kick.sleep(3600) is True  # kicks while no one slept: one wake-up
    assert await asyncio.wait_for(kick.sleep(0.05), 1) is False  # then the timer
    sleeper = asyncio.ensure_future(kick.sleep(3600))
    await asyncio.sleep(0.01)
    kick.set()
    assert await asyncio.wait_for(sleeper, 1) is True and not kick.is_set()


async def test_a_kick_after_the_timer_fired_is_kept_for_the_next_sleep() -> None:
    kick = Kick()
    sleeper = asyncio.ensure_future(kick.sleep(3600))
    await asyncio.sleep(0)
    assert kick._sleeper is not None
    kick._sleeper.set_result(False)  # what the timer does when it fires
    kick.set()  # and a kick lands before the sleeper has run again
    assert await sleeper is False
    assert await asyncio.wait_for(kick.sleep(3600), 1) is True


async def test_a_cancelled_sleep_ends_its_timer_and_a_later_kick_is_kept() -> None:
    kick = Kick()
    sleeper = kick.sleep(3600)
    assert not asyncio.iscoroutine(sleeper)  # a future: a sleeping daemon holds no frame for it
    waiter = asyncio.ensure_future(asyncio.shield(sleeper))
    sleeper.cancel()  # what cancelling the awaiting daemon does to the future it awaits
    await asyncio.gather(waiter, return_exceptions=True)
    kick.set()  # nobody sleeps: kept
    assert kick.is_set()
    assert await asyncio.wait_for(kick.sleep(3600), 1) is True
    assert kick._timer is None  # the cancelled sleep's timer was cancelled, not left to fire


async def test_a_sleeping_loop_holds_no_task_but_its_own() -> None:
    # Ten thousand sleeping Cubes: each sleep must be a future, not extra tasks.
    stop = Stop()

    async def reconcile() -> float:
        return 3600.0

    before = len(asyncio.all_tasks())
    loops = [asyncio.create_task(run_daemon_loop("Cube", reconcile, Kick(), stop, logging.getLogger()))
             for _ in range(50)]
    await asyncio.sleep(0.05)
    assert len(asyncio.all_tasks()) - before == 50
    await stop_loops(stop, *loops)


async def test_a_cancel_without_a_stop_is_not_swallowed() -> None:
    async def reconcile() -> float:
        return 3600.0

    loop = asyncio.create_task(run_daemon_loop("Cube", reconcile, Kick(), Stop(), logging.getLogger()))
    await asyncio.sleep(0.02)
    loop.cancel()
    outcome = (await asyncio.gather(loop, return_exceptions=True))[0]
    assert isinstance(outcome, asyncio.CancelledError)


def test_requeue_delays_are_spread_by_ten_percent() -> None:
    seen = [jittered(30.0) for _ in range(500)]
    assert all(27.0 <= d <= 33.0 for d in seen) and max(seen) - min(seen) > 3.0
    assert jittered(0.5) == 0.5  # sub-second converging delays are left alone


async def test_a_pass_that_waits_for_a_rate_limit_lends_its_slot() -> None:
    # One slot: A's pass sleeps for the provider's rate limit (as the HTTP client does,
    # through `waiting`); B must run meanwhile instead of queueing behind A's wait.
    slots, stop = asyncio.Semaphore(1), Stop()
    order: list[str] = []

    async def a() -> float:
        order.append("a starts")
        await waiting(asyncio.sleep, 0.2)
        order.append("a sent")
        return 3600.0

    async def b() -> float:
        order.append("b runs")
        return 3600.0

    loop_a = asyncio.create_task(run_daemon_loop("Cube", a, Kick(), stop, logging.getLogger(), slots=slots))
    await asyncio.sleep(0.05)
    loop_b = asyncio.create_task(run_daemon_loop("Cube", b, Kick(), stop, logging.getLogger(), slots=slots))
    await asyncio.sleep(0.4)
    await stop_loops(stop, loop_a, loop_b)
    assert order == ["a starts", "b runs", "a sent"]
    assert slots._value == 1  # every slot given back


async def test_a_pass_whose_provider_turn_came_sends_without_queueing_for_a_slot() -> None:
    # One slot: A lends it while waiting for the provider's budget; B takes it and is still
    # running when A's turn comes. A sends at once (its reserved send time must not be
    # wasted) instead of waiting for B; the slot is given back exactly once.
    slots, stop = asyncio.Semaphore(1), Stop()
    order: list[str] = []

    async def a() -> float:
        order.append("a waits for its turn")
        await waiting(asyncio.sleep, 0.1)
        order.append("a sends")
        return 3600.0

    async def b() -> float:
        order.append("b runs")
        await asyncio.sleep(0.3)
        order.append("b ends")
        return 3600.0

    loop_a = asyncio.create_task(run_daemon_loop("Cube", a, Kick(), stop, logging.getLogger(), slots=slots))
    await asyncio.sleep(0.02)
    loop_b = asyncio.create_task(run_daemon_loop("Cube", b, Kick(), stop, logging.getLogger(), slots=slots))
    await asyncio.sleep(0.5)
    await stop_loops(stop, loop_a, loop_b)
    assert order == ["a waits for its turn", "b runs", "a sends", "b ends"]
    assert slots._value == 1
