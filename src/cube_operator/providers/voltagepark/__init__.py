"""Voltage Park On Demand: client, domain types, neutral mapping, registry entry."""

from __future__ import annotations

from ...api.providerconfig import VoltageParkSettings
from .._http import CallKind
from ..registry import BudgetDefault, CredentialKey, ProviderConnection, ProviderPlugin, register
from .client import VoltageParkClient, fastapi_error
from .models import VOLTAGEPARK_DEFAULT_ENDPOINT
from .provider import VOLTAGEPARK_CAPABILITIES, VoltageParkProvider, choose_preset, cloud_init_of

__all__ = [
    "PLUGIN",
    "VOLTAGEPARK_DEFAULT_ENDPOINT",
    "VoltageParkClient",
    "VoltageParkProvider",
    "choose_preset",
    "cloud_init_of",
    "fastapi_error",
]


def build(connection: ProviderConnection) -> VoltageParkProvider:
    settings = connection.settings
    stop_mode = settings.stop_mode if isinstance(settings, VoltageParkSettings) else "Stopped"
    client = VoltageParkClient(api_key=connection.credentials["apiKey"],
                               endpoint=connection.endpoint or VOLTAGEPARK_DEFAULT_ENDPOINT,
                               budgets=connection.budgets, observer=connection.observer)
    return VoltageParkProvider(client, stop_mode=stop_mode)


PLUGIN = register(ProviderPlugin(
    default_endpoint=VOLTAGEPARK_DEFAULT_ENDPOINT,
    name="voltagepark",
    settings_field="voltagepark",
    settings_model=VoltageParkSettings,
    capabilities=VOLTAGEPARK_CAPABILITIES,
    credential_keys=(CredentialKey("apiKey", "Voltage Park API key"),),
    # No limit is documented: stay modest (5 calls per second overall).
    budgets=(BudgetDefault("requests", 20, 4.0, frozenset(CallKind)),),
    build=build,
    id_pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
))
