"""kopf's daemon stopper without events until one is asked for (controllers/_leanstopper.py)."""
from __future__ import annotations

import asyncio
import inspect
import threading

import kopf._core.engines.daemons as kopf_daemons
from kopf._core.intents.stoppers import DaemonStoppingReason

from cube_operator.controllers import _leanstopper
from cube_operator.controllers._leanstopper import LeanDaemonStopper


def test_kopf_makes_every_daemon_stopper_through_the_name_install_replaces() -> None:
    # If a kopf upgrade makes stoppers some other way, the operator silently pays 2.7 KB a
    # daemon again: this fails first.
    assert "stoppers.DaemonStopper()" in inspect.getsource(kopf_daemons)
    original = kopf_daemons.stoppers.DaemonStopper
    try:
        _leanstopper.install()
        assert _leanstopper.installed()
    finally:
        kopf_daemons.stoppers.DaemonStopper = original  # type: ignore[misc]


async def test_a_stopper_reads_as_kopfs_and_makes_no_event_unless_asked() -> None:
    stopper = LeanDaemonStopper()
    waiter = stopper.async_waiter
    assert not stopper.is_set() and not waiter and stopper.reason is None
    stopper.set(reason=DaemonStoppingReason.RESOURCE_DELETED)
    assert stopper._sync_event is None and stopper._async_event is None  # none was asked for
    assert stopper.is_set() and waiter and stopper.is_set(reason=DaemonStoppingReason.RESOURCE_DELETED)
    assert not stopper.is_set(reason=DaemonStoppingReason.OPERATOR_EXITING)
    when = stopper.when
    stopper.set(reason=DaemonStoppingReason.DAEMON_CANCELLED)  # reasons add up, the first time stays
    assert stopper.reason == DaemonStoppingReason.RESOURCE_DELETED | DaemonStoppingReason.DAEMON_CANCELLED
    assert stopper.when == when
    # Asked for after the stop: already set.
    assert stopper.async_event.is_set() and stopper.sync_event.is_set()


async def test_events_asked_for_before_the_stop_are_set_by_it() -> None:
    stopper = LeanDaemonStopper()
    woke = asyncio.ensure_future(stopper.async_event.wait())
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(stopper.sync_event.wait(5)))
    thread.start()
    await asyncio.sleep(0.05)
    assert not woke.done()
    stopper.set(reason=DaemonStoppingReason.OPERATOR_EXITING)
    await asyncio.wait_for(woke, 1)
    await asyncio.to_thread(thread.join, 5)
    assert result == [True]
    # kopf's own timed wait, through the waiter it hands to daemons.
    assert await stopper.async_waiter.wait(1) is stopper.async_waiter
