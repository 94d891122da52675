"""Opaque resource ids in the providers' ``prefix_random`` style."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits


def new_id(prefix: str, length: int = 16) -> str:
    """``prefix_`` followed by ``length`` random lowercase alphanumerics."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))
