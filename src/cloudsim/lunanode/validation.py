"""The seed's request and signing scheme, and parameter checks.

A request is ``POST /api/{category}/{action}/`` with the form fields ``req`` (the raw
JSON request message), ``signature`` and ``nonce`` (a ``handler`` field, sent by some
clients, is ignored).  Checks, in this order, each failing with its own
``{"success": "no", "error": ...}``:

1. ``req``, ``signature``, ``nonce`` present and non-empty
   (``required parameter req not set`` ...).
2. ``req`` parses as a JSON object (``invalid request message: req must be a JSON
   object``).
3. ``api_id`` and ``api_partialkey`` present in it (``required parameter api_id not
   set``), ``api_id`` is the simulator's (``invalid api_id``) and ``api_partialkey`` is
   the first 64 characters of its key (``invalid api_partialkey``).
4. ``signature`` equals hex(HMAC-SHA512(key = the full 128-character API key,
   ``"{category}/{action}/|{req}|{nonce}"``)), compared in constant time
   (``invalid signature``).  The handler path is the one in the URL, always with its
   trailing slash.
5. ``nonce`` is an integer (``invalid nonce``) within ``nonce_tolerance`` seconds of
   the wall clock either way (``invalid nonce: too old`` / ``invalid nonce: too far in
   the future``).  Repeating a nonce is fine (LunaNode's Go and Python clients send
   several calls within one second with the same one); with the
   ``nonce_must_increase`` knob a nonce below the highest accepted one is refused
   (``invalid nonce: lower than a previous request's``), equal ones still pass.

Parameter values may be JSON strings or numbers (the Go and Ruby clients send
strings, the Python one ints): numbers are read as their decimal string, ``null`` and
``""`` as not set; anything else is ``invalid value for parameter X``.  Unknown
parameters are ignored, as LunaNode does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import re
import time
from collections.abc import Mapping
from typing import Any

from .errors import LunaNodeError, required

API_ID_LENGTH = 16
API_KEY_LENGTH = 128
PARTIAL_KEY_LENGTH = 64
HOSTNAME_MAX = 255
LABEL_MAX = 255
SSH_KEY_TYPES = (
    "ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
)
_CREDENTIAL = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces


def check_credentials(api_id: str, api_key: str) -> None:
    """``ValueError`` unless ``api_id`` is 16 and ``api_key`` 128 printable characters
    (the lengths LunaNode's clients check before sending anything)."""
    if not isinstance(api_id, str) or len(api_id) != API_ID_LENGTH or not _CREDENTIAL.match(
        api_id
    ):
        raise ValueError(f"api_id must be {API_ID_LENGTH} printable characters without "
                         f"spaces (got {len(api_id) if isinstance(api_id, str) else 0})")
    if not isinstance(api_key, str) or len(api_key) != API_KEY_LENGTH or not _CREDENTIAL.match(
        api_key
    ):
        raise ValueError(f"api_key must be {API_KEY_LENGTH} printable characters without "
                         f"spaces (got {len(api_key) if isinstance(api_key, str) else 0})")


def handler_path(category: str, action: str) -> str:
    return f"{category}/{action}/"


def sign(api_key: str, handler: str, req: str, nonce: str) -> str:
    """hex(HMAC-SHA512(api_key, ``handler|req|nonce``)), as the seed defines it."""
    message = f"{handler}|{req}|{nonce}".encode()
    return hmac.new(api_key.encode(), message, hashlib.sha512).hexdigest()


def signed_form(
    api_id: str, api_key: str, category: str, action: str,
    params: Mapping[str, Any] | None = None, *, nonce: int | str | None = None,
) -> dict[str, str]:
    """The form a LunaNode client posts for ``category/action`` (tests and tools)."""
    request = {**dict(params or {}), "api_id": api_id, "api_partialkey": api_key[:64]}
    raw = json.dumps(request)
    nonce_text = str(int(time.time()) if nonce is None else nonce)
    handler = handler_path(category, action)
    return {"req": raw, "signature": sign(api_key, handler, raw, nonce_text),
            "nonce": nonce_text, "handler": handler}


class NonceTracker:
    """The highest nonce accepted so far (only consulted with ``nonce_must_increase``)."""

    def __init__(self) -> None:
        self.highest: int | None = None

    def reset(self) -> None:
        self.highest = None


def authenticate(
    form: Mapping[str, str], handler: str, *, api_id: str, api_key: str,
    tolerance: float, must_increase: bool, nonces: NonceTracker, now: float | None = None,
) -> dict[str, Any]:
    """Check a request's signature scheme; the request parameters (without the
    credentials) or a :class:`LunaNodeError`."""
    for name in ("req", "signature", "nonce"):
        if not form.get(name):
            raise required(name)
    raw = form["req"]
    try:
        request = json.loads(raw)
    except ValueError:
        raise LunaNodeError("invalid request message: req must be a JSON object") from None
    if not isinstance(request, dict):
        raise LunaNodeError("invalid request message: req must be a JSON object")
    for name in ("api_id", "api_partialkey"):
        if request.get(name) in (None, ""):
            raise required(name)
    if not isinstance(request["api_id"], str) or not hmac.compare_digest(
        request["api_id"].encode(), api_id.encode()
    ):
        raise LunaNodeError("invalid api_id")
    partial = request["api_partialkey"]
    if not isinstance(partial, str) or not hmac.compare_digest(
        partial.encode(), api_key[:PARTIAL_KEY_LENGTH].encode()
    ):
        raise LunaNodeError("invalid api_partialkey")
    nonce_text = form["nonce"]
    expected = sign(api_key, handler, raw, nonce_text)
    if not hmac.compare_digest(expected.encode(), form["signature"].strip().lower().encode()):
        raise LunaNodeError("invalid signature")
    if not re.fullmatch(r"\d{1,12}", nonce_text.strip()):
        raise LunaNodeError("invalid nonce")
    nonce = int(nonce_text)
    current = time.time() if now is None else now
    if nonce < current - tolerance:
        raise LunaNodeError("invalid nonce: too old")
    if nonce > current + tolerance:
        raise LunaNodeError("invalid nonce: too far in the future")
    if must_increase and nonces.highest is not None and nonce < nonces.highest:
        raise LunaNodeError("invalid nonce: lower than a previous request's")
    if nonces.highest is None or nonce > nonces.highest:
        nonces.highest = nonce
    return {k: v for k, v in request.items() if k not in ("api_id", "api_partialkey")}


# ---- parameters -------------------------------------------------------------------------


class Params:
    """A request's parameters, read LunaNode's way (strings or numbers)."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = dict(raw)

    def optional(self, name: str) -> str | None:
        value = self.raw.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            raise LunaNodeError(f"invalid value for parameter {name}")
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            if not value.is_integer():
                raise LunaNodeError(f"invalid value for parameter {name}")
            return str(int(value))
        if not isinstance(value, str):
            raise LunaNodeError(f"invalid value for parameter {name}")
        return value if value != "" else None

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise required(name)
        return value

    def check(self, names: tuple[str, ...]) -> None:
        """The first missing one of ``names`` fails, in the documented order."""
        for name in names:
            self.required(name)

    def flag(self, name: str) -> bool:
        """``yes`` / ``1`` / ``true`` (LunaNode's yes/no parameters)."""
        value = self.optional(name)
        return value is not None and value.lower() in ("yes", "1", "true")

    def id_list(self, name: str) -> list[str]:
        """A comma-separated id list (``securitygroups``, ``scripts``)."""
        value = self.optional(name)
        if value is None:
            return []
        return [part.strip() for part in value.split(",") if part.strip()]


def hostname(value: str) -> str:
    if len(value) > HOSTNAME_MAX or not value.strip():
        raise LunaNodeError("invalid hostname")
    return value


def label(value: str, what: str = "label") -> str:
    if len(value) > LABEL_MAX:
        raise LunaNodeError(f"invalid {what}")
    return value


def ssh_public_key(value: str) -> str:
    """An OpenSSH public key line (type, base64 blob whose embedded type matches, and an
    optional comment); ``invalid SSH key`` otherwise."""
    parts = value.strip().split(None, 2)
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise LunaNodeError("invalid SSH key")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise LunaNodeError("invalid SSH key") from None
    if len(blob) < 4:
        raise LunaNodeError("invalid SSH key")
    length = int.from_bytes(blob[:4], "big")
    if blob[4:4 + length].decode("ascii", "replace") != parts[0]:
        raise LunaNodeError("invalid SSH key")
    return value.strip()


DIRECTIONS = ("ingress", "egress")
PROTOCOLS = ("any", "tcp", "udp", "icmp")
_TYPES = {"4": "ipv4", "ipv4": "ipv4", "6": "ipv6", "ipv6": "ipv6"}


def rule_type(value: str) -> str:
    """``ipv4`` / ``ipv6`` (``4`` and ``6`` accepted, as some clients send them)."""
    try:
        return _TYPES[value.lower()]
    except KeyError:
        raise LunaNodeError("invalid type (must be ipv4 or ipv6)") from None


def choice(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value.lower() not in allowed:
        raise LunaNodeError(f"invalid {name} (must be {', '.join(allowed)})")
    return value.lower()


def cidr(value: str, family: str) -> str:
    """A CIDR (or a bare address, read as /32 or /128) of ``family``."""
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise LunaNodeError("invalid remote_value (must be a CIDR)") from None
    if (network.version == 4) != (family == "ipv4"):
        raise LunaNodeError(f"remote_value is not an {family} CIDR")
    return str(network)


def port(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    if not re.fullmatch(r"\d{1,5}", value) or not 1 <= int(value) <= 65535:
        raise LunaNodeError(f"invalid {name}")
    return int(value)
