"""Watch streams: newline-delimited JSON events over a chunked response."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import errors
from .cluster import Cluster
from .negotiation import JSON_TYPE, Rendering, dumps
from .resources import Obj, ResourceType
from .selectors import FieldSelector, LabelSelector
from .store import Event, TooOld
from .tables import build_table


@dataclass
class WatchParams:
    resource_version: str | None
    labels: LabelSelector
    fields: FieldSelector
    bookmarks: bool
    timeout: float | None
    send_initial_events: bool
    include_object: str


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def watch_params(query: Any) -> WatchParams:
    timeout = query.get("timeoutSeconds")
    try:
        timeout_f = float(timeout) if timeout not in (None, "") else None
    except ValueError:
        raise errors.bad_request(f"invalid timeoutSeconds: {timeout}") from None
    return WatchParams(
        resource_version=query.get("resourceVersion"),
        labels=LabelSelector.parse(query.get("labelSelector")),
        fields=FieldSelector.parse(query.get("fieldSelector")),
        bookmarks=_truthy(query.get("allowWatchBookmarks")),
        timeout=timeout_f if timeout_f and timeout_f > 0 else None,
        send_initial_events=_truthy(query.get("sendInitialEvents")),
        include_object=query.get("includeObject") or "Metadata",
    )


async def serve_watch(request: web.Request, cluster: Cluster, rt: ResourceType, version: str,
                      namespace: str | None, params: WatchParams, rendering: Rendering,
                      bookmark_interval: float, on_start: Callable[[int], None],
                      closing: Callable[[], bool]) -> web.StreamResponse:
    store = cluster.store
    cluster.check_field_selector(rt, params.fields)
    ns = namespace if rt.namespaced else None
    rv = params.resource_version
    initial: list[tuple[str, Obj]] = []
    expired: TooOld | None = None

    # Subscribing and taking the snapshot (or replaying history) happen in one synchronous
    # step, so no event can fall between them.
    watcher = store.subscribe(rt.key)
    if params.send_initial_events or rv in (None, "", "0"):
        listed = cluster.list(rt, version, ns, params.labels, params.fields)
        initial = [("ADDED", obj) for obj in listed.items]
    else:
        try:
            since = int(rv)  # type: ignore[arg-type]
        except ValueError:
            store.unsubscribe(watcher)
            raise errors.bad_request(f"invalid resource version: {rv}") from None
        try:
            for past in store.since(rt.key, since):
                translated = cluster.watch_event(rt, version, ns, params.labels, params.fields,
                                                 past)
                if translated:
                    initial.append(translated)
        except TooOld as e:
            expired = e
    initial_end_rv = store.rv

    resp = web.StreamResponse(status=200, headers={"Content-Type": JSON_TYPE,
                                                   "Cache-Control": "no-cache, private"})
    resp.enable_chunked_encoding()
    try:
        await resp.prepare(request)
        on_start(200)

        def frame(ev_type: str, obj: Obj) -> bytes:
            if rendering.form == "table" and ev_type not in ("BOOKMARK", "ERROR"):
                obj = build_table(rt, version, [obj], table_version=rendering.version,
                                  include_object=params.include_object)
            elif rendering.form == "partial" and ev_type not in ("BOOKMARK", "ERROR"):
                obj = {"kind": "PartialObjectMetadata",
                       "apiVersion": f"meta.k8s.io/{rendering.version}",
                       "metadata": obj.get("metadata", {})}
            return (dumps({"type": ev_type, "object": obj}) + "\n").encode()

        def bookmark(at: int, initial_end: bool = False) -> bytes:
            meta: dict[str, Any] = {"resourceVersion": str(at)}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return frame("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version(version),
                                      "metadata": meta})

        if expired is not None:
            # What a real apiserver sends for a compacted resourceVersion: HTTP 200 and a
            # single ERROR event carrying a 410 Status.
            await resp.write(frame("ERROR", errors.expired(str(expired)).status()))
            return resp
        for ev_type, obj in initial:
            await resp.write(frame(ev_type, obj))
        if params.send_initial_events and params.bookmarks:
            await resp.write(bookmark(initial_end_rv, initial_end=True))

        loop = asyncio.get_running_loop()
        deadline = loop.time() + params.timeout if params.timeout else None
        next_bookmark = loop.time() + bookmark_interval
        while not closing():
            if watcher.stalled:
                # Silently dead: nothing more is written, not even the end of the stream;
                # only the client giving up (or the server stopping) ends it.
                if await watcher.queue.get() is None:
                    break
                continue
            now = loop.time()
            wait = next_bookmark - now if params.bookmarks else 3600.0
            if deadline is not None:
                wait = min(wait, deadline - now)
            try:
                event: Event | None = await asyncio.wait_for(watcher.queue.get(),
                                                             timeout=max(wait, 0.0))
            except TimeoutError:
                now = loop.time()
                if deadline is not None and now >= deadline:
                    break
                if params.bookmarks and now >= next_bookmark:
                    if watcher.queue.empty():
                        await resp.write(bookmark(store.rv))
                    next_bookmark = now + bookmark_interval
                continue
            if event is None:
                break  # server shutdown or the resource went away
            if watcher.stalled:
                continue
            translated = cluster.watch_event(rt, version, ns, params.labels, params.fields,
                                             event)
            if translated:
                await resp.write(frame(*translated))
    except ConnectionResetError:
        return resp  # the client went away; nothing left to say
    finally:
        store.unsubscribe(watcher)
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof()
    return resp
