"""Request parsing and the create / snapshot validation, in the order the simulator
checks (the first failing check answers)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .catalog import PLANS_BY_ID, TEMPLATES_BY_ID, Plan, Template
from .errors import CyberPanelError, bad_request

REQUIRED_CREATE_FIELDS = ("hostname", "plan_id", "location_code", "template_id",
                          "root_password")
MAX_HOSTNAME = 253
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
PASSWORD_MIN, PASSWORD_MAX = 8, 72
_SSH_KEY = re.compile(r"^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|"
                      r"sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)\s+\S+")
SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9_]+$")
SNAPSHOT_NAME_MAX = 40
SNAPSHOT_DESCRIPTION_MAX = 255
MAX_PAGE = 100


def invalid_json(message: str = "The request body is not valid JSON") -> CyberPanelError:
    return bad_request("INVALID_JSON", "Invalid JSON", message)


async def read_body(request: web.Request) -> dict[str, Any]:
    """The JSON object body; an empty body is ``{}``."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid_json() from None
    if not isinstance(body, dict):
        raise invalid_json("The request body must be a JSON object")
    return body


def query_int(request: web.Request, name: str, default: int, *, minimum: int,
              maximum: int | None = None) -> int:
    """An integer query parameter, clamped into ``minimum..maximum``; 400
    ``INVALID_PARAMETER`` when it is not an integer."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise bad_request("INVALID_PARAMETER", "Invalid parameter",
                          f"'{name}' must be an integer") from None
    value = max(minimum, value)
    return min(maximum, value) if maximum is not None else value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def check_hostname(value: Any) -> str:
    if not isinstance(value, str):
        raise _bad_hostname()
    hostname = value.strip().lower()
    labels = hostname.split(".")
    if (len(hostname) > MAX_HOSTNAME or len(labels) < 2
            or not all(_LABEL.match(label) for label in labels)):
        raise _bad_hostname()
    return hostname


def _bad_hostname() -> CyberPanelError:
    return bad_request(
        "INVALID_HOSTNAME", "Hostname format invalid",
        "Hostname must be a fully qualified domain name (e.g. my-server.example.com): at "
        "least two labels of 1-63 characters (letters, digits, hyphens; not starting or "
        "ending with a hyphen), 253 characters at most")


def check_plan(value: Any) -> Plan:
    plan_id: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        plan_id = value
    elif isinstance(value, float) and value.is_integer():
        plan_id = int(value)
    plan = PLANS_BY_ID.get(plan_id) if plan_id is not None else None
    if plan is None:
        raise bad_request("PLAN_NOT_FOUND", "Invalid plan_id",
                          f"Plan {value!r} not found; see GET /api/v1/vps/plans")
    return plan


def check_template(value: Any) -> Template:
    key = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    template = TEMPLATES_BY_ID.get(key) if isinstance(key, str) else None
    if template is None:
        raise bad_request("INVALID_TEMPLATE", "Invalid template_id",
                          f"Template {value!r} not found; see GET /api/v1/vps/templates")
    return template


def check_password(value: Any) -> str:
    if not isinstance(value, str):
        raise bad_request("INVALID_FIELDS", "Invalid field type",
                          "root_password must be a string")
    if len(value) < PASSWORD_MIN:
        raise bad_request("PASSWORD_TOO_SHORT", "Password too short",
                          f"Password must be at least {PASSWORD_MIN} characters")
    if len(value) > PASSWORD_MAX:
        raise bad_request("PASSWORD_TOO_LONG", "Password too long",
                          f"Password must not exceed {PASSWORD_MAX} characters")
    if not (re.search(r"[A-Za-z]", value) and re.search(r"[0-9]", value)):
        raise bad_request("PASSWORD_WEAK", "Password too weak",
                          "Password must contain letters AND numbers")
    return value


def check_webhook_url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    ok = False
    if isinstance(value, str) and len(value) <= 2048 and not any(c.isspace() for c in value):
        try:
            parts = urlsplit(value)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
            _ = parts.port  # a bad port raises
        except ValueError:
            ok = False
    if not ok:
        raise bad_request("INVALID_WEBHOOK_URL", "Invalid webhook_url",
                          "webhook_url must be an absolute http:// or https:// URL")
    assert isinstance(value, str)
    return value


def _optional_string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise bad_request("INVALID_FIELDS", "Invalid field type", f"{name} must be a string")
    return value


@dataclass(frozen=True)
class CreateSpec:
    hostname: str
    plan: Plan
    location_code: str
    template: Template
    root_password: str
    ssh_key: str | None
    webhook_url: str | None
    webhook_secret: str | None


def check_create(body: dict[str, Any], check_location: Callable[[str], object]) -> CreateSpec:
    """Everything but the balance (the engine's); ``check_location(code)`` raises when
    the (lowercased) location is unknown or unavailable."""
    missing = [f for f in REQUIRED_CREATE_FIELDS if _missing(body.get(f))]
    if missing:
        raise bad_request("MISSING_FIELDS", "Required fields not provided",
                          f"Missing required fields: {', '.join(missing)}")
    hostname = check_hostname(body["hostname"])
    plan = check_plan(body["plan_id"])
    location = body["location_code"]
    if not isinstance(location, str):
        raise location_not_found(location)
    location = location.strip().lower()
    check_location(location)
    template = check_template(body["template_id"])
    password = check_password(body["root_password"])
    webhook_url = check_webhook_url(body.get("webhook_url"))
    webhook_secret = _optional_string(body, "webhook_secret")
    ssh_key = _optional_string(body, "ssh_key")
    if ssh_key is not None and not _SSH_KEY.match(ssh_key.strip()):
        raise bad_request("INVALID_SSH_KEY", "Invalid SSH key",
                          "ssh_key must be an OpenSSH public key (ssh-rsa, ssh-ed25519, "
                          "ecdsa-sha2-nistp256/384/521 ...)")
    return CreateSpec(hostname, plan, location, template, password,
                      ssh_key.strip() if ssh_key else None, webhook_url, webhook_secret)


def location_not_found(code: Any, *, unavailable: bool = False) -> CyberPanelError:
    message = (f"Location {code!r} is not available for new VPS instances" if unavailable
               else f"Location {code!r} not found; see GET /api/v1/vps/locations")
    return bad_request("LOCATION_NOT_FOUND", "Invalid location_code", message)


@dataclass(frozen=True)
class SnapshotSpec:
    name: str
    description: str
    include_ram: bool


def check_snapshot(body: dict[str, Any]) -> SnapshotSpec:
    name = body.get("name")
    if _missing(name):
        raise bad_request("MISSING_FIELDS", "Required fields not provided",
                          "Missing required fields: name")
    if (not isinstance(name, str) or len(name) > SNAPSHOT_NAME_MAX
            or not SNAPSHOT_NAME.match(name)):
        raise bad_request("INVALID_SNAPSHOT_NAME", "Invalid snapshot name",
                          f"Snapshot name must be 1-{SNAPSHOT_NAME_MAX} characters: letters, "
                          "digits and underscores")
    description = body.get("description")
    if description is None:
        description = ""
    if not isinstance(description, str) or len(description) > SNAPSHOT_DESCRIPTION_MAX:
        raise bad_request("INVALID_FIELDS", "Invalid field type",
                          f"description must be a string of at most "
                          f"{SNAPSHOT_DESCRIPTION_MAX} characters")
    include_ram = body.get("include_ram", False)
    if include_ram is None:
        include_ram = False
    if not isinstance(include_ram, bool):
        raise bad_request("INVALID_FIELDS", "Invalid field type", "include_ram must be a boolean")
    return SnapshotSpec(name, description, include_ram)
