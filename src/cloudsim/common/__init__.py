"""Pieces every provider simulator shares: simulated time, the error envelope, fault
injection, rate limiting, idempotency, request accounting, webhook delivery and the
aiohttp server with its admin API."""

from .clock import SimClock, utc_now_iso
from .errors import ApiError, error_response, json_response, read_json, read_json_object
from .faults import FaultInjector, FaultRule
from .idempotency import IdempotencyStore
from .ratelimit import RateDecision, SlidingWindowLimiter
from .server import SimServer
from .stats import RequestStats
from .webhooks import Delivery, WebhookDispatcher

__all__ = [
    "ApiError",
    "Delivery",
    "FaultInjector",
    "FaultRule",
    "IdempotencyStore",
    "RateDecision",
    "RequestStats",
    "SimClock",
    "SimServer",
    "SlidingWindowLimiter",
    "WebhookDispatcher",
    "error_response",
    "json_response",
    "read_json",
    "read_json_object",
    "utc_now_iso",
]
