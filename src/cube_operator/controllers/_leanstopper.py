"""kopf's daemon stopper without its two events until something waits on one.

kopf gives every daemon a stopper holding a ``threading.Event`` (for sync daemons) and an
``asyncio.Event`` (for ``await stopped.wait()`` and kopf's own timed sleeps), each with its
lock, condition and waiter deque: about 1.5 KB a Cube, while the operator's daemons are
async and only ever read ``bool(stopped)``. This stopper keeps a plain flag and makes an
event the first time one is asked for, already set if the stop came first. Behaviour is
kopf's own: the same ``set``/``is_set``/``reason``/``when`` and the same event attributes.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any

import kopf._core.engines.daemons as kopf_daemons
import kopf._core.intents.stoppers as kopf_stoppers
from kopf._cogs.aiokits import aioenums

_making_events = threading.Lock()


class LeanDaemonStopper(aioenums.FlagSetter[kopf_stoppers.DaemonStoppingReason]):
    # The class attributes are what an instance has until asked: no events yet.
    _stopped = False
    _sync_event: threading.Event | None = None
    _async_event: asyncio.Event | None = None

    def __init__(self) -> None:
        # Not FlagSetter.__init__: that makes both events at once.
        self.when: float | None = None
        self.reason: kopf_stoppers.DaemonStoppingReason | None = None
        self.sync_waiter = aioenums.SyncFlagWaiter(self)
        self.async_waiter = aioenums.AsyncFlagWaiter(self)

    @property
    def sync_event(self) -> threading.Event:  # type: ignore[override]
        with _making_events:  # a sync daemon's thread may ask while the loop sets the flag
            if self._sync_event is None:
                event = threading.Event()
                self._sync_event = event
                if self._stopped:
                    event.set()
            return self._sync_event

    @property
    def async_event(self) -> asyncio.Event:  # type: ignore[override]
        if self._async_event is None:
            event = asyncio.Event()
            self._async_event = event
            if self._stopped:
                event.set()
        return self._async_event

    def is_set(self, reason: kopf_stoppers.DaemonStoppingReason | None = None) -> bool:
        matching_reason = reason is None or (self.reason is not None and reason in self.reason)
        return matching_reason and self._stopped

    def set(self, reason: kopf_stoppers.DaemonStoppingReason | None = None) -> None:
        reason = reason if reason is not None else self.reason
        self.when = self.when if self.when is not None else asyncio.get_running_loop().time()
        self.reason = reason if self.reason is None or reason is None else self.reason | reason
        with _making_events:
            self._stopped = True
            sync_event = self._sync_event
        if sync_event is not None:
            sync_event.set()
        if self._async_event is not None:
            self._async_event.set()  # always called in the operator's event loop, as in kopf


def install() -> None:
    """kopf's daemon engine makes every stopper as ``stoppers.DaemonStopper()``.
    tests/unit/test_lean_stopper.py fails if a kopf upgrade stops making them there."""
    stoppers: Any = kopf_stoppers
    stoppers.DaemonStopper = LeanDaemonStopper


def installed() -> bool:
    return kopf_daemons.stoppers.DaemonStopper is LeanDaemonStopper
