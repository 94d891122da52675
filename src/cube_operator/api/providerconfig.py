"""ProviderConfig: which provider, which credentials, and how hard to talk to it."""
from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, JsonValue

from ._common import DNS_SUBDOMAIN, ApiModel, StatusBase
from ._kind import AGE_COLUMN, READY_COLUMN, REASON_COLUMN, KindInfo

ProviderName = Literal["krova", "nokyc", "cyberpanel", "voltagepark", "lunanode"]


class KrovaSettings(ApiModel):
    space_id: str = Field(
        min_length=1, max_length=128,
        description="The Krova Space the API key belongs to (Space Settings in the dashboard).",
    )


class NoKycSettings(ApiModel):
    """NoKYC VPS settings (none yet: the bearer token is all it needs)."""


class CyberPanelSettings(ApiModel):
    """CyberPanel Cloud settings."""

    hostname_domain: str = Field(
        min_length=1, max_length=190, pattern=DNS_SUBDOMAIN,
        description="Domain the VPS hostnames are made under: a Cube web-1 becomes "
                    "web-1-<first 8 characters of its UID>.<hostnameDomain> (CyberPanel wants an FQDN; "
                    "the UID part is how the operator finds a VPS after a crash).",
    )


class VoltageParkSettings(ApiModel):
    """Voltage Park settings."""

    stop_mode: Literal["Stopped", "Disassociated"] = Field(
        default="Stopped",
        description="How powerState: Stopped stops a VM: Stopped keeps its resources (billed as running); "
                    "Disassociated releases them, so only storage is billed (starting again may find "
                    "no capacity).",
    )


class LunaNodeSettings(ApiModel):
    """LunaNode settings. Its VM list has no power state, so the operator asks each VM's
    details (vm/info) only while it changes, after an action, and in a slow sweep."""

    state_sweep_seconds: int = Field(
        default=300, ge=30, le=86400,
        description="How often each settled VM's power state is re-read to catch changes made "
                    "outside Kubernetes (one vm/info per VM per sweep, jittered; default 300: "
                    "12 calls per VM per hour).",
    )


#: spec.provider -> the settings block it reads. A block for another provider is refused.
SETTINGS_BLOCKS: dict[str, str] = {
    "krova": "krova", "nokyc": "nokyc", "cyberpanel": "cyberpanel",
    "voltagepark": "voltagepark", "lunanode": "lunanode",
}


class CredentialsSecretRef(ApiModel):
    name: str = Field(
        min_length=1, max_length=253, pattern=DNS_SUBDOMAIN,
        description="Name of a Secret in the same namespace holding the provider credentials.",
    )
    key: str | None = Field(
        default=None, min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$",
        description="Key holding the API key (default apiKey). Providers that need more than "
                    "one value read the others by their own names (LunaNode: apiId and apiKey).",
    )


class RateLimitSettings(ApiModel):
    requests: int = Field(
        ge=1, le=10000,
        description="Mutating requests allowed per period (Krova documents 10 per 60 s).",
    )
    period_seconds: float = Field(
        gt=0, le=3600, description="Length of the rate-limit window in seconds."
    )


_RULES: list[JsonValue] = [
    {"rule": "self.provider != 'krova' || has(self.krova)",
     "message": "spec.krova.spaceId is required for provider krova"},
    {"rule": "self.provider != 'cyberpanel' || has(self.cyberpanel)",
     "message": "spec.cyberpanel.hostnameDomain is required for provider cyberpanel"},
]
for _provider, _block in SETTINGS_BLOCKS.items():
    _RULES.append({"rule": f"!has(self.{_block}) || self.provider == '{_provider}'",
                   "message": f"spec.{_block} is for provider {_provider}; remove it or set provider: {_provider}"})


class ProviderConfigSpec(ApiModel):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _RULES})

    provider: ProviderName = Field(description="Which cloud provider this configuration talks to.")
    credentials_secret_ref: CredentialsSecretRef = Field(
        description="Secret (same namespace) holding the provider credentials: Krova, NoKYC, "
                    "CyberPanel, Voltage Park apiKey; LunaNode apiId and apiKey."
    )
    endpoint: str | None = Field(
        default=None, pattern=r"^https?://[^\s]+$",
        description="Base URL override, e.g. a simulator at http://127.0.0.1:PORT/api/v1.",
    )
    krova: KrovaSettings | None = Field(default=None, description="Krova settings (spaceId).")
    nokyc: NoKycSettings | None = Field(default=None, description="NoKYC VPS settings.")
    cyberpanel: CyberPanelSettings | None = Field(default=None, description="CyberPanel Cloud settings (hostnameDomain).")
    voltagepark: VoltageParkSettings | None = Field(default=None, description="Voltage Park settings.")
    lunanode: LunaNodeSettings | None = Field(default=None, description="LunaNode settings.")
    rate_limit: RateLimitSettings | None = Field(
        default=None,
        description="Client-side limit for mutating calls; defaults to the provider's documented limit.",
    )
    poll_interval_seconds: int | None = Field(
        default=None, ge=1, le=3600,
        description="How often the operator lists the provider's VMs (default: operator setting).",
    )


#: Most entries kept per catalogue list in status (the total is kept too).
CATALOGUE_MAX_ENTRIES = 100


class CatalogueItem(ApiModel):
    id: str = Field(description="The value to put in the Cube's spec field (spec.image, spec.region, spec.plan).")
    description: str | None = Field(
        default=None, description="What it is, for people, e.g. 2 vCPU, 4 GB RAM, 80 GB disk, $0.02/h.")


class CatalogueStatus(ApiModel):
    """What the provider offers, read from its listings when the credentials check passes and
    refreshed every few hours; a failed refresh keeps the last lists and says why in error."""

    fetched_at: str | None = Field(default=None, description="When the lists were read from the provider (RFC 3339).")
    observed_generation: int | None = Field(
        default=None, description="metadata.generation of the ProviderConfig the lists were read for.")
    images: list[CatalogueItem] | None = Field(
        default=None, max_length=CATALOGUE_MAX_ENTRIES,
        description="Values spec.image may take (the first 100; imagesTotal counts all). Absent: the "
                    "provider has no listing.")
    images_total: int | None = Field(default=None, ge=0, description="How many images the provider lists.")
    regions: list[CatalogueItem] | None = Field(
        default=None, max_length=CATALOGUE_MAX_ENTRIES,
        description="Values spec.region may take (the first 100; regionsTotal counts all).")
    regions_total: int | None = Field(default=None, ge=0, description="How many regions the provider lists.")
    plans: list[CatalogueItem] | None = Field(
        default=None, max_length=CATALOGUE_MAX_ENTRIES,
        description="Values spec.plan may take: plans, or Voltage Park's presets (the first 100; plansTotal "
                    "counts all). Absent: the provider sizes by spec.resources.")
    plans_total: int | None = Field(default=None, ge=0, description="How many plans the provider lists.")
    note: str | None = Field(default=None, description="How sizing and pricing work at this provider.")
    error: str | None = Field(
        default=None, description="Why the last refresh failed (the lists are those of fetchedAt); never "
                                  "makes the ProviderConfig not Ready.")


class ProviderConfigStatus(StatusBase):
    provider: str | None = Field(default=None, description="Provider the status refers to.")
    space_name: str | None = Field(default=None, description="Provider-side account/space name.")
    balance_usd: float | None = Field(
        default=None, description="Account balance in USD, where the provider and the credentials show it.")
    runway_until: str | None = Field(
        default=None, description="Date the balance runs out at the current burn, where the provider says.")
    key_name: str | None = Field(default=None, description="The API key's name, where the provider shows it.")
    scopes: list[str] | None = Field(
        default=None, description="The API key's permission scopes, where the provider shows them.")
    catalogue: CatalogueStatus | None = Field(
        default=None, description="What the provider offers: the images, regions and plans a Cube may name "
                                  "(kubectl describe providerconfig shows them).")


PROVIDER_CONFIG = KindInfo(
    kind="ProviderConfig",
    plural="providerconfigs",
    spec=ProviderConfigSpec,
    status=ProviderConfigStatus,
    short_names=("cubepc",),
    description="Credentials and settings the operator uses to talk to one cloud provider.",
    printer_columns=(
        {"name": "Provider", "type": "string", "jsonPath": ".spec.provider"},
        READY_COLUMN,
        REASON_COLUMN,
        AGE_COLUMN,
    ),
)
