"""LunaNode's answer objects. Ids and most numbers are strings on the wire; unknown fields
are ignored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["LUNANODE_DEFAULT_ENDPOINT", "Group", "Image", "Plan", "Rule", "SshKey", "VmInfo", "VmRow"]

LUNANODE_DEFAULT_ENDPOINT = "https://dynamic.lunanode.com/api"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: object) -> object:
        # Clients disagree on types: ids and counts arrive as strings or JSON numbers.
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class VmRow(_Model):
    """A ``vm/list`` row: no power state (``vm/info`` has it)."""

    vm_id: str
    name: str = ""
    hostname: str = ""
    region: str = ""
    primaryip: str | None = None
    privateip: str | None = None
    plan_id: str = ""


class VmInfo(_Model):
    hostname: str = ""
    ip: str | None = None
    privateip: str | None = None
    status_nohtml: str = ""
    image: str | None = None


class Plan(_Model):
    plan_id: str
    name: str = ""
    vcpu: str = "0"
    ram: str = "0"  # MB
    storage: str = "0"  # GB
    price: str | None = None  # USD per month
    #: Where the plan is sold, where the answer says (region ids).
    regions: list[str] = Field(default_factory=list)

    @property
    def cpus(self) -> int:
        return int(float(self.vcpu))

    @property
    def ram_mb(self) -> int:
        return int(float(self.ram))

    @property
    def disk_gb(self) -> int:
        return int(float(self.storage))

    @property
    def monthly(self) -> float | None:
        try:
            return float(self.price) if self.price is not None else None
        except ValueError:
            return None


class Image(_Model):
    image_id: str
    name: str = ""
    status: str = ""
    region: str | None = None


class SshKey(_Model):
    id: str
    name: str = ""
    label: str = ""
    value: str | None = None


class Group(_Model):
    group_id: str
    name: str = ""
    region: str | None = None


class Rule(_Model):
    rule_id: str
    group_id: str | None = None
    direction: str = ""
    type: str = ""
    protocol: str = ""
    remote_type: str = ""
    remote_value: str = ""
    port_min: str | None = None
    port_max: str | None = None
    label: str | None = Field(default=None)
