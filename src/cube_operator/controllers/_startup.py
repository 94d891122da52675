"""kopf settings and the operator runtime's start and stop."""
from __future__ import annotations

import asyncio
from typing import Any

import kopf

from ..metrics import MetricsObserver
from ._common import FINALIZER
from ._kube import Kube
from ._leanstopper import install as lean_daemon_stoppers
from ._registry import registry
from ._runtime import Runtime, get_runtime, options, set_runtime
from ._secretwatch import SecretWatches
from ._serving import Servers
from ._sessions import SessionRegistry
from ._sharedjson import install as share_watch_strings

_servers = Servers()
KOPF_PREFIX = "kopf.cube-operator.io"


@kopf.on.login(registry=registry)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    # Our registry does not inherit kopf's default login handlers: in-cluster service
    # account first, then $KUBECONFIG / ~/.kube/config, read at login time.
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup(registry=registry)
async def configure(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    # Keep status for the API contract: kopf's bookkeeping goes to annotations. kopf
    # ignores changes under its own prefix, so it must not be the prefix of the user-facing
    # annotations (cube-operator.io/paused, ...), whose changes must wake the handlers.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.posting.reporting_component = "cube-operator"
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # A watch stream silent this long is taken for dead (a connection dropped without a
    # reset) and reopened from its last resourceVersion: spec changes are never missed for
    # longer. kopf asks for no bookmarks, so a quiet kind's stream is reopened this often.
    settings.watching.inactivity_timeout = options.watch_inactivity_timeout
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.queueing.error_delays = (1, 2, 5, 10, 30, 60)
    # kopf keeps a worker (task, queue, last body) per object until its events stop for
    # this long: thousands of Cubes being created at once held thousands of them (5 s).
    settings.queueing.idle_timeout = 1.0
    share_watch_strings()  # before the first watch: bodies share their keys
    lean_daemon_stoppers()  # before the first daemon
    kube = Kube()
    sessions = SessionRegistry(kube, options.poll_interval, observer=MetricsObserver(),
                               budget_scale=options.budget_scale, allowed_endpoints=options.allowed_endpoints)
    watches = SecretWatches(kube)
    sessions.secrets = watches  # credentials come from their watch, not a GET per reconcile
    set_runtime(Runtime(options=options, kube=kube, sessions=sessions, secret_watches=watches,
                        reconcile_slots=asyncio.Semaphore(max(options.max_concurrent_reconciles, 1))))
    await _servers.start(metrics_port=options.metrics_port, webhook_port=options.webhook_port,
                         host=options.bind_address, webhook_tls=options.webhook_tls)
    logger.info("cube-operator started (poll interval %ss, metrics port %s, webhook port %s)",
                options.poll_interval, options.metrics_port, options.webhook_port)


@kopf.on.cleanup(registry=registry)
async def shutdown(**_: Any) -> None:
    await _servers.stop()
    await get_runtime().aclose()
    set_runtime(None)
