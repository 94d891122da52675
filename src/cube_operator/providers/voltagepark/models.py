"""Voltage Park's On Demand API objects (VMs, instant-deploy presets). Money is text on
the wire; unknown fields are ignored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["VOLTAGEPARK_DEFAULT_ENDPOINT", "Location", "PortForward", "Preset", "Pricing", "VirtualMachine",
           "VmResources"]

VOLTAGEPARK_DEFAULT_ENDPOINT = "https://cloud-api.voltagepark.com/api/v1"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class GpuCount(_Model):
    count: int = 0


class VmResources(_Model):
    gpus: dict[str, GpuCount] = Field(default_factory=dict)
    vcpu_count: int = 0
    ram_gb: float = 0
    storage_gb: float = 0


class Pricing(_Model):
    total_associated_per_hr: str | None = None
    total_disassociated_per_hr: str | None = None


class PortForward(_Model):
    internal_port: int
    external_port: int | None = None


class VirtualMachine(_Model):
    id: str
    name: str = ""
    status: str = ""
    resources: VmResources = Field(default_factory=VmResources)
    operating_system: str | None = None
    pricing: Pricing = Field(default_factory=Pricing)
    public_ip: str | None = None
    port_forwards: list[PortForward] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)


class Preset(_Model):
    id: str
    resources: VmResources = Field(default_factory=VmResources)
    operating_system: str = ""
    compute_rate_hourly: str | None = None
    storage_rate_hourly: str | None = None
    location_ids_with_availability: list[str] = Field(default_factory=list)

    @property
    def hourly(self) -> float:
        try:
            return float(self.compute_rate_hourly or 0) + float(self.storage_rate_hourly or 0)
        except ValueError:
            return 0.0


class Location(_Model):
    """A row of ``GET /locations/`` (its host nodes are not read)."""

    id: str
    city: str | None = None
    region: str | None = None
    country: str | None = None

    @property
    def place(self) -> str:
        return ", ".join(p for p in (self.city, self.region, self.country) if p)
