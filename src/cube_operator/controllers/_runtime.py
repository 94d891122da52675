"""Process-wide state of the running operator, built once at kopf start-up."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ._kube import Kube
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

    def receiver_base_url(self) -> str | None:
        if self.webhook_public_url:
            return self.webhook_public_url.rstrip("/")
        if self.webhook_port:
            return f"http://127.0.0.1:{self.webhook_port}"
        return None


@dataclass
class Runtime:
    options: OperatorOptions
    kube: Kube
    sessions: SessionRegistry
    # Per-object wake-up events, keyed by (plural, namespace, name): handlers, the
    # webhook receiver and the poller set them to make a daemon reconcile now.
    triggers: dict[tuple[str, str, str], asyncio.Event] = field(default_factory=dict)
    # Objects whose daemon runs in this process; a paused HA standby has none.
    active: set[tuple[str, str, str]] = field(default_factory=set)

    def trigger(self, plural: str, namespace: str, name: str) -> asyncio.Event:
        return self.triggers.setdefault((plural, namespace, name), asyncio.Event())

    def kick(self, plural: str, namespace: str, name: str) -> None:
        self.trigger(plural, namespace, name).set()

    async def aclose(self) -> None:
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


async def wait_for_kick(event: asyncio.Event, timeout: float) -> bool:
    """Sleep until kicked or `timeout` passes; True if kicked."""
    try:
        await asyncio.wait_for(event.wait(), timeout=max(timeout, 0.05))
        return True
    except TimeoutError:
        return False
    finally:
        event.clear()
