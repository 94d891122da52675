"""CyberPanel Cloud (platform.cyberpersons.com) VPS API simulator: ``cyp_live_`` Bearer
keys with scopes, IP whitelists, expiry and two sliding rate-limit windows; plans,
locations and templates; VPS create with a ten-task time-scaled deployment (and a
failure knob), power actions, delete, suspension, snapshots, hourly billing and signed
deployment webhooks, all in the ``{"success", "data" | "error_code", ...}`` envelope."""

from .catalog import LOCATIONS, PLANS, SCOPES, TASKS, TEMPLATES
from .engine import KEY_PATTERN, CyberPanelSettings
from .simulator import CyberPanelSimulator
from .webhooks import sign as sign_webhook
from .webhooks import verify as verify_webhook

__all__ = ["KEY_PATTERN", "LOCATIONS", "PLANS", "SCOPES", "TASKS", "TEMPLATES",
           "CyberPanelSettings", "CyberPanelSimulator", "sign_webhook", "verify_webhook"]
