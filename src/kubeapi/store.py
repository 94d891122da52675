"""Object storage: one global resourceVersion counter, a bounded event history, watchers.

Everything runs on the server's event loop, so no locking: each mutation is a synchronous
step and watchers see events in resourceVersion order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .resources import Obj, StorageKey

ObjKey = tuple[str, str]  # (namespace or "", name)


@dataclass(frozen=True)
class Event:
    rv: int
    key: StorageKey
    type: str  # ADDED, MODIFIED, DELETED
    obj: Obj  # storage representation after the change (the last state for DELETED)
    old: Obj | None  # storage representation before the change


STOP = None  # queued to a watcher to end its stream


@dataclass(eq=False)
class Watcher:
    key: StorageKey
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    #: A fault (``POST /_emulator/watches/stall``): the stream stays open but sends nothing
    #: more, like a connection a NAT or load balancer dropped without telling anyone.
    stalled: bool = False

    def close(self) -> None:
        self.queue.put_nowait(STOP)


class TooOld(Exception):
    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


class Store:
    def __init__(self, history_size: int = 5000) -> None:
        self.rv = 0
        self._objects: dict[StorageKey, dict[ObjKey, Obj]] = {}
        self._history: deque[Event] = deque()
        self._history_size = max(1, history_size)
        self.compacted_rv = 0  # events at or below this RV may have been dropped
        #: Per storage key, the resourceVersion its watch window starts at (a custom
        #: resource's, when its CRD was registered): kube-apiserver's watch cache for a
        #: resource begins with a list at that moment, so older resourceVersions are 410.
        self._window_start: dict[StorageKey, int] = {}
        self._watchers: set[Watcher] = set()

    # -- reads ---------------------------------------------------------------------------------

    def get(self, key: StorageKey, namespace: str, name: str) -> Obj | None:
        return self._objects.get(key, {}).get((namespace, name))

    def objects(self, key: StorageKey, namespace: str | None = None) -> list[Obj]:
        bucket = self._objects.get(key, {})
        keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
        return [bucket[k] for k in keys]

    def storage_keys(self) -> list[StorageKey]:
        return list(self._objects)

    def count_in_namespace(self, namespace: str) -> int:
        return sum(1 for bucket in self._objects.values() for ns, _ in bucket if ns == namespace)

    def count(self, key: StorageKey) -> int:
        return len(self._objects.get(key, {}))

    # -- writes --------------------------------------------------------------------------------

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def _stamp(self, obj: Obj) -> int:
        rv = self.next_rv()
        obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
        return rv

    def create(self, key: StorageKey, obj: Obj) -> Obj:
        rv = self._stamp(obj)
        self._objects.setdefault(key, {})[_obj_key(obj)] = obj
        self._record(Event(rv, key, "ADDED", obj, None))
        return obj

    def update(self, key: StorageKey, obj: Obj, old: Obj) -> Obj:
        rv = self._stamp(obj)
        self._objects.setdefault(key, {})[_obj_key(obj)] = obj
        self._record(Event(rv, key, "MODIFIED", obj, old))
        return obj

    def remove(self, key: StorageKey, obj: Obj) -> Obj:
        bucket = self._objects.get(key, {})
        old = bucket.pop(_obj_key(obj), None)
        final = dict(obj)
        final["metadata"] = dict(obj.get("metadata", {}))
        rv = self._stamp(final)
        self._record(Event(rv, key, "DELETED", final, old))
        return final

    def drop_storage(self, key: StorageKey) -> None:
        self._objects.pop(key, None)
        self._window_start.pop(key, None)

    def start_window(self, key: StorageKey) -> None:
        """A new resource is served from now on: watches from before now are too old."""
        self._window_start[key] = self.rv

    # -- history and watchers --------------------------------------------------------------------

    def _record(self, event: Event) -> None:
        if len(self._history) >= self._history_size:
            dropped = self._history.popleft()
            self.compacted_rv = dropped.rv
        self._history.append(event)
        for w in list(self._watchers):
            if w.key == event.key:
                w.queue.put_nowait(event)

    def since(self, key: StorageKey, rv: int) -> Iterator[Event]:
        """Events for ``key`` after ``rv``; raises TooOld if some may have been dropped."""
        oldest = max(self.compacted_rv, self._window_start.get(key, 0))
        if rv < oldest:
            raise TooOld(rv, oldest + 1)
        return iter([e for e in self._history if e.rv > rv and e.key == key])

    def objects_at(self, key: StorageKey, rv: int, namespace: str | None = None) -> list[Obj]:
        """The objects of ``key`` as they were at ``rv`` (a list with
        ``resourceVersionMatch=Exact``), rebuilt by undoing the later events of the history;
        raises TooOld if some of them may have been dropped."""
        if rv < self.compacted_rv:
            raise TooOld(rv, self.compacted_rv + 1)
        state = dict(self._objects.get(key, {}))
        for event in reversed(self._history):
            if event.rv <= rv:
                break
            if event.key != key:
                continue
            if event.old is None:
                state.pop(_obj_key(event.obj), None)
            else:
                state[_obj_key(event.old)] = event.old
        keys = sorted(k for k in state if namespace is None or k[0] == namespace)
        return [state[k] for k in keys]

    def subscribe(self, key: StorageKey) -> Watcher:
        w = Watcher(key)
        self._watchers.add(w)
        return w

    def unsubscribe(self, w: Watcher) -> None:
        self._watchers.discard(w)

    def stall_watchers(self) -> int:
        """Make every open watch stream silent (new ones are served normally)."""
        for w in self._watchers:
            w.stalled = True
        return len(self._watchers)

    def close_watchers(self, key: StorageKey | None = None) -> None:
        for w in list(self._watchers):
            if key is None or w.key == key:
                w.close()


def _obj_key(obj: Obj) -> ObjKey:
    meta: dict[str, Any] = obj.get("metadata", {})
    return (meta.get("namespace") or "", meta["name"])
