"""LunaNode (lunanode.com) simulator: the dynamic API's category/action calls signed with
HMAC-SHA512 (``api_id``, ``api_partialkey``, nonce), VMs with a time-scaled lifecycle,
snapshots as images, plans, regions, SSH keys, security groups and their rules and
startup scripts, answered LunaNode's way (always HTTP 200, ``success`` yes/no)."""

from .engine import LunaNodeSettings
from .simulator import LunaNodeSimulator
from .validation import sign, signed_form

__all__ = ["LunaNodeSettings", "LunaNodeSimulator", "sign", "signed_form"]
