"""Webhook: a provider event subscription, delivered to a URL or to the operator itself."""
from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from ._common import ApiModel, NamespacedObjectReference, StatusBase
from ._kind import AGE_COLUMN, READY_COLUMN, REASON_COLUMN, KindInfo

WebhookEvent = Literal["cube.running", "cube.sleeping", "cube.stopped", "cube.error", "cube.deleted"]


class WebhookSecretRef(ApiModel):
    name: str = Field(min_length=1, max_length=253, description="Secret (same namespace) the operator writes.")
    key: str = Field(default="secret", min_length=1, description="Key the signing secret is stored under.")


class WebhookSpec(ApiModel):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        {"rule": "has(self.url) != has(self.receiver)", "message": "set exactly one of url and receiver"},
    ]})

    provider_config_ref: NamespacedObjectReference = Field(
        description="The ProviderConfig (same namespace) whose account sends the events."
    )
    url: str | None = Field(
        default=None, pattern=r"^https?://[^\s]+$",
        description="Where the provider delivers events. Set either url or receiver.",
    )
    receiver: Literal["operator"] | None = Field(
        default=None,
        description="`operator`: deliver to the operator's own receiver, which verifies each delivery "
                    "and refreshes the affected Cube at once.",
    )
    events: list[WebhookEvent] = Field(
        min_length=1,
        description="Events to subscribe to: cube.running, cube.sleeping, cube.stopped, cube.error, cube.deleted.",
    )
    secret_ref: WebhookSecretRef = Field(
        description="Secret the operator writes the signing secret into (the provider returns it only once)."
    )


class WebhookStatus(StatusBase):
    id: str | None = Field(default=None, description="Provider-side webhook endpoint id.")
    url: str | None = Field(default=None, description="URL the endpoint delivers to.")
    events: list[str] | None = Field(default=None, description="Events of the endpoint in place.")
    enabled: bool | None = Field(default=None, description="Whether the provider delivers to it.")


WEBHOOK = KindInfo(
    kind="Webhook",
    plural="webhooks",
    spec=WebhookSpec,
    status=WebhookStatus,
    short_names=("cubehook",),
    description="Subscribes to provider events; with receiver: operator the operator reacts to them at once.",
    printer_columns=(
        {"name": "URL", "type": "string", "jsonPath": ".status.url"},
        READY_COLUMN,
        REASON_COLUMN,
        AGE_COLUMN,
    ),
)
