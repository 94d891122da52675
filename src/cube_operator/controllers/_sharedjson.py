"""kopf's watch events decoded with shared strings and without what nothing reads.

kopf keeps the latest body of every object it runs a daemon for. ``json.loads`` gives each
body its own copy of every key ("metadata", "lastTransitionTime", ...) and of every
repeated value ("True", "Ready", the namespace): about 4 KB of ten-thousand-fold
duplicates a Cube. The decoder here interns them, so ten thousand bodies share one copy.

It also leaves out ``metadata.managedFields`` and kubectl's last-applied annotation, the
largest parts of an object on a real cluster: kopf drops both from the essence it diffs,
its patches are merge patches of what it changes, and the operator reads neither.
"""
from __future__ import annotations

import json
import sys
from typing import Any

import kopf._cogs.clients.api as kopf_api

#: Values up to this long are shared: states, reasons, names, kinds. Longer ones (messages,
#: the last-applied annotations) are rarely equal between objects.
SHARED_VALUE_CHARS = 64


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _shared_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    intern = sys.intern
    return {intern(key): intern(value) if type(value) is str and len(value) <= SHARED_VALUE_CHARS else value
            for key, value in pairs}


_decoder = json.JSONDecoder(object_pairs_hook=_shared_object)


def loads(text: str | bytes) -> Any:
    """A watch event (``{"type": ..., "object": ...}``), its object without the unread parts."""
    event = _decoder.decode(text if isinstance(text, str) else text.decode("utf-8"))
    obj = event.get("object") if isinstance(event, dict) else None
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if isinstance(meta, dict):  # only there: a label or spec key of that name is kept
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED, None)
    return event


class _SharedJson:
    """Stands in for the ``json`` module in kopf's API client: ``loads`` shares strings,
    everything else is ``json``'s own."""

    loads = staticmethod(loads)

    def __getattr__(self, name: str) -> Any:
        return getattr(json, name)


def install() -> None:
    """Make kopf's watch streams (``kopf._cogs.clients.api.stream``: ``json.loads`` per
    line) decode with shared strings. tests/unit/test_shared_json.py fails if a kopf
    upgrade stops decoding there."""
    kopf_api.json = _SharedJson()  # type: ignore[assignment]
