"""Watches on the Secrets the operator was told to read, one name at a time.

A ProviderConfig's credentials Secret, or a Secret a Cube waits for, changes without
touching the object that names it. Each is watched by name
(``fieldSelector=metadata.name=<name>``), so a fixed API key takes effect within a second,
and the operator never lists or watches Secrets it was not pointed at. (The chart grants
``watch`` on Secrets for this; the watches the operator opens name one Secret each.)

While a watch is in step, :meth:`SecretWatches.get_secret` answers from what it last
delivered: a reconcile reads its credentials without a GET.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from ._kube import Kube, KubeError, NotFoundError

log = logging.getLogger(__name__)

Listener = Callable[[], Awaitable[None] | None]
#: Seconds a watch stays open before it is reopened (the API server ends it anyway).
WATCH_SECONDS = 240
RECONNECT_MAX_SECONDS = 30.0


class SecretWatches:
    """One watch per (namespace, Secret name) that something listens to."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._listeners: dict[tuple[str, str], dict[str, Listener]] = {}
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._forbidden_logged = False
        # The Secret as the watch last delivered it (None: it does not exist); only while
        # the watch is in step, so a reader never gets a version older than a GET would.
        self._cache: dict[tuple[str, str], dict[str, Any] | None] = {}

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        """The Secret: from its watch while in step, else one GET (as :class:`Kube`)."""
        where = (namespace, name)
        if where in self._cache:
            secret = self._cache[where]
            if secret is None:
                raise NotFoundError(404, "NotFound", f'secrets "{name}" not found')
            return secret
        return await self.kube.get_secret(namespace, name)

    def listen(self, namespace: str, name: str, key: str, listener: Listener) -> None:
        """Call ``listener`` when Secret ``namespace/name`` is created, changed or deleted.
        ``key`` names who listens: listening again under the same key replaces the listener."""
        where = (namespace, name)
        for other, listeners in list(self._listeners.items()):
            if other != where and key in listeners:
                self._drop(other, key)  # it now listens to another Secret
        self._listeners.setdefault(where, {})[key] = listener
        if where not in self._tasks or self._tasks[where].done():
            self._tasks[where] = asyncio.create_task(self._watch(namespace, name),
                                                     name=f"secret-watch {namespace}/{name}")

    def forget(self, key: str) -> None:
        """Stop calling the listener named ``key``; a Secret nobody listens to is unwatched."""
        for where in list(self._listeners):
            self._drop(where, key)

    def _drop(self, where: tuple[str, str], key: str) -> None:
        listeners = self._listeners.get(where, {})
        listeners.pop(key, None)
        if not listeners:
            self._listeners.pop(where, None)
            self._cache.pop(where, None)
            task = self._tasks.pop(where, None)
            if task is not None and task is not asyncio.current_task():
                task.cancel()

    def watched(self) -> set[tuple[str, str]]:
        return set(self._tasks)

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _notify(self, namespace: str, name: str) -> None:
        for listener in list(self._listeners.get((namespace, name), {}).values()):
            try:
                result = listener()
                if result is not None:
                    await result
            except Exception:  # one listener's failure must not stop the watch
                log.exception("handling a change of Secret %s/%s failed", namespace, name)

    async def _watch(self, namespace: str, name: str) -> None:
        log.debug("watching Secret %s/%s", namespace, name)
        version: str | None = None  # the resourceVersion last seen; None: not read yet
        failures = 0
        where = (namespace, name)
        while where in self._listeners:
            try:
                version, changed = await self._current(namespace, name, version)
                if changed:
                    await self._notify(namespace, name)
                async for event_version, secret in self.kube.watch_secret(namespace, name, version,
                                                                          WATCH_SECONDS):
                    failures = 0
                    if where in self._listeners:
                        self._cache[where] = secret
                    if event_version != version:
                        version = event_version
                        await self._notify(namespace, name)
            except asyncio.CancelledError:
                self._cache.pop(where, None)
                raise
            except KubeError as error:
                if error.status == 403 and not self._forbidden_logged:
                    self._forbidden_logged = True
                    log.warning("no permission to watch Secret %s/%s (403): credential changes are seen "
                                "at the next periodic check instead; grant watch on secrets to see them at once",
                                namespace, name)
                failures += 1
            except (httpx.HTTPError, ValueError, json.JSONDecodeError):
                failures += 1
            self._cache.pop(where, None)  # out of step until the next GET
            if failures:
                await asyncio.sleep(min(2.0 ** failures, RECONNECT_MAX_SECONDS) * random.uniform(0.8, 1.2))

    async def _current(self, namespace: str, name: str, known: str | None) -> tuple[str | None, bool]:
        """The Secret's resourceVersion now, and whether it moved since ``known``."""
        try:
            secret: dict[str, Any] | None = await self.kube.get_secret(namespace, name)
        except KubeError as error:
            if error.status != 404:
                raise
            secret = None
        version = str(secret["metadata"]["resourceVersion"]) if secret else "absent"
        if (namespace, name) in self._listeners:
            self._cache[(namespace, name)] = secret
        return version, known is not None and version != known
