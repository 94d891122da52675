"""The provider seam: the neutral model and protocol (:mod:`.base`), one exception
hierarchy (:mod:`.errors`), the shared HTTP, retry and rate-limit layer, and the registry
of provider plugins (one package per provider: ``providers/<name>/``).

Controllers import from here and nowhere deeper: no provider is named in them.
"""

from __future__ import annotations

from . import cyberpanel as _cyberpanel  # noqa: F401  (registers the plugin)
from . import krova as _krova  # noqa: F401  (registers the plugin)
from . import lunanode as _lunanode  # noqa: F401  (registers the plugin)
from . import nokyc as _nokyc  # noqa: F401  (registers the plugin)
from . import voltagepark as _voltagepark  # noqa: F401  (registers the plugin)
from ._http import (
    BearerAuth,
    CallKind,
    HeaderAuth,
    ProviderHTTP,
    ProviderObserver,
    RateBudget,
    RetryPolicy,
    SecretAuth,
)
from ._ratelimit import RateLimiter, parse_retry_after
from .base import (
    Capability,
    CreateAttempt,
    DnsRecord,
    DomainBinding,
    Gpus,
    ObservedVM,
    PortForward,
    Provider,
    Provisioning,
    Resources,
    SnapshotInfo,
    SnapshotState,
    TcpExposure,
    VerifiedEvent,
    VMSpec,
    VMState,
    WebhookEndpoint,
    WebhookRejected,
    WebhookRejection,
    WebhookVerifier,
)
from .errors import (
    Conflict,
    DuplicateExternalResource,
    Forbidden,
    Invalid,
    InvalidState,
    NoCapacity,
    NotFound,
    ProviderError,
    RateLimited,
    SpecRejected,
    Transient,
    Unauthorized,
    Unsupported,
)
from .registry import (
    KNOWN_PROVIDERS,
    BudgetDefault,
    BudgetPool,
    CredentialKey,
    ProviderConnection,
    ProviderPlugin,
    account_key,
    endpoint_allowed,
    implemented_providers,
    plugin_for,
    register,
)

__all__ = [
    "KNOWN_PROVIDERS",
    "BearerAuth",
    "BudgetDefault",
    "BudgetPool",
    "CallKind",
    "Capability",
    "Conflict",
    "CreateAttempt",
    "CredentialKey",
    "DnsRecord",
    "DomainBinding",
    "DuplicateExternalResource",
    "Forbidden",
    "Gpus",
    "HeaderAuth",
    "Invalid",
    "InvalidState",
    "NoCapacity",
    "NotFound",
    "ObservedVM",
    "PortForward",
    "Provider",
    "ProviderConnection",
    "ProviderError",
    "ProviderHTTP",
    "ProviderObserver",
    "ProviderPlugin",
    "Provisioning",
    "RateBudget",
    "RateLimited",
    "RateLimiter",
    "Resources",
    "RetryPolicy",
    "SecretAuth",
    "SnapshotInfo",
    "SnapshotState",
    "SpecRejected",
    "TcpExposure",
    "Transient",
    "Unauthorized",
    "Unsupported",
    "VMSpec",
    "VMState",
    "VerifiedEvent",
    "WebhookEndpoint",
    "WebhookRejected",
    "WebhookRejection",
    "WebhookVerifier",
    "account_key",
    "endpoint_allowed",
    "implemented_providers",
    "parse_retry_after",
    "plugin_for",
    "register",
]
