"""Register the same daemon + kick + delete pattern for every kind, written once."""
from __future__ import annotations

from typing import Any

import kopf

from ..api import GROUP, VERSION
from ..metrics import forget_object
from ._common import run_daemon_loop
from ._reconciler import Reconciler
from ._registry import registry
from ._runtime import get_runtime


def register_reconciler(plural: str, factory: type[Reconciler], *, deletes: bool = True) -> None:
    @kopf.daemon(GROUP, VERSION, plural, id=f"{plural}-reconciler", cancellation_timeout=10.0, registry=registry)
    async def reconcile_daemon(body: kopf.Body, name: str, namespace: str | None, stopped: kopf.DaemonStopped,
                               logger: kopf.Logger, **unused: Any) -> None:
        # kopf passes two dozen kwargs; the dict of the unused ones would live as long as the
        # daemon (about 0.6 KB a Cube).
        del unused
        namespace = str(namespace)  # every kind here is namespaced
        runtime = get_runtime()
        reconciler = factory(runtime, body, logger)
        kind = str(body.get("kind") or plural)
        runtime.active.add((plural, namespace, name))
        runtime.bodies[(plural, namespace, name)] = body
        try:
            await run_daemon_loop(kind, reconciler.reconcile, runtime.trigger(plural, namespace, name),
                                  stopped, logger, woke=reconciler.woke, slots=runtime.reconcile_slots)
        finally:
            runtime.active.discard((plural, namespace, name))
            if runtime.bodies.get((plural, namespace, name)) is body:
                del runtime.bodies[(plural, namespace, name)]
            if body.get("metadata", {}).get("deletionTimestamp"):
                forget_object(kind, namespace, name)

    @kopf.on.update(GROUP, VERSION, plural, id=f"{plural}-changed", registry=registry)
    async def changed(name: str, namespace: str | None, **_: Any) -> None:
        get_runtime().kick(plural, str(namespace), name)

    if deletes:
        @kopf.on.delete(GROUP, VERSION, plural, id=f"{plural}-deleted", registry=registry)
        async def deleted(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
            await factory(get_runtime(), body, logger).finalize(memo)
