"""Pieces every kind's controller uses: annotations, error→condition mapping, daemon loop."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Self

import httpx
import kopf

from ..metrics import RECONCILES
from ..providers import (
    Conflict,
    Forbidden,
    Invalid,
    InvalidState,
    NoCapacity,
    NotFound,
    ProviderError,
    RateLimited,
    SpecRejected,
    Transient,
    Unauthorized,
    Unsupported,
)
from ..providers._http import WHILE_WAITING
from ._kube import KubeError
from ._runtime import Kick

PAUSED_ANNOTATION = "cube-operator.io/paused"
EXTERNAL_NAME_ANNOTATION = "cube-operator.io/external-name"
FINALIZER = "cube-operator.io/finalizer"
# Set by a replica whose receiver got a provider event for a Cube it does not reconcile
# (an HA standby): the active replica sees the change through its watch and re-reads.
PROVIDER_EVENT_ANNOTATION = "cube-operator.io/provider-event"
#: Where providers that take a callback URL per VM at create (CyberPanel) report to: one
#: URL per Cube, so the receiver knows the Cube's own secret before trusting a body.
CALLBACK_PATH = "/callbacks/{provider}/{namespace}/{name}"


def callback_url(base: str, provider: str, namespace: str, name: str) -> str:
    return base + CALLBACK_PATH.format(provider=provider, namespace=namespace, name=name)


def callback_secret_name(cube: str) -> str:
    """The Secret (owned by the Cube) holding its callback signing secret."""
    return f"{cube[:244]}-callback"


def root_password_secret_name(cube: str) -> str:
    """The Secret (owned by the Cube) holding a generated root password."""
    return f"{cube[:239]}-root-password"


# Ready=False reasons that need the user (spec, Secret, account) to change; everything
# else is a wait. Argo CD's health checks (deploy/argocd, generated) map these to Degraded.
TERMINAL_REASONS: tuple[str, ...] = (
    "InvalidSpec", "InvalidCredentials", "Forbidden", "WrongSpace", "Unsupported",
    "ProviderRejected", "ProviderError", "ImmutableFieldChanged", "CrossNamespaceReference",
    "ExternalResourceNotFound", "SnapshotFailed", "ReceiverDisabled", "DuplicateExternalResource",
    "ProviderSuspended", "Outbid", "ProvisioningFailed", "SecretConflict",
    "SecretNotAllowed", "AdoptionRefused", "EndpointNotAllowed",
)


PAUSED_MESSAGE = f'annotation {PAUSED_ANNOTATION} is "true"; nothing is reconciled'


def human_size(size_bytes: int | None) -> str | None:
    """Bytes for people, in binary units as disks are sold: 1536 MiB is "1.5GiB" (one word, so a column stays one word)."""
    if size_bytes is None:
        return None
    value = float(size_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f}{unit}" if unit == "B" or value >= 100 else f"{value:.3g}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def is_paused(meta: Any) -> bool:
    return str((meta.get("annotations") or {}).get(PAUSED_ANNOTATION, "")).lower() == "true"


def provider_error_reason(error: ProviderError) -> tuple[str, str, bool]:
    """(reason, message, terminal) for a provider error; terminal errors need the user."""
    name = getattr(error, "provider", "provider")
    if isinstance(error, Unauthorized):
        return ("InvalidCredentials",
                f"{name} rejected the API key (401); fix the credentials Secret", True)
    if isinstance(error, Forbidden):
        return ("Forbidden",
                (f"{name} refused access (403{', ' + error.code if error.code else ''}): the credentials "
                 f"are not allowed for this space/action: {error.message}"), True)
    if isinstance(error, Unsupported):
        return ("Unsupported", error.message, True)
    if isinstance(error, NoCapacity):
        return ("NoCapacity", (f"{name} has no capacity for this spec right now: {error.message}; "
                              "retrying with backoff"), False)
    if isinstance(error, SpecRejected):
        return ("InvalidSpec", error.message, True)
    if isinstance(error, Invalid):
        return ("ProviderRejected", f"{name} rejected the request: {error.message}", True)
    if isinstance(error, InvalidState):
        return ("WaitingForProviderState", f"{name}: {error.message}", False)
    if isinstance(error, Conflict):
        return ("Conflict", f"{name}: {error.message}", False)
    if isinstance(error, RateLimited):
        return ("RateLimited", f"{name} rate limit reached; retrying in {error.retry_after:.0f}s", False)
    if isinstance(error, NotFound):
        return ("NotFound", f"{name}: {error.message}", False)
    if isinstance(error, Transient):
        return ("ProviderUnavailable", f"{name} is unavailable: {error.message}", False)
    return ("ProviderError", f"{name}: {error.message}", False)


#: Consecutive failures of one object back off up to this, and a spread of ±JITTER keeps
#: objects that failed together (one outage) from all retrying in the same second.
BACKOFF_CAP_SECONDS = 300.0
JITTER = 0.2


def backoff(base: float, attempt: int, cap: float = BACKOFF_CAP_SECONDS) -> float:
    """``base``, 2×, 4×, … up to ``cap`` for the ``attempt``-th failure in a row, with jitter."""
    delay = min(base * 2.0 ** max(attempt - 1, 0), cap)
    return delay * random.uniform(1 - JITTER, 1 + JITTER)


def retry_delay(error: ProviderError, default: float, attempt: int = 1) -> float:
    """Seconds until the next try; ``attempt`` counts consecutive failures of the object."""
    if isinstance(error, RateLimited):
        # Never before the provider's Retry-After; spread after it.
        return max(float(error.retry_after), 1.0) * random.uniform(1.0, 1 + JITTER)
    if isinstance(error, NoCapacity):
        return backoff(2.0, attempt, 120.0)  # capacity returns on its own time
    return backoff(default, attempt)


class ReconcileSlot:
    """One of the bounded reconcile slots, held for a pass but lent out while the pass
    only sleeps (a provider's rate limit, a Retry-After): a thousand creates queued behind
    Krova's 10 writes a minute must not keep the Cubes already made from being observed."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self.slots = slots
        self.held = False

    async def __aenter__(self) -> Self:
        await self.slots.acquire()
        self.held = True
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.held:
            self.held = False
            self.slots.release()

    @contextlib.asynccontextmanager
    async def lent(self) -> AsyncIterator[None]:
        """Give the slot back for the wait; after it, take one again only if one is free.
        A pass whose provider turn has come sends at once rather than queue for a slot: its
        send time was reserved in the provider's budget, and a late send wastes that budget
        for good (a sliding window counts from the send). So the bound K is exceeded only by
        passes the provider budgets admitted, and only until they end."""
        if self.held:
            self.held = False
            self.slots.release()
        try:
            yield
        finally:
            if not self.slots.locked():
                await self.slots.acquire()  # free: returns without suspending
                self.held = True


def jittered(delay: float) -> float:
    """A requeue delay spread by ±10%: objects that woke together drift apart."""
    return delay * random.uniform(0.9, 1.1) if delay >= 1.0 else delay


async def run_daemon_loop(
    kind: str,
    reconcile: Callable[[], Awaitable[float]],
    kick: Kick,
    stopped: Any,
    logger: kopf.Logger | logging.LoggerAdapter[Any],
    woke: Callable[[bool], None] | None = None,
    slots: asyncio.Semaphore | None = None,
) -> None:
    """Reconcile, then sleep until kicked or the returned delay passes (a stopped daemon is cancelled).
    ``woke`` hears, before each pass after the first, whether a kick (a change) woke it.
    ``slots`` bounds how many passes run at once across all objects; kicks that arrive
    while a pass waits for a slot or runs are one wake-up (the event coalesces them)."""
    failures = 0
    in_outage = False
    while not stopped:
        try:
            if slots is None:
                delay = await reconcile()
            else:
                async with ReconcileSlot(slots) as slot:
                    token = WHILE_WAITING.set(slot.lent)
                    try:
                        delay = await reconcile()
                    finally:
                        WHILE_WAITING.reset(token)
            if in_outage:
                logger.info("the Kubernetes API answers again; reconciling normally")
            failures, in_outage = 0, False
            RECONCILES.labels(kind, "success").inc()
        except asyncio.CancelledError:
            raise
        except kopf.TemporaryError as error:
            delay = float(error.delay or 5)
            RECONCILES.labels(kind, "retry").inc()
        except Exception as error:
            failures += 1
            delay = min(2.0 ** failures, 60.0)
            RECONCILES.labels(kind, "error").inc()
            if is_api_outage(error):
                # One WARNING per object per outage, without a traceback (DEBUG has it).
                if not in_outage:
                    logger.warning("the Kubernetes API is unavailable (%s); retrying with backoff, "
                                   "next in %.0fs", api_error_text(error), delay)
                in_outage = True
                logger.debug("reconcile failed; retrying in %.0fs", delay, exc_info=True)
            else:
                logger.exception("reconcile failed; retrying in %.0fs", delay)
        if stopped:
            break
        # No waiter for ``stopped`` while asleep (a task per sleeping object): kopf cancels
        # a daemon right after setting it (no cancellation_backoff). That cancel, landing in
        # a sleep, is the stop asked for: end normally, which kopf does not warn about.
        try:
            kicked = await kick.sleep(jittered(delay))
        except asyncio.CancelledError:
            if stopped:
                break
            raise
        if woke is not None:
            woke(kicked)


def is_api_outage(error: BaseException) -> bool:
    """The Kubernetes API did not answer, or answered that it cannot now (5xx, 429)."""
    if isinstance(error, httpx.TransportError):
        return True
    return isinstance(error, KubeError) and (error.status >= 500 or error.status == 429)


def api_error_text(error: BaseException) -> str:
    return f"HTTP {error.status}" if isinstance(error, KubeError) else type(error).__name__


def newer(a: dict[str, Any] | None, b: dict[str, Any]) -> dict[str, Any]:
    """The more recent of two versions of an object, by resourceVersion."""
    if a is None:
        return b
    try:
        return a if int(a["metadata"]["resourceVersion"]) > int(b["metadata"]["resourceVersion"]) else b
    except (KeyError, ValueError, TypeError):
        return b
