"""Provider clients: one module per provider behind one async style, sharing the HTTP,
retry and rate-limit code in :mod:`._http` and one exception hierarchy in :mod:`.errors`.
"""

from __future__ import annotations

from ._http import ProviderHTTP, ProviderObserver, RetryPolicy
from ._ratelimit import RateLimiter, parse_retry_after
from .errors import (
    Conflict,
    Forbidden,
    Invalid,
    InvalidState,
    NotFound,
    ProviderError,
    RateLimited,
    Transient,
    Unauthorized,
    Unsupported,
)
from .krova import (
    KROVA_DEFAULT_ENDPOINT,
    KROVA_DNS_TARGET,
    CreateCubeRequest,
    CubeState,
    DnsRecord,
    Domain,
    Image,
    KrovaClient,
    KrovaCube,
    Pricing,
    PricingRates,
    PricingTier,
    Region,
    Resources,
    Snapshot,
    TcpMapping,
    Webhook,
    WebhookDelivery,
    WebhookWithSecret,
    normalize_state,
)

SUPPORTED_PROVIDERS: tuple[str, ...] = ("krova", "nokyc", "cyberpanel", "voltagepark", "lunanode")
IMPLEMENTED_PROVIDERS: tuple[str, ...] = ("krova",)

__all__ = [
    "IMPLEMENTED_PROVIDERS",
    "KROVA_DEFAULT_ENDPOINT",
    "KROVA_DNS_TARGET",
    "SUPPORTED_PROVIDERS",
    "Conflict",
    "CreateCubeRequest",
    "CubeState",
    "DnsRecord",
    "Domain",
    "Forbidden",
    "Image",
    "Invalid",
    "InvalidState",
    "KrovaClient",
    "KrovaCube",
    "NotFound",
    "Pricing",
    "PricingRates",
    "PricingTier",
    "ProviderError",
    "ProviderHTTP",
    "ProviderObserver",
    "RateLimited",
    "RateLimiter",
    "Region",
    "Resources",
    "RetryPolicy",
    "Snapshot",
    "TcpMapping",
    "Transient",
    "Unauthorized",
    "Unsupported",
    "Webhook",
    "WebhookDelivery",
    "WebhookWithSecret",
    "normalize_state",
    "parse_retry_after",
]
