"""Krova (krova.cloud) simulator: Cubes, sleep/wake, TCP mappings, SSH port, snapshots,
restore, domains and signed webhooks, faithful to the Krova seed document."""

from .engine import KrovaSettings, sign, sign_v1
from .simulator import KrovaSimulator

__all__ = ["KrovaSettings", "KrovaSimulator", "sign", "sign_v1"]
