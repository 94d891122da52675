"""LunaNode (https://www.lunanode.com): signing auth, client, domain types, neutral
mapping, and its entry in the provider registry."""

from __future__ import annotations

from collections.abc import Callable

from ...api.providerconfig import LunaNodeSettings
from .._http import CallKind
from ..registry import BudgetDefault, CredentialKey, ProviderConnection, ProviderPlugin, register
from .auth import LunaNodeAuth, signature
from .client import LunaNodeClient, answer_error
from .models import LUNANODE_DEFAULT_ENDPOINT
from .provider import LUNANODE_CAPABILITIES, LunaNodeProvider, choose_plan, vm_name

__all__ = [
    "LUNANODE_DEFAULT_ENDPOINT",
    "PLUGIN",
    "LunaNodeAuth",
    "LunaNodeClient",
    "LunaNodeProvider",
    "answer_error",
    "choose_plan",
    "signature",
    "vm_name",
]


def _length(expected: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if len(value) != expected:
            return f"must be {expected} characters (it has {len(value)})"
        if not value.isalnum():
            return "must be letters and digits only"
        return None
    return check


def build(connection: ProviderConnection) -> LunaNodeProvider:
    settings = connection.settings
    sweep = settings.state_sweep_seconds if isinstance(settings, LunaNodeSettings) else 300
    client = LunaNodeClient(api_id=connection.credentials["apiId"], api_key=connection.credentials["apiKey"],
                            endpoint=connection.endpoint or LUNANODE_DEFAULT_ENDPOINT,
                            budgets=connection.budgets, observer=connection.observer)
    return LunaNodeProvider(client, sweep_seconds=float(sweep))


PLUGIN = register(ProviderPlugin(
    default_endpoint=LUNANODE_DEFAULT_ENDPOINT,
    name="lunanode",
    settings_field="lunanode",
    settings_model=LunaNodeSettings,
    capabilities=LUNANODE_CAPABILITIES,
    credential_keys=(
        CredentialKey("apiKey", "LunaNode API key (128 characters)", _length(128)),
        CredentialKey("apiId", "LunaNode API ID (16 characters)", _length(16)),
    ),
    # LunaNode documents no limit: stay modest (5 calls per second overall).
    budgets=(BudgetDefault("requests", 20, 4.0, frozenset(CallKind)),),
    build=build,
    id_pattern=r"^[0-9]{1,20}$",
))
