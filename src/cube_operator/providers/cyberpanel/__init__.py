"""CyberPanel Cloud (https://platform.cyberpersons.com): client, domain types, neutral
mapping, deployment-callback verifier, and its entry in the provider registry."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from ...api.providerconfig import CyberPanelSettings
from .._http import CallKind
from ..base import Provider
from ..errors import Forbidden, ProviderError, Unauthorized
from ..registry import BudgetDefault, CredentialKey, ProviderConnection, ProviderPlugin, register
from .client import CyberPanelClient, error_envelope
from .models import CYBERPANEL_DEFAULT_ENDPOINT, money
from .provider import (
    CYBERPANEL_CAPABILITIES,
    CyberPanelProvider,
    check_password,
    choose_plan,
    hostname,
    snapshot_name,
)
from .webhooks import sign, verify

__all__ = [
    "CYBERPANEL_DEFAULT_ENDPOINT",
    "PLUGIN",
    "CyberPanelClient",
    "CyberPanelProvider",
    "check_password",
    "choose_plan",
    "error_envelope",
    "hostname",
    "sign",
    "snapshot_name",
    "verify",
]

_KEY = re.compile(r"^cyp_live_[0-9a-fA-F]{64}$")


def _check_key(value: str) -> str | None:
    if not _KEY.match(value):
        return "is not a CyberPanel API key (cyp_live_ followed by 64 hex characters)"
    return None


def _explain(error: ProviderError, settings: BaseModel | None) -> tuple[str, str] | None:
    if isinstance(error, Unauthorized) and error.code in ("EXPIRED_API_KEY", "INACTIVE_API_KEY"):
        what = "expired" if error.code == "EXPIRED_API_KEY" else "deactivated"
        return "InvalidCredentials", f"the CyberPanel API key is {what} ({error.code}); put a valid key in the Secret"
    if isinstance(error, Forbidden) and error.code == "IP_NOT_ALLOWED":
        return "Forbidden", ("cyberpanel refused the operator's address (IP_NOT_ALLOWED): add the operator's "
                             "egress IP to the key's IP whitelist")
    return None


async def _account(provider: Provider) -> tuple[dict[str, Any], str]:
    """Key name and scopes as the credentials check read them (GET /test), and the balance
    where the key may read the account."""
    assert isinstance(provider, CyberPanelProvider)
    info = provider.key_info
    if info is None:
        return {}, ""
    facts: dict[str, Any] = {"keyName": info.key_name, "scopes": sorted(info.scopes)}
    note = f"key {info.key_name!r} with scopes {', '.join(sorted(info.scopes))}"
    if "all" in info.scopes or "account:read" in info.scopes:
        balance = money((await provider.client.account()).get("balance"))
        if balance is not None:
            facts["balanceUsd"] = balance
            note += f"; balance {balance:.2f} USD"
    return facts, note


def build(connection: ProviderConnection) -> CyberPanelProvider:
    settings = connection.settings
    domain = settings.hostname_domain if isinstance(settings, CyberPanelSettings) else "cubes.invalid"
    client = CyberPanelClient(api_key=connection.credentials["apiKey"],
                              endpoint=connection.endpoint or CYBERPANEL_DEFAULT_ENDPOINT,
                              budgets=connection.budgets, observer=connection.observer)
    return CyberPanelProvider(client, hostname_domain=domain)


PLUGIN = register(ProviderPlugin(
    default_endpoint=CYBERPANEL_DEFAULT_ENDPOINT,
    name="cyberpanel",
    settings_field="cyberpanel",
    settings_model=CyberPanelSettings,
    settings_required=True,
    capabilities=CYBERPANEL_CAPABILITIES,
    credential_keys=(CredentialKey("apiKey", "CyberPanel API key (cyp_live_...), scopes vps:read and vps:write",
                                   _check_key),),
    # Seed: 60 requests per minute and 1000 per hour per key, every request counted.
    budgets=(
        BudgetDefault("per-minute", 60, 60.0, frozenset(CallKind)),
        BudgetDefault("per-hour", 1000, 3600.0, frozenset(CallKind)),
    ),
    build=build,
    id_pattern=r"^[1-9][0-9]{0,18}$",
    verify_webhook=verify,
    explain_error=_explain,
    account_status=_account,
))
