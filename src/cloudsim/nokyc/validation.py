"""Request validation for NoKYC: JSON bodies, field rules and references.

The seed's rules: bodies are JSON objects with snake_case keys, unknown keys are a
400; each validator collects *every* problem of a body into ``errors[]`` before
answering, so a client sees all of them at once.  Issues used in ``errors[]``:

``required``, ``type`` (+ ``expected``), ``pattern`` (+ ``pattern``), ``min_length`` /
``max_length`` (+ ``min`` / ``max``), ``min_items`` / ``max_items`` (+ ``min`` /
``max``), ``enum`` (+ ``allowed``), ``unknown_field``, ``read_only``, ``immutable``,
``not_found`` (a referenced id that does not exist), ``duplicate``, ``base64``,
``max_size`` (+ ``max``, bytes), ``format`` (+ ``format``: ``openssh``, ``cidr``,
``port``, ``url``, ``rfc3339``, ``hostname``), ``https_required``.

Referenced resources that are missing (plan, region, image, ssh key, server,
snapshot ids in a body) are 400 ``invalid_request`` with issue ``not_found``, as in
the seed's ``ssh_keys`` example; semantic conflicts (a plan not sold in the region, a
deprecated image, ...) are raised by the engine as 422 ``unprocessable``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import re
import struct
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from .catalog import EVENT_TYPES
from .errors import NoKycError, invalid, problem

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
LABEL_KEY_PATTERN = r"^[a-z0-9_-]{1,63}$"
_NAME = re.compile(NAME_PATTERN)
_LABEL_KEY = re.compile(LABEL_KEY_PATTERN)
_HOSTNAME_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_PORT_LIST = re.compile(r"^\d{1,5}(,\d{1,5})*$")
_PORT_RANGE = re.compile(r"^(\d{1,5})-(\d{1,5})$")

MAX_LABELS = 32
LABEL_VALUE_MAX = 255
# The seed gives tags no limits; these keep a runaway client visible.
MAX_TAGS = 64
TAG_MAX = 64
DISPLAY_NAME_MAX = 63
NOTE_MAX = 255
URL_MAX = 2048
USER_DATA_MAX_BYTES = 64 * 1024
SCOPES = ("read", "write", "billing")
DIRECTIONS = ("in", "out")
PROTOCOLS = ("tcp", "udp", "icmp", "any")
RULE_ACTIONS = ("accept", "drop", "reject")
DEFAULT_ACTIONS = ("drop", "accept")
SSH_KEY_TYPES = (
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)
_ECDSA_POINT_BYTES = {"nistp256": 65, "nistp384": 97, "nistp521": 133}

class Problems:
    """Accumulates ``errors[]`` entries and the human messages that go with them."""

    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []
        self.messages: list[str] = []

    def add(self, field: str, issue: str, message: str, **extra: Any) -> None:
        self.errors.append(problem(field, issue, **extra))
        self.messages.append(message)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def error(self) -> NoKycError:
        shown = self.messages[:3]
        more = len(self.messages) - len(shown)
        message = " ".join(m if m.endswith(".") else m + "." for m in shown)
        if more:
            message += f" ({more} more problem{'s' if more > 1 else ''} in errors.)"
        return invalid(message, *self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise self.error()


# ---- bodies ---------------------------------------------------------------------------


def parse_body(raw: bytes, content_type: str, *, required: bool) -> dict[str, Any]:
    """The JSON object in ``raw``; ``{}`` for an empty optional body."""
    if not raw.strip():
        if required:
            raise invalid("Request body must be a JSON object.",
                          problem("body", "required"))
        return {}
    if content_type != "application/json":
        raise invalid(
            "Request bodies must be application/json.",
            problem("body", "content_type", expected="application/json",
                    got=content_type or None),
        )
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid("Request body is not valid JSON.", problem("body", "json")) from None
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object.",
                      problem("body", "type", expected="object"))
    return body


def check_keys(
    body: Mapping[str, Any],
    problems: Problems,
    *,
    allowed: Collection[str],
    read_only: Collection[str] = (),
    immutable: Collection[str] = (),
    prefix: str = "",
) -> None:
    for key in body:
        field = f"{prefix}{key}"
        if key in allowed:
            continue
        if key in read_only:
            problems.add(field, "read_only", f"{field} is read-only")
        elif key in immutable:
            problems.add(field, "immutable", f"{field} cannot be changed after deploy")
        else:
            problems.add(field, "unknown_field", f"Unknown field {field}")


def _string(
    body: Mapping[str, Any],
    key: str,
    problems: Problems,
    *,
    required: bool = False,
    nullable: bool = False,
    min_length: int = 1,
    max_length: int | None = None,
    pattern: re.Pattern[str] | None = None,
    prefix: str = "",
) -> str | None:
    field = f"{prefix}{key}"
    if key not in body:
        if required:
            problems.add(field, "required", f"{field} is required")
        return None
    value = body[key]
    if value is None:
        if not nullable:
            problems.add(field, "type", f"{field} must be a string", expected="string")
        return None
    if not isinstance(value, str):
        expected = "string or null" if nullable else "string"
        problems.add(field, "type", f"{field} must be a {expected}", expected=expected)
        return None
    if len(value) < min_length:
        problems.add(field, "min_length", f"{field} must be at least {min_length} characters",
                     min=min_length)
        return None
    if max_length is not None and len(value) > max_length:
        problems.add(field, "max_length", f"{field} must be at most {max_length} characters",
                     max=max_length)
        return None
    if pattern is not None and not pattern.match(value):
        problems.add(field, "pattern", f"{field} must match {pattern.pattern}",
                     pattern=pattern.pattern)
        return None
    return value


def _enum(
    body: Mapping[str, Any],
    key: str,
    choices: tuple[str, ...],
    problems: Problems,
    *,
    required: bool = False,
    prefix: str = "",
) -> str | None:
    field = f"{prefix}{key}"
    if key not in body:
        if required:
            problems.add(field, "required", f"{field} is required")
        return None
    value = body[key]
    if not isinstance(value, str) or value not in choices:
        problems.add(field, "enum", f"{field} must be one of {', '.join(choices)}",
                     allowed=list(choices))
        return None
    return value


def _boolean(body: Mapping[str, Any], key: str, problems: Problems) -> bool | None:
    if key not in body:
        return None
    value = body[key]
    if not isinstance(value, bool):
        problems.add(key, "type", f"{key} must be a boolean", expected="boolean")
        return None
    return value


def _id_list(
    body: Mapping[str, Any],
    key: str,
    problems: Problems,
    exists: Callable[[str], bool],
    *,
    required: bool = False,
    min_items: int = 0,
    message_min: str | None = None,
) -> list[str] | None:
    if key not in body:
        if required:
            problems.add(key, "required", message_min or f"{key} is required",
                         **({"min": min_items} if min_items else {}))
        return None
    value = body[key]
    if not isinstance(value, list):
        problems.add(key, "type", f"{key} must be an array of ids", expected="array")
        return None
    if len(value) < min_items:
        problems.add(key, "min_items", message_min or f"{key} needs at least {min_items} items",
                     min=min_items)
        return None
    ids: list[str] = []
    ok = True
    for index, item in enumerate(value):
        field = f"{key}[{index}]"
        if not isinstance(item, str) or not item:
            problems.add(field, "type", f"{field} must be an id string", expected="string")
            ok = False
        elif item in ids:
            problems.add(field, "duplicate", f"{field} repeats {item}")
            ok = False
        elif not exists(item):
            problems.add(field, "not_found", f"{field}: no such id {item!r}", value=item)
            ok = False
        else:
            ids.append(item)
    return ids if ok else None


def _tags(body: Mapping[str, Any], problems: Problems) -> list[str] | None:
    if "tags" not in body:
        return None
    value = body["tags"]
    if not isinstance(value, list):
        problems.add("tags", "type", "tags must be an array of strings", expected="array")
        return None
    if len(value) > MAX_TAGS:
        problems.add("tags", "max_items", f"tags holds at most {MAX_TAGS} items", max=MAX_TAGS)
        return None
    ok = True
    for index, tag in enumerate(value):
        field = f"tags[{index}]"
        if not isinstance(tag, str):
            problems.add(field, "type", f"{field} must be a string", expected="string")
            ok = False
        elif not 1 <= len(tag) <= TAG_MAX:
            problems.add(field, "max_length" if tag else "min_length",
                         f"{field} must be 1-{TAG_MAX} characters",
                         **({"max": TAG_MAX} if tag else {"min": 1}))
            ok = False
    return list(value) if ok else None


def _labels(body: Mapping[str, Any], problems: Problems) -> dict[str, str] | None:
    if "labels" not in body:
        return None
    value = body["labels"]
    if not isinstance(value, dict):
        problems.add("labels", "type", "labels must be an object of strings", expected="object")
        return None
    if len(value) > MAX_LABELS:
        problems.add("labels", "max_items", f"labels holds at most {MAX_LABELS} pairs",
                     max=MAX_LABELS)
        return None
    ok = True
    for key, item in value.items():
        field = f"labels.{key}"
        if not _LABEL_KEY.match(key):
            problems.add(field, "pattern", f"label key {key!r} must match {LABEL_KEY_PATTERN}",
                         pattern=LABEL_KEY_PATTERN)
            ok = False
        elif not isinstance(item, str):
            problems.add(field, "type", f"{field} must be a string", expected="string")
            ok = False
        elif len(item) > LABEL_VALUE_MAX:
            problems.add(field, "max_length", f"{field} must be at most {LABEL_VALUE_MAX} "
                         "characters", max=LABEL_VALUE_MAX)
            ok = False
    return dict(value) if ok else None


def _user_data(body: Mapping[str, Any], problems: Problems) -> str | None:
    value = body.get("user_data_b64")
    if value is None:
        return None
    if not isinstance(value, str):
        problems.add("user_data_b64", "type", "user_data_b64 must be a base64 string or null",
                     expected="string or null")
        return None
    try:
        if len(value) % 4:
            raise ValueError("not padded to a multiple of 4")
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        problems.add("user_data_b64", "base64", "user_data_b64 is not valid (padded, standard "
                     "alphabet) base64")
        return None
    if len(decoded) > USER_DATA_MAX_BYTES:
        problems.add("user_data_b64", "max_size",
                     f"user_data_b64 decodes to {len(decoded)} bytes; the limit is 64 KiB",
                     max=USER_DATA_MAX_BYTES)
        return None
    return value


def timestamp(value: Any, field: str, problems: Problems, *, nullable: bool = True) -> float | None:
    """An RFC 3339 timestamp (with offset or ``Z``) as unix seconds."""
    if value is None:
        if not nullable:
            problems.add(field, "type", f"{field} must be an RFC 3339 timestamp",
                         expected="string")
        return None
    if not isinstance(value, str):
        problems.add(field, "type", f"{field} must be an RFC 3339 timestamp string",
                     expected="string")
        return None
    parsed: datetime | None
    try:
        parsed = datetime.fromisoformat(value) if "T" in value.upper() else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        problems.add(field, "format", f"{field} must be an RFC 3339 timestamp with a UTC "
                     "offset, e.g. 2026-05-12T08:47:12Z", format="rfc3339")
        return None
    return parsed.timestamp()


# ---- servers --------------------------------------------------------------------------

SERVER_READ_ONLY = ("id", "object", "status", "ipv4", "ipv6", "created_at", "updated_at")


@dataclass(frozen=True)
class ServerSpec:
    name: str
    plan: str
    region: str
    image: str
    ssh_keys: list[str]
    tags: list[str]
    labels: dict[str, str]
    user_data_b64: str | None


def create_server(
    body: Mapping[str, Any],
    *,
    plans: Collection[str],
    regions: Collection[str],
    images: Collection[str],
    ssh_key_exists: Callable[[str], bool],
) -> ServerSpec:
    problems = Problems()
    check_keys(body, problems, read_only=SERVER_READ_ONLY, allowed=(
        "name", "plan", "region", "image", "ssh_keys", "tags", "labels", "user_data_b64",
    ))
    name = _string(body, "name", problems, required=True, pattern=_NAME)
    refs: dict[str, str | None] = {}
    for key, known in (("plan", plans), ("region", regions), ("image", images)):
        value = _string(body, key, problems, required=True)
        if value is not None and value not in known:
            problems.add(key, "not_found", f"{key} {value!r} does not exist", value=value)
            value = None
        refs[key] = value
    keys = _id_list(body, "ssh_keys", problems, ssh_key_exists, required=True, min_items=1,
                    message_min="ssh_keys must contain at least one valid key id")
    tags = _tags(body, problems)
    labels = _labels(body, problems)
    user_data = _user_data(body, problems)
    problems.raise_if_any()
    assert name is not None and keys is not None
    assert refs["plan"] and refs["region"] and refs["image"]
    return ServerSpec(name, refs["plan"], refs["region"], refs["image"], keys, tags or [],
                      labels or {}, user_data)


@dataclass(frozen=True)
class ServerPatch:
    name: str | None
    tags: list[str] | None
    labels: dict[str, str] | None


def patch_server(body: Mapping[str, Any]) -> ServerPatch:
    problems = Problems()
    check_keys(body, problems, allowed=("name", "tags", "labels"), read_only=SERVER_READ_ONLY,
               immutable=("plan", "region", "image", "ssh_keys", "user_data_b64"))
    name = _string(body, "name", problems, pattern=_NAME)
    tags = _tags(body, problems)
    labels = _labels(body, problems)
    problems.raise_if_any()
    return ServerPatch(name, tags, labels)


def no_body_fields(body: Mapping[str, Any]) -> None:
    """Action endpoints (stop, start, reboot) take no body fields."""
    problems = Problems()
    check_keys(body, problems, allowed=())
    problems.raise_if_any()


def rebuild(body: Mapping[str, Any], images: Collection[str]) -> str:
    problems = Problems()
    check_keys(body, problems, allowed=("image",))
    image = _string(body, "image", problems, required=True)
    if image is not None and image not in images:
        problems.add("image", "not_found", f"image {image!r} does not exist", value=image)
    problems.raise_if_any()
    assert image is not None
    return image


def restore(body: Mapping[str, Any], snapshot_exists: Callable[[str], bool]) -> str:
    problems = Problems()
    check_keys(body, problems, allowed=("snapshot",))
    snapshot = _string(body, "snapshot", problems, required=True)
    if snapshot is not None and not snapshot_exists(snapshot):
        problems.add("snapshot", "not_found", f"snapshot {snapshot!r} does not exist",
                     value=snapshot)
    problems.raise_if_any()
    assert snapshot is not None
    return snapshot


def hostname(value: str) -> bool:
    name = value.rstrip(".")
    labels = name.split(".")
    return (
        len(name) <= 253 and len(labels) >= 2 and not labels[-1].isdigit()
        and all(_HOSTNAME_LABEL.match(label) for label in labels)
    )


def rdns(body: Mapping[str, Any]) -> dict[str, str | None]:
    """``{"ipv4": host|null, "ipv6": host|null}``, at least one of them."""
    problems = Problems()
    check_keys(body, problems, allowed=("ipv4", "ipv6"))
    result: dict[str, str | None] = {}
    for key in ("ipv4", "ipv6"):
        if key not in body:
            continue
        value = _string(body, key, problems, nullable=True, max_length=253)
        if value is not None and not hostname(value.lower()):
            problems.add(key, "format", f"{key} must be a hostname", format="hostname")
        elif key not in {e["field"] for e in problems.errors}:
            result[key] = value.lower() if value is not None else None
    if not body:
        problems.add("body", "required", "Give ipv4 and/or ipv6")
    problems.raise_if_any()
    return result


# ---- snapshots ------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotSpec:
    name: str
    expires_at: float | None


def create_snapshot(body: Mapping[str, Any]) -> SnapshotSpec:
    problems = Problems()
    check_keys(body, problems, allowed=("name", "expires_at"),
               read_only=("id", "object", "server", "size_gb", "status", "created_at"))
    name = _string(body, "name", problems, required=True, max_length=DISPLAY_NAME_MAX)
    expires = timestamp(body.get("expires_at"), "expires_at", problems)
    problems.raise_if_any()
    assert name is not None
    return SnapshotSpec(name, expires)


# ---- SSH keys -------------------------------------------------------------------------


@dataclass(frozen=True)
class SshKeySpec:
    name: str
    type: str
    public_key: str
    fingerprint: str


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise ValueError("truncated")
    (length,) = struct.unpack(">I", blob[offset : offset + 4])
    end = offset + 4 + length
    if end > len(blob):
        raise ValueError("truncated")
    return blob[offset + 4 : end], end


def _check_key_blob(key_type: str, blob: bytes) -> None:
    """Structural check of an OpenSSH public key blob; ``ValueError`` when malformed."""
    name, offset = _read_string(blob, 0)
    if name.decode("ascii", "replace") != key_type:
        raise ValueError("key type does not match the blob")
    if key_type == "ssh-ed25519":
        key, offset = _read_string(blob, offset)
        if len(key) != 32:
            raise ValueError("an ed25519 key is 32 bytes")
    elif key_type == "ssh-rsa":
        exponent, offset = _read_string(blob, offset)
        modulus, offset = _read_string(blob, offset)
        if not exponent or int.from_bytes(modulus, "big").bit_length() < 1024:
            raise ValueError("RSA keys need at least 1024 bits")
    else:
        curve, offset = _read_string(blob, offset)
        expected = key_type.removeprefix("ecdsa-sha2-")
        if curve.decode("ascii", "replace") != expected:
            raise ValueError("curve does not match the key type")
        point, offset = _read_string(blob, offset)
        if len(point) != _ECDSA_POINT_BYTES[expected] or point[0] != 4:
            raise ValueError("bad curve point")
    if offset != len(blob):
        raise ValueError("trailing bytes")


def fingerprint(blob: bytes) -> str:
    """``SHA256:`` + unpadded base64 of the SHA-256 of the key blob (OpenSSH's format)."""
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def create_ssh_key(body: Mapping[str, Any]) -> SshKeySpec:
    problems = Problems()
    check_keys(body, problems, allowed=("name", "public_key"),
               read_only=("id", "object", "type", "fingerprint", "created_at"))
    name = _string(body, "name", problems, required=True, max_length=DISPLAY_NAME_MAX)
    raw = _string(body, "public_key", problems, required=True, max_length=16384)
    key_type = ""
    blob = b""
    if raw is not None:
        parts = raw.strip().split()
        try:
            if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
                raise ValueError("type")
            key_type = parts[0]
            blob = base64.b64decode(parts[1], validate=True)
            _check_key_blob(key_type, blob)
        except (ValueError, binascii.Error):
            problems.add("public_key", "format",
                         "public_key must be an OpenSSH public key (ssh-ed25519, ssh-rsa or "
                         "ecdsa-sha2-nistp256/384/521, then the base64 key, then an optional "
                         "comment)", format="openssh")
    problems.raise_if_any()
    assert name is not None and raw is not None
    return SshKeySpec(name, key_type, " ".join(raw.strip().split()), fingerprint(blob))


# ---- firewall -------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleSpec:
    direction: str
    proto: str
    port: str | None
    source: str
    action: str
    note: str | None


def _port(value: str) -> bool:
    if _PORT_LIST.match(value):
        return all(1 <= int(p) <= 65535 for p in value.split(","))
    match = _PORT_RANGE.match(value)
    if match:
        low, high = int(match.group(1)), int(match.group(2))
        return 1 <= low < high <= 65535
    return False


def _cidr(value: str) -> bool:
    if "/" not in value:
        return False
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        return False
    return True


def rule(raw: Any, problems: Problems, prefix: str) -> RuleSpec | None:
    field = prefix.rstrip(".")
    if not isinstance(raw, dict):
        problems.add(field, "type", f"{field} must be a rule object", expected="object")
        return None
    before = len(problems.errors)
    check_keys(raw, problems, allowed=("direction", "proto", "port", "source", "action", "note"),
               read_only=("id",), prefix=prefix)
    direction = _enum(raw, "direction", DIRECTIONS, problems, required=True, prefix=prefix)
    proto = _enum(raw, "proto", PROTOCOLS, problems, required=True, prefix=prefix)
    port = _string(raw, "port", problems, nullable=True, max_length=255, prefix=prefix)
    if proto in ("tcp", "udp"):
        if port is None and f"{prefix}port" not in {e["field"] for e in problems.errors}:
            problems.add(f"{prefix}port", "required",
                         f"{prefix}port is required for {proto} rules")
        elif port is not None and not _port(port):
            problems.add(f"{prefix}port", "format", f"{prefix}port must be a port (\"22\"), a "
                         "comma list (\"80,443\") or a range (\"5000-5100\")", format="port")
    elif proto is not None and port is not None:
        problems.add(f"{prefix}port", "type", f"{prefix}port must be null for {proto} rules",
                     expected="null")
    source = _string(raw, "source", problems, required=True, max_length=64, prefix=prefix)
    if source is not None and not _cidr(source):
        problems.add(f"{prefix}source", "format", f"{prefix}source must be an IPv4 or IPv6 "
                     "CIDR such as 0.0.0.0/0 or 2001:db8::/32", format="cidr")
    action = _enum(raw, "action", RULE_ACTIONS, problems, required=True, prefix=prefix)
    note = _string(raw, "note", problems, nullable=True, min_length=0, max_length=NOTE_MAX,
                   prefix=prefix)
    if len(problems.errors) != before:
        return None
    assert direction and proto and source and action
    return RuleSpec(direction, proto, port, source, action, note)


def rules_list(value: Any, problems: Problems, field: str = "rules") -> list[RuleSpec] | None:
    if not isinstance(value, list):
        problems.add(field, "type", f"{field} must be an array of rules", expected="array")
        return None
    specs = [rule(item, problems, f"{field}[{i}].") for i, item in enumerate(value)]
    if any(s is None for s in specs):
        return None
    return [s for s in specs if s is not None]


def replace_rules(body: Mapping[str, Any]) -> list[RuleSpec]:
    problems = Problems()
    check_keys(body, problems, allowed=("rules",))
    specs: list[RuleSpec] | None = None
    if "rules" not in body:
        problems.add("rules", "required", "rules is required (the complete new rule list)")
    else:
        specs = rules_list(body["rules"], problems)
    problems.raise_if_any()
    assert specs is not None
    return specs


def append_rule(body: Mapping[str, Any]) -> RuleSpec:
    problems = Problems()
    spec = rule(dict(body), problems, "")
    problems.raise_if_any()
    assert spec is not None
    return spec


GROUP_READ_ONLY = ("id", "object", "created_at")


@dataclass(frozen=True)
class GroupSpec:
    name: str | None
    default_action: str | None
    applied_to: list[str] | None
    rules: list[RuleSpec] | None


def firewall_group(
    body: Mapping[str, Any], server_exists: Callable[[str], bool], *, create: bool
) -> GroupSpec:
    problems = Problems()
    allowed = ["name", "default_action", "applied_to"] + (["rules"] if create else [])
    checked = {k: v for k, v in body.items() if create or k != "rules"}
    check_keys(checked, problems, allowed=allowed, read_only=GROUP_READ_ONLY)
    if not create and "rules" in body:
        problems.add("rules", "unknown_field",
                     "rules cannot be changed with PATCH; use PUT /firewall/groups/{id}/rules")
    name = _string(body, "name", problems, required=create, max_length=DISPLAY_NAME_MAX)
    default_action = _enum(body, "default_action", DEFAULT_ACTIONS, problems)
    applied_to = _id_list(body, "applied_to", problems, server_exists)
    rules = rules_list(body["rules"], problems) if create and "rules" in body else None
    problems.raise_if_any()
    return GroupSpec(name, default_action, applied_to, rules)


# ---- webhooks -------------------------------------------------------------------------


def _url(body: Mapping[str, Any], problems: Problems, *, required: bool, allow_http: bool) -> str | None:
    url = _string(body, "url", problems, required=required, max_length=URL_MAX)
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # raises on a bad port
    except ValueError:
        valid = False
    if not valid:
        problems.add("url", "format", "url must be an absolute https:// URL", format="url")
        return None
    if parts.scheme != "https" and not allow_http:
        problems.add("url", "https_required", "url must use https")
        return None
    return url


def _events(body: Mapping[str, Any], problems: Problems, *, required: bool) -> list[str] | None:
    if "events" not in body:
        if required:
            problems.add("events", "required", "events is required (event types or [\"*\"])")
        return None
    value = body["events"]
    if not isinstance(value, list) or not value:
        problems.add("events", "min_items", "events must be a non-empty array", min=1)
        return None
    ok = True
    seen: list[str] = []
    for index, event in enumerate(value):
        field = f"events[{index}]"
        if not isinstance(event, str):
            problems.add(field, "type", f"{field} must be a string", expected="string")
            ok = False
        elif event == "*" and len(value) > 1:
            problems.add(field, "enum", "\"*\" subscribes to everything and must be alone",
                         allowed=["*"])
            ok = False
        elif event != "*" and event not in EVENT_TYPES:
            problems.add(field, "enum", f"unknown event type {event!r}",
                         allowed=["*", *EVENT_TYPES])
            ok = False
        elif event in seen:
            problems.add(field, "duplicate", f"{field} repeats {event}")
            ok = False
        else:
            seen.append(event)
    return seen if ok else None


WEBHOOK_READ_ONLY = ("id", "object", "secret", "secret_hint", "created_at")


@dataclass(frozen=True)
class WebhookSpec:
    url: str | None
    events: list[str] | None
    active: bool | None


def webhook(body: Mapping[str, Any], *, create: bool, allow_http: bool) -> WebhookSpec:
    problems = Problems()
    check_keys(body, problems, allowed=("url", "events", "active"), read_only=WEBHOOK_READ_ONLY)
    url = _url(body, problems, required=create, allow_http=allow_http)
    events = _events(body, problems, required=create)
    active = _boolean(body, "active", problems)
    problems.raise_if_any()
    return WebhookSpec(url, events, active)


# ---- API tokens -----------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSpec:
    name: str
    scope: str
    expires_at: float | None


def create_token(body: Mapping[str, Any]) -> TokenSpec:
    problems = Problems()
    check_keys(body, problems, allowed=("name", "scope", "expires_at"),
               read_only=("id", "object", "token", "last_used_at", "created_at"))
    name = _string(body, "name", problems, required=True, max_length=DISPLAY_NAME_MAX)
    scope = _enum(body, "scope", SCOPES, problems, required=True)
    expires = timestamp(body.get("expires_at"), "expires_at", problems)
    problems.raise_if_any()
    assert name is not None and scope is not None
    return TokenSpec(name, scope, expires)


def scope_rank(scope: str) -> int:
    return SCOPES.index(scope)
