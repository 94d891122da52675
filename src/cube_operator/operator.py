"""`cube-operator run`: the kopf operator with cube-operator's handlers."""
from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import threading
from collections.abc import Sequence
from typing import Any

import kopf

from . import controllers
from ._logging import configure_logging

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_operator(
    *,
    namespaces: Sequence[str] = (),
    poll_interval: float = 30.0,
    liveness_port: int | None = 8080,
    log_format: str = "text",
    log_level: str = "info",
    peering: str | None = None,
    metrics_port: int | None = 9090,
    webhook_port: int | None = 8443,
    webhook_public_url: str | None = None,
    webhook_tls: tuple[str, str] | None = None,
    priority: int | None = None,
    budget_scale: float = 1.0,
    allowed_endpoints: tuple[str, ...] = (),
    watch_inactivity_timeout: float = 60.0,
    delete_dependents: bool = False,
    max_concurrent_reconciles: int = 32,
    bind_address: str = "0.0.0.0",
) -> None:
    configure_logging(log_format, log_level)
    controllers.options.budget_scale = budget_scale
    controllers.options.allowed_endpoints = allowed_endpoints
    controllers.options.watch_inactivity_timeout = watch_inactivity_timeout
    controllers.options.delete_dependents = delete_dependents
    controllers.options.max_concurrent_reconciles = max_concurrent_reconciles
    controllers.options.poll_interval = poll_interval
    controllers.options.metrics_port = metrics_port
    controllers.options.webhook_port = webhook_port
    controllers.options.webhook_public_url = webhook_public_url
    controllers.options.webhook_tls = webhook_tls
    controllers.options.log_format = log_format
    controllers.options.log_level = log_level
    controllers.options.bind_address = bind_address
    host = f"[{bind_address}]" if ":" in bind_address else bind_address
    liveness = f"http://{host}:{liveness_port}/healthz" if liveness_port else None
    if peering is not None and priority is None:
        # kopf pauses *every* peer that shares a priority; distinct random priorities make
        # the replicas elect one active operator, the others standing by until it is gone.
        priority = random.SystemRandom().randint(1, 2**31 - 1)
    asyncio.run(
        _operate(
            clusterwide=not namespaces,
            namespaces=list(namespaces),
            standalone=peering is None,
            peering_name=peering,
            liveness_endpoint=liveness,
            priority=priority,
            registry=controllers.registry,
        )
    )


async def _operate(**kwargs: Any) -> None:
    """``kopf.operator(**kwargs)``, stopped once by the first SIGINT or SIGTERM.

    kopf's own handlers call ``Future.set_result`` on every stop signal, so a second one
    (Ctrl-C reaches the whole foreground process group, the sandbox's operator included,
    and the sandbox then sends SIGTERM; or Ctrl-C pressed twice; or a kubelet's SIGTERM
    followed by another) makes asyncio log an ``InvalidStateError`` traceback while the
    operator shuts down. So kopf runs with a stop flag of ours, and our handlers set it
    once and only log a repeat. kopf does not arm its SIGKILL backstop for a stop flag
    (that is an embedder's intentional stop), so the first signal arms it here, as kopf
    would: a shutdown that hangs is killed after ``ultimate_exiting_timeout``.
    """
    loop = asyncio.get_running_loop()
    settings = kopf.OperatorSettings()
    stop: asyncio.Future[signal.Signals] = loop.create_future()

    def on_signal(signum: signal.Signals) -> None:
        if stop.done():
            log.info("Signal %s is received again; the operator is already stopping.", signum.name)
            return
        stop.set_result(signum)  # kopf logs "Signal ... is received. Operator is stopping."
        timeout = settings.process.ultimate_exiting_timeout
        if timeout is not None:
            loop.call_later(timeout, signal.pthread_kill, threading.get_ident(), signal.SIGKILL)

    existing = {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}
    tasks = await kopf.spawn_tasks(settings=settings, stop_flag=stop, **kwargs)
    if threading.current_thread() is threading.main_thread():
        # Replaces the handlers kopf.spawn_tasks has just added (the same signals).
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, on_signal, signum)
    await kopf.run_tasks(tasks, ignored=existing)


def env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]
