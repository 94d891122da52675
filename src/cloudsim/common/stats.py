"""Request accounting for ``GET /_sim/stats`` and ``GET /_sim/requests``.

Tests and benchmarks count provider API calls here instead of instrumenting the
client: counts are keyed by (method, route template, status).  A request whose
connection was cut by a fault is counted with status ``"drop"`` or ``"timeout"``.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

from .clock import utc_now_iso

UNMATCHED_ROUTE = "<unmatched>"


@dataclass(frozen=True)
class RequestRecord:
    at: str
    method: str
    path: str
    route: str
    status: int | str
    client: str
    replayed: bool
    fault: str | None


class RequestStats:
    def __init__(self, history: int = 2000) -> None:
        self._counts: Counter[tuple[str, str, int | str]] = Counter()
        self._recent: deque[RequestRecord] = deque(maxlen=history)
        self.counters: Counter[str] = Counter()  # free-form, e.g. webhook attempts

    def record(
        self,
        *,
        method: str,
        path: str,
        route: str,
        status: int | str,
        client: str,
        replayed: bool = False,
        fault: str | None = None,
    ) -> None:
        self._counts[(method, route, status)] += 1
        self._recent.append(
            RequestRecord(utc_now_iso(), method, path, route, status, client, replayed, fault)
        )

    def reset(self) -> None:
        self._counts.clear()
        self._recent.clear()
        self.counters.clear()

    def to_json(self) -> dict[str, Any]:
        rows = [
            {"method": m, "route": r, "status": s, "count": c}
            for (m, r, s), c in sorted(self._counts.items(), key=lambda kv: str(kv[0]))
        ]
        return {
            "total": sum(self._counts.values()),
            "requests": rows,
            "counters": dict(self.counters),
        }

    def recent(self, limit: int) -> list[dict[str, Any]]:
        items = list(self._recent)[-limit:] if limit > 0 else []
        return [asdict(r) for r in items]
