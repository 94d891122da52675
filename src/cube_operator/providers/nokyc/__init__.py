"""NoKYC VPS (https://nokycvps.com): client, domain types, neutral mapping, webhook
verifier, and its entry in the provider registry."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ...api.providerconfig import NoKycSettings
from .._http import CallKind
from ..base import Provider
from ..errors import Forbidden, ProviderError
from ..registry import BudgetDefault, CredentialKey, ProviderConnection, ProviderPlugin, register
from .client import NoKycClient, error_envelope
from .models import NOKYC_DEFAULT_ENDPOINT
from .provider import NOKYC_CAPABILITIES, NoKycProvider, choose_plan, fingerprint, vm_name
from .webhooks import sign, verify

__all__ = [
    "NOKYC_DEFAULT_ENDPOINT",
    "PLUGIN",
    "NoKycClient",
    "NoKycProvider",
    "choose_plan",
    "error_envelope",
    "fingerprint",
    "sign",
    "verify",
    "vm_name",
]


def _check_token(value: str) -> str | None:
    if not value.startswith("nkv_live_"):
        return "is not a NoKYC API token (they start with nkv_live_)"
    if any(c.isspace() for c in value):
        return "contains whitespace"
    return None


def _explain(error: ProviderError, settings: BaseModel | None) -> tuple[str, str] | None:
    if isinstance(error, Forbidden):
        return ("Forbidden", (f"nokyc refused the token ({error.code or 'forbidden'}): {error.message}; "
                             "the operator needs a token with write scope (billing scope to show the balance)"))
    return None


async def _account(provider: Provider) -> tuple[dict[str, Any], str]:
    assert isinstance(provider, NoKycProvider)
    try:
        balance = await provider.client.balance()
    except Forbidden:
        return {}, "the token has no billing scope, so the balance is not shown"
    facts: dict[str, Any] = {"balanceUsd": balance.usd, "runwayUntil": balance.runway_until}
    runway = f", runway until {balance.runway_until}" if balance.runway_until else ""
    return facts, f"balance {balance.usd:.2f} USD{runway}"


def build(connection: ProviderConnection) -> NoKycProvider:
    client = NoKycClient(token=connection.credentials["token"],
                         endpoint=connection.endpoint or NOKYC_DEFAULT_ENDPOINT,
                         budgets=connection.budgets, observer=connection.observer)
    return NoKycProvider(client)


PLUGIN = register(ProviderPlugin(
    default_endpoint=NOKYC_DEFAULT_ENDPOINT,
    name="nokyc",
    settings_field="nokyc",
    settings_model=NoKycSettings,
    capabilities=NOKYC_CAPABILITIES,
    credential_keys=(CredentialKey("token", "NoKYC API token (nkv_live_...), write scope", _check_token),),
    # Seed: 60 requests/min per token with a 10-request burst refilling 1/s — a window of
    # 10 per 10 s never overdraws that bucket; provisioning (POST /servers) has its own
    # 200/min bucket.
    budgets=(
        BudgetDefault("requests", 10, 10.0, frozenset({CallKind.READ, CallKind.MUTATE})),
        BudgetDefault("provisioning", 200, 60.0, frozenset({CallKind.PROVISION})),
    ),
    build=build,
    id_pattern=r"^srv_[A-Za-z0-9]{1,64}$",
    verify_webhook=verify,
    explain_error=_explain,
    account_status=_account,
))
