"""The provider registry: one :class:`ProviderPlugin` per provider, declaring everything
the operator needs to know before it talks to it — the ProviderConfig settings block,
the credential keys of the Secret, the default rate-limit budgets, the capabilities,
how to build a client and how to verify its webhook deliveries.

Rate budgets are kept per provider *account* (:class:`BudgetPool`): two ProviderConfigs
using one API key against one endpoint share one budget, as the provider counts them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel

from ._http import CallKind, ProviderObserver, RateBudget
from ._ratelimit import RateLimiter
from .base import Capability, Provider, WebhookVerifier
from .errors import ProviderError

__all__ = [
    "KNOWN_PROVIDERS",
    "BudgetDefault",
    "BudgetPool",
    "CredentialKey",
    "ProviderConnection",
    "ProviderPlugin",
    "account_key",
    "endpoint_allowed",
    "implemented_providers",
    "plugin_for",
    "register",
]

#: Every provider the API accepts (``spec.provider``); not all are implemented yet.
KNOWN_PROVIDERS: tuple[str, ...] = ("krova", "nokyc", "cyberpanel", "voltagepark", "lunanode")


@dataclass(frozen=True)
class CredentialKey:
    """One key of the credentials Secret."""

    name: str
    description: str
    #: Offline format check: a message saying what is wrong, or None.
    check: Callable[[str], str | None] | None = None


@dataclass(frozen=True)
class BudgetDefault:
    """A documented provider limit: ``limit`` calls of ``kinds`` per ``period`` seconds,
    counted per provider account, or per client address (``per="endpoint"``: every
    account the operator uses shares its egress address, so they share the budget)."""

    name: str
    limit: int
    period: float
    kinds: frozenset[CallKind]
    per: Literal["account", "endpoint"] = "account"

    @property
    def rate(self) -> float:
        return self.limit / self.period


@dataclass(frozen=True)
class ProviderConnection:
    """What a ProviderConfig gives a plugin to build a client from."""

    endpoint: str | None
    credentials: Mapping[str, str] = field(repr=False)
    settings: BaseModel | None
    budgets: tuple[RateBudget, ...]
    observer: ProviderObserver | None = None


@dataclass(frozen=True)
class ProviderPlugin:
    name: str
    #: The ProviderConfig spec block holding this provider's settings (``krova``).
    settings_field: str
    capabilities: frozenset[Capability]
    credential_keys: tuple[CredentialKey, ...]
    budgets: tuple[BudgetDefault, ...]
    build: Callable[[ProviderConnection], Provider]
    #: None: the provider sends no webhooks.
    verify_webhook: WebhookVerifier | None = None
    settings_model: type[BaseModel] | None = None
    #: The settings block must be present (Krova: spaceId).
    settings_required: bool = False
    #: Offline checks of the settings block: messages naming the field.
    check_settings: Callable[[BaseModel | None], list[str]] | None = None
    #: What the provider's VM ids look like (an external-name annotation is checked with it).
    id_pattern: str = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"
    #: Account facts for the ProviderConfig's status after a good credentials check
    #: (camelCase keys of ProviderConfigStatus, e.g. balanceUsd), plus a note for Ready.
    account_status: Callable[[Provider], Awaitable[tuple[dict[str, Any], str]]] | None = None
    #: A provider-specific (reason, message) for a credentials-check error, or None.
    explain_error: Callable[[ProviderError, BaseModel | None], tuple[str, str] | None] | None = None
    #: The provider's documented API base URL (https); any other endpoint must be allowed
    #: by the operator's administrator (``--allow-endpoint``).
    default_endpoint: str = ""

    @property
    def primary_key(self) -> str:
        return self.credential_keys[0].name

    def valid_id(self, vm_id: str) -> bool:
        return re.fullmatch(self.id_pattern, vm_id) is not None


_PLUGINS: dict[str, ProviderPlugin] = {}


def register(plugin: ProviderPlugin) -> ProviderPlugin:
    if plugin.name not in KNOWN_PROVIDERS:
        raise ValueError(f"{plugin.name!r} is not in KNOWN_PROVIDERS; add it to the API first")
    _PLUGINS[plugin.name] = plugin
    return plugin


def plugin_for(name: str) -> ProviderPlugin | None:
    return _PLUGINS.get(name)


def implemented_providers() -> tuple[str, ...]:
    return tuple(n for n in KNOWN_PROVIDERS if n in _PLUGINS)


def endpoint_allowed(endpoint: str, default: str, allowed: tuple[str, ...]) -> bool:
    """Whether the operator may send a tenant's credentials to ``endpoint``: the provider's
    documented base URL, or one matching an ``allowed`` entry (same scheme and host; the
    entry's port, if it names one; its path as a prefix)."""
    if endpoint.rstrip("/") == default.rstrip("/"):
        return True
    try:
        url = urlsplit(endpoint)
        port = url.port
    except ValueError:
        return False
    for entry in allowed:
        try:
            rule = urlsplit(entry)
            rule_port = rule.port
        except ValueError:
            continue
        if (url.scheme, url.hostname) != (rule.scheme, rule.hostname) or not url.hostname:
            continue
        if rule_port is not None and rule_port != port:
            continue
        prefix = rule.path.rstrip("/")
        if url.path == prefix or url.path.startswith(prefix + "/") or not prefix:
            return True
    return False


def account_key(provider: str, endpoint: str | None, credentials: Mapping[str, str]) -> str:
    """A stable name for one provider account; secrets enter only as a hash."""
    blob = json.dumps([provider, (endpoint or "").rstrip("/"), sorted(credentials.items())])
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


#: Unsent calls one account may hold in a budget it shares with other accounts.
TURN = 2


class BudgetPool:
    """Rate budgets as the provider counts them — per account, or per client address —
    shared by every client they cover.

    ``scale`` (operator setting, for simulators whose clock runs faster) divides every
    period. A ProviderConfig's ``spec.rateLimit`` may only lower its own share: it adds a
    budget of its own on top of the shared ones and never changes them, so one tenant's
    setting cannot starve another or exceed what the provider allows. Where accounts share a
    budget (Krova counts per client address), each account holds at most ``TURN`` unsent
    calls in it at a time, so a burst of one tenant's creates does not queue ahead of
    everyone else's: accounts take turns.
    """

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self._limiters: dict[tuple[Any, ...], RateLimiter] = {}
        self._gates: dict[tuple[Any, ...], asyncio.Semaphore] = {}

    def _limiter(self, key: tuple[Any, ...], limit: int, period: float) -> RateLimiter:
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = RateLimiter(limit, period)
        return limiter

    def check_override(self, plugin: ProviderPlugin, override: tuple[int, float]) -> str | None:
        """Why ``override`` (requests, seconds) is refused, or None: it may not allow more
        than the provider's first documented budget."""
        if not plugin.budgets:
            return None
        first = plugin.budgets[0]
        requests, seconds = override
        if requests / seconds > first.limit / (first.period / self.scale) * (1 + 1e-9):
            return (f"spec.rateLimit: {requests} per {seconds:g}s is more than {plugin.name} allows "
                    f"({first.limit} per {first.period / self.scale:g}s); it can only lower the limit")
        return None

    def budgets(self, plugin: ProviderPlugin, account: str, override: tuple[int, float] | None = None,
                *, endpoint: str | None = None) -> tuple[RateBudget, ...]:
        """The plugin's budgets for ``account`` (at ``endpoint``), plus ``override`` as an
        extra budget of this account's own."""
        out = []
        for index, default in enumerate(plugin.budgets):
            period = default.period / self.scale
            shared = default.per == "endpoint"
            scope = f"endpoint:{(endpoint or '').rstrip('/')}" if shared else account
            key = (plugin.name, scope, default.name, default.limit, period)
            limiter = self._limiter(key, default.limit, period)
            # Accounts sharing a budget take turns: each holds at most TURN unsent calls.
            gate = self._gates.setdefault((*key, account), asyncio.Semaphore(TURN)) if shared else None
            out.append(RateBudget(limiter, default.kinds, reports_server_headers=index == 0, gate=gate))
        if override and plugin.budgets:
            requests, seconds = override
            limiter = self._limiter((plugin.name, account, "override", requests, seconds), requests, seconds)
            out.append(RateBudget(limiter, plugin.budgets[0].kinds, reports_server_headers=False))
        return tuple(out)

    def __len__(self) -> int:
        return len(self._limiters)
