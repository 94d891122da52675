"""Krova (https://krova.cloud): client, domain types, neutral mapping, webhook verifier,
and its entry in the provider registry."""

from __future__ import annotations

from pydantic import BaseModel

from ...api.providerconfig import KrovaSettings
from .._http import CallKind
from ..errors import Forbidden, ProviderError
from ..registry import BudgetDefault, CredentialKey, ProviderConnection, ProviderPlugin, register
from .client import KrovaClient
from .models import (
    KROVA_DEFAULT_ENDPOINT,
    KROVA_DNS_TARGET,
    CreateCubeRequest,
    CubeState,
    DnsRecord,
    Domain,
    Image,
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
from .provider import KROVA_CAPABILITIES, KrovaProvider, vm_name
from .webhooks import sign_seed, sign_v1, verify

__all__ = [
    "KROVA_DEFAULT_ENDPOINT",
    "KROVA_DNS_TARGET",
    "PLUGIN",
    "CreateCubeRequest",
    "CubeState",
    "DnsRecord",
    "Domain",
    "Image",
    "KrovaClient",
    "KrovaCube",
    "KrovaProvider",
    "Pricing",
    "PricingRates",
    "PricingTier",
    "Region",
    "Resources",
    "Snapshot",
    "TcpMapping",
    "Webhook",
    "WebhookDelivery",
    "WebhookWithSecret",
    "normalize_state",
    "sign_seed",
    "sign_v1",
    "verify",
    "vm_name",
]


def _check_api_key(value: str) -> str | None:
    if any(c.isspace() for c in value):
        return "contains whitespace"
    return None


def _explain(error: ProviderError, settings: BaseModel | None) -> tuple[str, str] | None:
    # Krova answers 403 when the key belongs to another space than spec.krova.spaceId.
    if isinstance(error, Forbidden) and isinstance(settings, KrovaSettings):
        return ("WrongSpace", (f"krova refused access to space {settings.space_id}: the API key "
                              "belongs to another space"))
    return None


def build(connection: ProviderConnection) -> KrovaProvider:
    settings = connection.settings
    assert isinstance(settings, KrovaSettings)
    client = KrovaClient(
        api_key=connection.credentials["apiKey"],
        space_id=settings.space_id,
        endpoint=connection.endpoint or KROVA_DEFAULT_ENDPOINT,
        budgets=connection.budgets,
        observer=connection.observer,
    )
    return KrovaProvider(client)


PLUGIN = register(ProviderPlugin(
    default_endpoint=KROVA_DEFAULT_ENDPOINT,
    name="krova",
    settings_field="krova",
    settings_model=KrovaSettings,
    settings_required=True,
    capabilities=KROVA_CAPABILITIES,
    credential_keys=(CredentialKey("apiKey", "Krova API key (kro_...)", _check_api_key),),
    # Seed: "10 mutating requests per 60 seconds per client IP"; reads are not limited.
    # Per IP: every Krova account this operator uses shares its egress address, so one budget.
    budgets=(BudgetDefault("mutating", 10, 60.0,
                           frozenset({CallKind.MUTATE, CallKind.PROVISION}), per="endpoint"),),
    build=build,
    id_pattern=r"^cube_[A-Za-z0-9]{1,64}$",
    verify_webhook=verify,
    explain_error=_explain,
))
