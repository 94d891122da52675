"""Request validation for Krova: pure functions that raise a 400 ``ApiError``.

Each message names the offending field so a client can surface it unchanged.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..common.errors import ApiError
from .catalog import IMAGES_BY_ID, REGIONS, REGIONS_BY_SLUG

NAME_MAX = 64
USER_DATA_MAX_BYTES = 16 * 1024
WHITELIST_MAX = 500
LABEL_MAX = 100
SNAPSHOT_NAME_MAX = 128
URL_MAX = 2048

# The seed's list: ssh-ed25519, ssh-rsa, ecdsa-sha2-*, ssh-dss, sk-*@openssh.com.
_SSH_KEY_TYPE = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ssh-dss|ecdsa-sha2-[A-Za-z0-9-]+|sk-[A-Za-z0-9-]+@openssh\.com)$"
)
_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")

# Every event name the spec lists, plus the seed's ``cube.sleeping``.
WEBHOOK_EVENTS: tuple[str, ...] = (
    "cube.created", "cube.running", "cube.sleeping", "cube.stopped", "cube.error",
    "cube.deleted", "cube.cold_restarted", "cube.transfer.started", "cube.transfer.completed",
    "cube.transfer.failed", "cube.resize.started", "cube.resize.completed",
    "cube.resize.failed", "resource.alert.memory", "resource.alert.cpu",
    "resource.alert.disk", "domain.alert.error_4xx", "domain.alert.error_5xx",
    "snapshot.created", "snapshot.restored", "snapshot.deleted", "snapshot.pinned",
    "snapshot.promoted_to_backup", "snapshot.exported", "backup.created", "backup.deleted",
    "backup.redeployed", "domain.added", "domain.active", "domain.removed",
    "tcp_mapping.added", "tcp_mapping.removed", "tcp_mapping.updated",
    "hosting.provisioned", "hosting.suspended", "hosting.unsuspended", "hosting.deleted",
    "hosting.plan_changed", "hosting.renewed", "hosting.cancellation_scheduled",
    "hosting.suspended_for_non_payment", "hosting.deleted_after_recovery",
    "member.invited", "member.joined", "member.removed", "member.role_changed",
)


def bad(message: str) -> ApiError:
    return ApiError(400, message)


def as_int(value: Any) -> int | None:
    """``value`` as an int if it is an integral JSON number (``2`` or ``2.0``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def port(value: Any, field: str) -> int:
    number = as_int(value)
    if number is None or not 1 <= number <= 65535:
        raise bad(f"{field} must be an integer between 1 and 65535")
    return number


def ssh_public_key(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad("sshPublicKey is required")
    parts = value.strip().split()
    if not _SSH_KEY_TYPE.match(parts[0]):
        raise bad(
            "sshPublicKey must start with ssh-ed25519, ssh-rsa, ecdsa-sha2-*, ssh-dss "
            "or sk-*@openssh.com"
        )
    if len(parts) < 2 or not _BASE64.match(parts[1]):
        raise bad("sshPublicKey must contain the base64 key after the key type")
    return value.strip()


@dataclass(frozen=True)
class CubeSpec:
    name: str
    vcpu: int
    ram_gb: float
    disk_gb: int
    image: str
    region: str
    ssh_public_key: str
    user_data: str | None
    termination_protection: bool


def create_cube(body: dict[str, Any]) -> CubeSpec:
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= NAME_MAX or not name.strip():
        raise bad(f"name must be a string of 1-{NAME_MAX} characters")

    resources = body.get("resources")
    if not isinstance(resources, dict):
        raise bad("resources must be an object with vcpu, ramGb and diskGb")
    vcpu = as_int(resources.get("vcpu"))
    if vcpu is None or vcpu < 1:
        raise bad("resources.vcpu must be an integer >= 1")
    ram = resources.get("ramGb")
    if isinstance(ram, bool) or not isinstance(ram, int | float) or ram <= 0:
        raise bad("resources.ramGb must be a positive number")
    ram_gb: float = int(ram) if float(ram).is_integer() else float(ram)
    # The spec types diskGb as an integer in responses, so only whole GB are accepted.
    disk_gb = as_int(resources.get("diskGb"))
    if disk_gb is None or disk_gb < 1:
        raise bad("resources.diskGb must be a positive whole number of GB")

    image = body.get("image")
    if not isinstance(image, str) or not image:
        raise bad("image is required (an id from /images)")
    if image not in IMAGES_BY_ID:
        raise bad(f"image '{image}' is not available; see /images")

    region = body.get("region")
    if region is None:
        region = REGIONS[0].slug
    elif not isinstance(region, str) or region not in REGIONS_BY_SLUG:
        raise bad(f"region '{region}' is not available; see /regions")

    key = ssh_public_key(body.get("sshPublicKey"))

    user_data = body.get("userData")
    if user_data is not None:
        if not isinstance(user_data, str):
            raise bad("userData must be a string")
        if len(user_data.encode()) > USER_DATA_MAX_BYTES:
            raise bad("userData must be at most 16 KB")

    protection = body.get("terminationProtection", False)
    if not isinstance(protection, bool):
        raise bad("terminationProtection must be a boolean")

    return CubeSpec(name, vcpu, ram_gb, disk_gb, image, region, key, user_data, protection)


def cidr(value: Any, field: str) -> str:
    """A CIDR (or bare IP, meaning /32 or /128) in normalized form."""
    if not isinstance(value, str):
        raise bad(f"{field} entries must be strings (IP or CIDR)")
    try:
        return str(ipaddress.ip_network(value.strip(), strict=True))
    except ValueError:
        raise bad(f"{field} contains an invalid IP/CIDR: '{value}'") from None


def whitelist(body: dict[str, Any]) -> list[str]:
    """``whitelistedIps`` (or the deprecated ``whitelistIps``), deduplicated in order."""
    field = "whitelistedIps" if "whitelistedIps" in body else "whitelistIps"
    raw = body.get(field)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad(f"{field} must be an array of IPs/CIDRs")
    if len(raw) > WHITELIST_MAX:
        raise bad(f"{field} accepts at most {WHITELIST_MAX} entries")
    seen: dict[str, None] = {}
    for item in raw:
        seen.setdefault(cidr(item, field), None)
    return list(seen)


@dataclass(frozen=True)
class TcpMappingSpec:
    cube_port: int
    label: str | None
    udp_enabled: bool
    whitelist: list[str]


def create_tcp_mapping(body: dict[str, Any]) -> TcpMappingSpec:
    if "cubePort" not in body:
        raise bad("cubePort is required")
    cube_port = port(body["cubePort"], "cubePort")
    label = body.get("label")
    if label is not None and (not isinstance(label, str) or len(label) > LABEL_MAX):
        raise bad(f"label must be a string of at most {LABEL_MAX} characters")
    udp = body.get("udpEnabled", True)
    if udp is None:
        udp = True
    if not isinstance(udp, bool):
        raise bad("udpEnabled must be a boolean")
    return TcpMappingSpec(cube_port, label or None, udp, whitelist(body))


def domain_name(value: Any) -> str:
    """A lower-cased hostname with at least two labels, optionally ``*.``-prefixed."""
    if not isinstance(value, str) or not value.strip():
        raise bad("domain is required")
    name = value.strip().lower().rstrip(".")
    host = name.removeprefix("*.")
    labels = host.split(".")
    if (
        len(name) > 253
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise bad(f"domain '{value}' is not a valid hostname")
    return name


@dataclass(frozen=True)
class DomainSpec:
    domain: str
    port: int
    security_headers_mode: str
    response_header_timeout_secs: int
    max_request_body_mb: int | None
    response_compression: bool


def add_domain(body: dict[str, Any]) -> DomainSpec:
    name = domain_name(body.get("domain"))
    if "port" not in body:
        raise bad("port is required")
    target = port(body["port"], "port")
    mode = body.get("securityHeadersMode", "enforced")
    if mode not in ("enforced", "app_managed"):
        raise bad("securityHeadersMode must be 'enforced' or 'app_managed'")
    timeout = as_int(body.get("responseHeaderTimeoutSecs", 60))
    if timeout is None or not 10 <= timeout <= 3600:
        raise bad("responseHeaderTimeoutSecs must be an integer between 10 and 3600")
    max_body = body.get("maxRequestBodyMb")
    if max_body is not None:
        max_body = as_int(max_body)
        if max_body is None or not 1 <= max_body <= 10240:
            raise bad("maxRequestBodyMb must be null or an integer between 1 and 10240")
    compression = body.get("responseCompression", False)
    if not isinstance(compression, bool):
        raise bad("responseCompression must be a boolean")
    return DomainSpec(name, target, mode, timeout, max_body, compression)


def webhook(body: dict[str, Any]) -> tuple[str, list[str]]:
    url = body.get("url")
    if not isinstance(url, str) or not url or len(url) > URL_MAX:
        raise bad("url is required (an absolute http(s) URL)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad("url must be an absolute http(s) URL")
    events = body.get("events")
    if not isinstance(events, list) or not events:
        raise bad("events must be a non-empty array of event names")
    seen: dict[str, None] = {}
    for event in events:
        if not isinstance(event, str) or event not in WEBHOOK_EVENTS:
            raise bad(f"events contains an unknown event: {event!r}")
        seen.setdefault(event, None)
    return url, list(seen)


def positive_int_query(raw: str | None, field: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad(f"{field} must be a positive integer") from None
    if value < 1:
        raise bad(f"{field} must be a positive integer")
    return value
