"""Process-wide state of the running operator, built once at kopf start-up."""
from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._kube import Kube
from ._secretwatch import SecretWatches
from ._sessions import SessionRegistry


@dataclass
class OperatorOptions:
    poll_interval: float = 30.0
    log_format: str = "text"
    log_level: str = "info"
    webhook_port: int | None = None
    # How providers reach the receiver, e.g. https://cube-operator.example.com (Ingress).
    webhook_public_url: str | None = None
    metrics_port: int | None = None
    # (certificate, key) PEM files: the receiver serves HTTPS.
    webhook_tls: tuple[str, str] | None = None
    # Simulators whose clock runs N times faster: every documented rate limit is N times
    # faster too (the sandbox and tests; 1 against real providers).
    budget_scale: float = 1.0
    # Endpoints (URL prefixes) besides each provider's documented API that a ProviderConfig
    # may name: its credentials go there.
    allowed_endpoints: tuple[str, ...] = ()
    # Seconds a watch stream may stay silent before it is reopened (a dead connection).
    watch_inactivity_timeout: float = 60.0
    # Delete a deleted Cube's dependents here, where no garbage collector runs.
    delete_dependents: bool = False
    # At most this many reconcile passes at once, over all objects (a thousand Cubes waking
    # together queue for a slot instead of opening a thousand requests).
    max_concurrent_reconciles: int = 32
    # Where /metrics and the receiver listen (the sandbox: 127.0.0.1, this host only).
    bind_address: str = "0.0.0.0"

    def receiver_base_url(self) -> str | None:
        if self.webhook_public_url:
            return self.webhook_public_url.rstrip("/")
        if self.webhook_port:
            scheme = "https" if self.webhook_tls else "http"
            return f"{scheme}://127.0.0.1:{self.webhook_port}"
        return None


class VMIndex:
    """Cubes by provider id, fed by the Cube reconcilers: the webhook receiver finds the
    Cube a delivery is about without listing the namespace."""

    def __init__(self) -> None:
        # Names as a tuple: nearly always one, and a set is 216 bytes a Cube.
        self._by_id: dict[tuple[str, str, str], tuple[str, ...]] = {}
        self._by_cube: dict[tuple[str, str], tuple[str, str, str]] = {}

    def put(self, namespace: str, provider_config: str, vm_id: str, cube: str) -> None:
        key = (namespace, provider_config, vm_id)
        old = self._by_cube.get((namespace, cube))
        if old == key:
            return
        if old is not None:
            self._discard(old, cube)
        self._by_cube[(namespace, cube)] = key
        names = self._by_id.get(key, ())
        if cube not in names:
            self._by_id[key] = (*names, cube)

    def drop(self, namespace: str, cube: str) -> None:
        old = self._by_cube.pop((namespace, cube), None)
        if old is not None:
            self._discard(old, cube)

    def _discard(self, key: tuple[str, str, str], cube: str) -> None:
        names = tuple(name for name in self._by_id.get(key, ()) if name != cube)
        if names:
            self._by_id[key] = names
        else:
            self._by_id.pop(key, None)

    def lookup(self, namespace: str, provider_config: str, vm_id: str) -> set[str]:
        return set(self._by_id.get((namespace, provider_config, vm_id), ()))

    def __len__(self) -> int:
        return len(self._by_cube)


class Kick:
    """An object's wake-up flag: handlers, the webhook receiver and the poller set it; the
    object's daemon sleeps on it. Kicks while no one sleeps are one wake-up.

    A sleep is one future and one timer: no task and no coroutine of its own. With an
    ``asyncio.Event``, ``wait_for`` and a stop waiter, each of ten thousand sleeping
    daemons held three more tasks, their contexts and coroutines."""

    __slots__ = ("_kicked", "_sleeper", "_timer")

    def __init__(self) -> None:
        self._kicked = False
        self._sleeper: asyncio.Future[bool] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def set(self) -> None:
        sleeper = self._sleeper
        if sleeper is not None and not sleeper.done():
            self._end_sleep()
            sleeper.set_result(True)  # the sleeper takes the kick
        else:
            self._kicked = True

    def is_set(self) -> bool:
        return self._kicked

    def clear(self) -> None:
        self._kicked = False

    def sleep(self, timeout: float) -> asyncio.Future[bool]:
        """Until kicked or ``timeout`` passes; True if kicked (and the kick is used up).
        A kick that lands after the timer fired is kept for the next sleep, not lost.
        Cancelling the awaiter cancels the sleep."""
        loop = asyncio.get_running_loop()
        sleeper: asyncio.Future[bool] = loop.create_future()
        self._end_sleep()  # a cancelled sleep's timer
        if self._kicked:
            self._kicked = False
            sleeper.set_result(True)
            return sleeper
        self._sleeper = sleeper
        self._timer = loop.call_later(max(timeout, 0.05), self._time_up, sleeper)
        return sleeper

    def _time_up(self, sleeper: asyncio.Future[bool]) -> None:
        if self._sleeper is sleeper:
            self._sleeper = self._timer = None
        if not sleeper.done():
            sleeper.set_result(False)

    def _end_sleep(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._sleeper = self._timer = None


@dataclass
class Runtime:
    options: OperatorOptions
    kube: Kube
    sessions: SessionRegistry
    # Per-object wake-up flags, keyed by (plural, namespace, name): handlers, the
    # webhook receiver and the poller set them to make a daemon reconcile now.
    triggers: dict[tuple[str, str, str], Kick] = field(default_factory=dict)
    # Objects whose daemon runs in this process; a paused HA standby has none.
    active: set[tuple[str, str, str]] = field(default_factory=set)
    # Their bodies as kopf keeps them, updated by every watch event: what a Snapshot reads
    # of its Cube without a GET.
    bodies: dict[tuple[str, str, str], Mapping[str, Any]] = field(default_factory=dict)
    vm_index: VMIndex = field(default_factory=VMIndex)
    # Secrets watched by name (credentials, and Secrets objects wait for); set at start-up.
    secret_watches: SecretWatches | None = None
    # Bounds concurrent reconcile passes (options.max_concurrent_reconciles); set at start-up.
    reconcile_slots: asyncio.Semaphore | None = None

    def trigger(self, plural: str, namespace: str, name: str) -> Kick:
        kick = self.triggers.get((plural, namespace, name))
        if kick is None:
            kick = self.triggers[(plural, namespace, name)] = Kick()
        return kick

    def kick(self, plural: str, namespace: str, name: str) -> None:
        self.trigger(plural, namespace, name).set()

    async def aclose(self) -> None:
        if self.secret_watches is not None:
            await self.secret_watches.aclose()
        await self.sessions.aclose()
        await self.kube.aclose()


_runtime: Runtime | None = None
options = OperatorOptions()


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def get_runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the operator runtime is not started")
    return _runtime
