"""`cube-operator run`: the kopf operator with cube-operator's handlers."""
from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Sequence

import kopf

from . import controllers
from ._logging import configure_logging


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
    watch_inactivity_timeout: float = 15.0,
) -> None:
    configure_logging(log_format, log_level)
    controllers.options.budget_scale = budget_scale
    controllers.options.allowed_endpoints = allowed_endpoints
    controllers.options.watch_inactivity_timeout = watch_inactivity_timeout
    controllers.options.poll_interval = poll_interval
    controllers.options.metrics_port = metrics_port
    controllers.options.webhook_port = webhook_port
    controllers.options.webhook_public_url = webhook_public_url
    controllers.options.webhook_tls = webhook_tls
    controllers.options.log_format = log_format
    controllers.options.log_level = log_level
    liveness = f"http://0.0.0.0:{liveness_port}/healthz" if liveness_port else None
    if peering is not None and priority is None:
        # kopf pauses *every* peer that shares a priority; distinct random priorities make
        # the replicas elect one active operator, the others standing by until it is gone.
        priority = random.SystemRandom().randint(1, 2**31 - 1)
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=list(namespaces),
            standalone=peering is None,
            peering_name=peering,
            liveness_endpoint=liveness,
            priority=priority,
            registry=controllers.registry,
        )
    )


def env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]
