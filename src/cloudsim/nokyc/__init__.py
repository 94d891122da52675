"""NoKYC VPS (nokycvps.com) simulator: servers with an asynchronous lifecycle, plans,
regions, images, SSH keys, snapshots and restore, firewall groups, signed webhooks with
the seed's retry schedule, API tokens with scopes, billing balance and the audit log,
faithful to NoKYC's API document."""

from .engine import NoKycSettings
from .simulator import NoKycSimulator
from .webhooks import sign, verify

__all__ = ["NoKycSettings", "NoKycSimulator", "sign", "verify"]
