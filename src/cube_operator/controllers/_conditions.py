"""Kubernetes-style conditions: pure functions, unit-tested."""
from __future__ import annotations

import datetime
from collections.abc import Collection
from typing import Any

READY = "Ready"
SYNCED = "Synced"


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_in(seconds: float) -> str:
    """The RFC 3339 time ``seconds`` from now (rounded up to the second)."""
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds + 0.999)
    return later.strftime("%Y-%m-%dT%H:%M:%SZ")


def seconds_since(timestamp: str | None) -> float:
    """Seconds since an RFC 3339 timestamp; infinity when absent or unreadable."""
    if not timestamp:
        return float("inf")
    try:
        then = datetime.datetime.fromisoformat(timestamp)
    except ValueError:
        return float("inf")
    return (datetime.datetime.now(datetime.UTC) - then).total_seconds()


def set_condition(
    conditions: list[dict[str, Any]] | None,
    type_: str,
    status: bool | str,
    reason: str,
    message: str,
    generation: int | None,
    now: str | None = None,
) -> list[dict[str, Any]]:
    """Return a new list with `type_` set; lastTransitionTime moves only when status changes."""
    value = status if isinstance(status, str) else ("True" if status else "False")
    existing = {c.get("type"): c for c in (conditions or [])}
    previous = existing.get(type_)
    transition = (
        previous["lastTransitionTime"]
        if previous and previous.get("status") == value and previous.get("lastTransitionTime")
        else (now or now_rfc3339())
    )
    existing[type_] = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
        "observedGeneration": generation,
    }
    order = [READY, SYNCED]
    return sorted(existing.values(), key=lambda c: (order.index(c["type"]) if c["type"] in order else 99, c["type"]))


def get_condition(conditions: list[dict[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    for condition in conditions or []:
        if condition.get("type") == type_:
            return condition
    return None


def is_true(conditions: list[dict[str, Any]] | None, type_: str) -> bool:
    condition = get_condition(conditions, type_)
    return bool(condition and condition.get("status") == "True")


def same_ignoring_time(a: list[dict[str, Any]] | None, b: list[dict[str, Any]] | None) -> bool:
    def strip(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        return [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in items or []]

    return strip(a) == strip(b)


RECONCILING = "Reconciling"
STALLED = "Stalled"


def with_kstatus(conditions: list[dict[str, Any]], generation: int | None, terminal: Collection[str],
                 *, failed: bool = False) -> list[dict[str, Any]]:
    """Reconciling and Stalled from Ready, as kstatus (Flux, ``kubectl wait``, cli-utils)
    reads them: a terminal problem is Stalled=True (kstatus: Failed, so ``flux ... wait``
    stops instead of waiting for its timeout); any other Ready=False is Reconciling=True
    (InProgress); Ready=True (or a pause) is both False (Current). ``failed``: a one-shot
    object (a Restore) ended badly, whatever its reason."""
    ready = get_condition(conditions, READY)
    if ready is None:
        return conditions
    status, reason, message = ready.get("status"), str(ready.get("reason") or ""), str(ready.get("message") or "")
    stalled = status == "False" and (failed or reason in terminal)
    reconciling = status != "True" and not stalled and reason != "Paused"
    conditions = set_condition(conditions, STALLED, stalled, reason,
                               message if stalled else "nothing stops it", generation)
    return set_condition(conditions, RECONCILING, reconciling, reason,
                         message if reconciling else "nothing left to do", generation)
