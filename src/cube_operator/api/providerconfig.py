"""ProviderConfig: which provider, which credentials, and how hard to talk to it."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ._common import ApiModel, SecretKeySelector, StatusBase
from ._kind import AGE_COLUMN, READY_COLUMN, REASON_COLUMN, KindInfo

ProviderName = Literal["krova", "nokyc", "cyberpanel", "voltagepark", "lunanode"]


class KrovaSettings(ApiModel):
    space_id: str = Field(
        min_length=1, max_length=128,
        description="The Krova Space the API key belongs to (Space Settings in the dashboard).",
    )


class RateLimitSettings(ApiModel):
    requests: int = Field(
        ge=1, le=10000,
        description="Mutating requests allowed per period (Krova documents 10 per 60 s).",
    )
    period_seconds: float = Field(
        gt=0, le=3600, description="Length of the rate-limit window in seconds."
    )


class ProviderConfigSpec(ApiModel):
    provider: ProviderName = Field(description="Which cloud provider this configuration talks to.")
    credentials_secret_ref: SecretKeySelector = Field(
        description="Secret (same namespace) and key holding the provider API key."
    )
    endpoint: str | None = Field(
        default=None, pattern=r"^https?://[^\s]+$",
        description="Base URL override, e.g. a simulator at http://127.0.0.1:PORT/api/v1.",
    )
    krova: KrovaSettings | None = Field(default=None, description="Krova-specific settings.")
    rate_limit: RateLimitSettings | None = Field(
        default=None,
        description="Client-side limit for mutating calls; defaults to the provider's documented limit.",
    )
    poll_interval_seconds: int | None = Field(
        default=None, ge=1, le=3600,
        description="How often the operator lists the provider's VMs (default: operator setting).",
    )


class ProviderConfigStatus(StatusBase):
    provider: str | None = Field(default=None, description="Provider the status refers to.")
    space_name: str | None = Field(default=None, description="Provider-side account/space name.")


PROVIDER_CONFIG = KindInfo(
    kind="ProviderConfig",
    plural="providerconfigs",
    spec=ProviderConfigSpec,
    status=ProviderConfigStatus,
    short_names=("pc", "cubepc"),
    description="Credentials and settings the operator uses to talk to one cloud provider.",
    printer_columns=(
        {"name": "Provider", "type": "string", "jsonPath": ".spec.provider"},
        READY_COLUMN,
        REASON_COLUMN,
        AGE_COLUMN,
    ),
)
