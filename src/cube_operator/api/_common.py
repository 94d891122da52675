"""Types shared by every kind: references, conditions, the status base."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonDict


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are the API server's job."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class LocalObjectReference(ApiModel):
    name: str = Field(
        min_length=1, max_length=253, pattern=DNS_SUBDOMAIN,
        description="Name of the referenced object in the same namespace.",
    )


class NamespacedObjectReference(LocalObjectReference):
    namespace: str | None = Field(
        default=None,
        description=(
            "Namespace of the referenced object. Only the object's own namespace is allowed;"
            " the field exists so that a cross-namespace reference is reported, not ignored."
        ),
    )


class SecretKeySelector(ApiModel):
    name: str = Field(
        min_length=1, max_length=253, pattern=DNS_SUBDOMAIN,
        description="Name of a Secret in the same namespace.",
    )
    key: str = Field(min_length=1, description="Key inside the Secret's data.")


def immutable(what: str) -> JsonDict:
    """Schema extension making a field immutable once set (CEL transition rule)."""
    return {"x-kubernetes-validations": [{"rule": "self == oldSelf", "message": f"{what} is immutable"}]}


DeletionPolicy = Literal["Delete", "Orphan"]

DELETION_POLICY_DESCRIPTION = (
    "What happens at the provider when this object is deleted: Delete removes the provider-side"
    " resource and waits until the provider confirms; Orphan leaves it in place."
)


class Condition(ApiModel):
    type: str = Field(description="Type of condition, e.g. Ready or Synced.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="CamelCase reason for the last transition.")
    message: str = Field(default="", description="Human-readable details.")
    last_transition_time: str | None = Field(
        default=None, description="When the condition last changed status (RFC 3339)."
    )
    observed_generation: int | None = Field(
        default=None, description="metadata.generation the condition was computed for."
    )


class StatusBase(ApiModel):
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation last reconciled by the operator."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Current conditions (Ready, Synced) following Kubernetes API conventions.",
    )
    provider_failures: int | None = Field(
        default=None, description="Provider errors in a row for this object; retries back off exponentially "
                                  "with it (kept here so a restart does not reset the backoff).")
    next_retry_at: str | None = Field(
        default=None, description="When the operator tries the provider again after the last error; a change "
                                  "to the object (or its ProviderConfig or Secret) retries at once.")
