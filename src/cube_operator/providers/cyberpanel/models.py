"""CyberPanel Cloud's VPS API objects. Money is text on the wire (``"0.0082"``); ids are
integers (templates: strings); unknown fields are ignored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CYBERPANEL_DEFAULT_ENDPOINT",
    "Deployment",
    "KeyInfo",
    "Location",
    "Plan",
    "Snapshot",
    "Template",
    "Vps",
    "VpsDetails",
]

CYBERPANEL_DEFAULT_ENDPOINT = "https://platform.cyberpersons.com/api/v1"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def money(value: str | float | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


class Vps(_Model):
    """A row of ``GET /vps``: no plan, location or price (those are in the details)."""

    id: int
    vmid: int | None = None
    name: str = ""
    status: str = ""
    ip_address: str | None = None
    is_suspended: bool = False
    created_at: str | None = None


class PlanRef(_Model):
    id: int
    name: str = ""
    cpu_cores: int | None = None
    ram_mb: int | None = None
    disk_gb: int | None = None
    price: str | None = None


class LocationRef(_Model):
    code: str
    name: str = ""


class VpsBilling(_Model):
    hourly_rate: str | None = None


class VpsDetails(Vps):
    """``GET /vps/{id}``."""

    plan: PlanRef | None = None
    location: LocationRef | None = None
    billing: VpsBilling | None = None
    suspension_reason: str | None = None


class Plan(_Model):
    id: int
    name: str = ""
    cpu_cores: int = 0
    ram_mb: int = 0
    disk_gb: int = 0
    bandwidth_gb: int | None = None
    monthly_price: str | None = None
    price_hourly: str | None = None

    @property
    def hourly(self) -> float:
        value = money(self.price_hourly)
        return value if value is not None else float("inf")


class Location(_Model):
    code: str
    name: str = ""
    country: str | None = None
    is_available: bool = True


class Template(_Model):
    id: str
    name: str = ""
    os: str | None = None
    description: str | None = None


class Task(_Model):
    name: str
    status: str = ""
    order: int | None = None


class Deployment(_Model):
    """``GET /vps/{id}/deployment``."""

    vps_id: int | None = None
    deployment_status: str = ""
    vps_status: str | None = None
    current_task: str | None = None
    progress_percent: int | None = None
    tasks: list[Task] = Field(default_factory=list)
    is_ready: bool = False
    error_code: str | None = None
    error_message: str | None = None

    @property
    def failed_task(self) -> str | None:
        failed = next((t.name for t in self.tasks if t.status == "failed"), None)
        return failed or self.current_task


class Snapshot(_Model):
    name: str
    description: str | None = None
    created_at: str | None = None
    vmstate: bool | None = None


class KeyInfo(_Model):
    """``GET /test``: which key this is and what it may do."""

    key_name: str | None = None
    key_prefix: str | None = None
    user_email: str | None = None
    scopes: list[str] = Field(default_factory=list)
