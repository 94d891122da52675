"""Prometheus metrics of the operator, served on /metrics (prometheus-client)."""
from __future__ import annotations

import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .providers import implemented_providers

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILES = Counter(
    "cube_operator_reconciles_total", "Reconcile passes by kind and result.",
    ["kind", "result"], registry=REGISTRY)
PROVIDER_REQUESTS = Counter(
    "cube_operator_provider_requests_total",
    "HTTP requests to provider APIs by provider, method, endpoint template and status code "
    "(status 'none' when no response came back).",
    ["provider", "method", "endpoint", "status"], registry=REGISTRY)
PROVIDER_REQUEST_SECONDS = Histogram(
    "cube_operator_provider_request_duration_seconds", "Provider API request latency.",
    ["provider"], registry=REGISTRY)
RATE_LIMIT_WAITS = Counter(
    "cube_operator_rate_limit_waits_total", "Times a provider call waited for the rate limit.",
    ["provider"], registry=REGISTRY)
RATE_LIMIT_WAIT_SECONDS = Counter(
    "cube_operator_rate_limit_wait_seconds_total", "Seconds spent waiting for provider rate limits.",
    ["provider"], registry=REGISTRY)
TIME_TO_FIRST_READY = Histogram(
    "cube_operator_time_to_first_ready_seconds",
    "Seconds from an object's creation to its first Ready=True.", ["kind"],
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800), registry=REGISTRY)
OBJECTS = Gauge(
    "cube_operator_objects", "Objects handled by the operator, by kind and Ready status.",
    ["kind", "ready"], registry=REGISTRY)
WEBHOOK_DELIVERIES = Counter(
    "cube_operator_webhook_deliveries_total", "Inbound provider webhook deliveries by outcome (HTTP status).",
    ["status"], registry=REGISTRY)

# Export zeroes from the start so dashboards and alerts see the series before the first wait.
for _provider in implemented_providers():
    RATE_LIMIT_WAITS.labels(_provider)
    RATE_LIMIT_WAIT_SECONDS.labels(_provider)

_ready_by_object: dict[tuple[str, str, str], str] = {}
_first_ready_seen: set[tuple[str, str, str]] = set()


class MetricsObserver:
    """The providers' observer hooks, feeding the counters above."""

    def on_request(self, provider: str, method: str, route: str, status: int | None, seconds: float) -> None:
        PROVIDER_REQUESTS.labels(provider, method, route, str(status) if status is not None else "none").inc()
        PROVIDER_REQUEST_SECONDS.labels(provider).observe(seconds)

    def on_rate_limit_wait(self, provider: str, seconds: float) -> None:
        RATE_LIMIT_WAITS.labels(provider).inc()
        RATE_LIMIT_WAIT_SECONDS.labels(provider).inc(seconds)


def observe_ready(kind: str, namespace: str, name: str, ready: str, created: str | None) -> None:
    key = (kind, namespace, name)
    previous = _ready_by_object.get(key)
    if previous != ready:
        if previous is not None:
            OBJECTS.labels(kind, previous).dec()
        OBJECTS.labels(kind, ready).inc()
        _ready_by_object[key] = ready
    if ready == "True" and key not in _first_ready_seen and created:
        _first_ready_seen.add(key)
        born = datetime.datetime.fromisoformat(created)
        TIME_TO_FIRST_READY.labels(kind).observe(
            max((datetime.datetime.now(datetime.UTC) - born).total_seconds(), 0.0))


def forget_object(kind: str, namespace: str, name: str) -> None:
    key = (kind, namespace, name)
    previous = _ready_by_object.pop(key, None)
    if previous is not None:
        OBJECTS.labels(kind, previous).dec()
    _first_ready_seen.discard(key)
