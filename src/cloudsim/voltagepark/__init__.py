"""Voltage Park (voltagepark.com) "On Demand" simulator: locations and host nodes with
GPU capacity that runs out, instant-deploy presets, instant VMs (Bearer auth) with a
time-scaled lifecycle, power status (stopped / disassociated), tags, organization SSH
keys (``x-api-token``), cloud-init validation and hourly rates, answered FastAPI's way
(422 ``{"detail": [...]}``, ``{"detail": "..."}``)."""

from .catalog import LOCATIONS, PRESETS
from .engine import STATUSES, VoltageParkSettings
from .simulator import DEFAULT_ORGANIZATION_ID, VoltageParkSimulator

__all__ = ["DEFAULT_ORGANIZATION_ID", "LOCATIONS", "PRESETS", "STATUSES",
           "VoltageParkSettings", "VoltageParkSimulator"]
