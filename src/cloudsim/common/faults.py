"""Fault injection rules, set through ``POST /_sim/faults``.

A rule selects requests by ``method`` (default any), ``path`` (an ``fnmatch`` glob on
the request path, e.g. ``/api/v1/spaces/*/cubes``) and/or ``route`` (a route name such
as ``create_cube`` or a route template such as ``/spaces/{spaceId}/cubes``, with or
without the API prefix).  A rule with neither ``path`` nor ``route`` matches every API
request.  It fires with ``probability`` (default 1) until ``count`` firings are used up
(default unlimited); the first matching rule that fires wins.

Kinds:

* ``status``: answer ``status`` (default 500; 429 gets ``Retry-After: 1``) with the
  error envelope, or with ``body``/``content_type`` verbatim (e.g. an HTML 502 page).
* ``timeout``: hang for ``seconds`` real seconds (default 30, longer than any sane
  client timeout; cut short when the simulator stops), then close the connection
  without answering.
* ``drop``: close the connection at once without answering.
* ``delay``: wait ``seconds`` real seconds, then handle the request normally.
* ``hold``: handle the request normally (the provider commits it), then wait ``seconds``
  real seconds before answering — a slow response, the window in which a client can
  crash after the provider acted but before it learned the result.

Fault durations are real seconds, not simulated ones: they model the network and are
compared against client timeouts, which are real.
"""

from __future__ import annotations

import fnmatch
import itertools
import random
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any

FAULT_KINDS = ("status", "timeout", "drop", "delay", "hold")


@dataclass
class FaultRule:
    id: str
    kind: str
    method: str | None = None
    path: str | None = None
    route: str | None = None
    status: int = 500
    body: str | None = None
    content_type: str = "application/json"
    seconds: float = 30.0
    probability: float = 1.0
    count: int | None = None  # firings left; None = unlimited
    fired: int = 0

    def matches(self, method: str, path: str, route_names: Collection[str]) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.path is not None and not fnmatch.fnmatchcase(path, self.path):
            return False
        return self.route is None or self.route in route_names

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _parse_rule(rule_id: str, spec: Mapping[str, Any]) -> FaultRule:
    """A rule from its JSON form; ``ValueError`` with a readable message when invalid."""
    known = {
        "kind", "method", "path", "route", "status", "body", "content_type",
        "seconds", "probability", "count",
    }
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
    kind = spec.get("kind", "status")
    if kind not in FAULT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
    rule = FaultRule(id=rule_id, kind=kind)
    method = spec.get("method")
    if method is not None:
        if not isinstance(method, str) or not method:
            raise ValueError("method must be a non-empty string")
        rule.method = None if method == "*" else method.upper()
    for field in ("path", "route", "body"):
        value = spec.get(field)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{field} must be a string")
        setattr(rule, field, value)
    if "content_type" in spec:
        if not isinstance(spec["content_type"], str):
            raise ValueError("content_type must be a string")
        rule.content_type = spec["content_type"]
    status = spec.get("status", 500)
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError("status must be an integer 400..599")
    rule.status = status
    seconds = spec.get("seconds", 30.0 if kind == "timeout" else 1.0)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ValueError("seconds must be a non-negative number")
    rule.seconds = float(seconds)
    probability = spec.get("probability", 1.0)
    if (
        isinstance(probability, bool)
        or not isinstance(probability, int | float)
        or not 0 <= probability <= 1
    ):
        raise ValueError("probability must be a number in 0..1")
    rule.probability = float(probability)
    count = spec.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError("count must be a positive integer")
    rule.count = count
    return rule


class FaultInjector:
    def __init__(self, seed: int | None = None) -> None:
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._random = random.Random(seed)

    def add(self, spec: Mapping[str, Any]) -> FaultRule:
        rule = _parse_rule(f"flt_{next(self._ids)}", spec)
        self._rules.append(rule)
        return rule

    def remove(self, rule_id: str) -> bool:
        before = len(self._rules)
        self._rules = [r for r in self._rules if r.id != rule_id]
        return len(self._rules) != before

    def clear(self) -> None:
        self._rules.clear()

    def rules(self) -> list[FaultRule]:
        return list(self._rules)

    def pick(self, method: str, path: str, route_names: Collection[str]) -> FaultRule | None:
        """The rule that fires for this request, if any; consumes one of its firings."""
        for rule in self._rules:
            if rule.count == 0 or not rule.matches(method, path, route_names):
                continue
            if rule.probability < 1 and self._random.random() >= rule.probability:
                continue
            rule.fired += 1
            if rule.count is not None:
                rule.count -= 1
            return rule
        return None
