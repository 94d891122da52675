"""LunaNode's resources as held in memory, and their JSON shapes.

Field names are the ones LunaNode's clients read (``cloug``, ``lobster``, the Ruby and
Python libraries, ``lndynamic_whmcs``): ids are numeric strings and so is nearly every
number.  VM status words (``status_nohtml``) with the raw OpenStack-style status and
colour LunaNode pairs them with:

================  ==================  ======  ==================================
status_nohtml     status_raw          colour  when
================  ==================  ======  ==================================
``Building``      build               orange  after vm/create, until booted
``Online``        active              green   running
``Offline``       shutoff             red     stopped
``Stopping``      active              orange  vm/stop in progress
``Starting``      shutoff             orange  vm/start in progress
``Rebooting``     reboot              orange  vm/reboot in progress
``Rebuilding``    rebuild             orange  vm/reimage in progress
``Resizing``      resize              orange  vm/resize in progress
``Rescuing``      active              orange  vm/rescue in progress
``Rescue``        rescue              orange  booted into the rescue system
``Shelving``      active              orange  vm/shelve in progress
``Shelved``       shelved_offloaded   red     shelved (no compute host)
``Unshelving``    shelved_offloaded   orange  vm/unshelve in progress
``Deleting``      deleted             red     vm/delete accepted, gone after a delay
``Error``         error               red     a failed build (or forced)
================  ==================  ======  ==================================

Clients compare ``Online`` and ``Offline`` and lower-case everything else.
"""

from __future__ import annotations

import asyncio
import html
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .catalog import PLANS_BY_ID

# status_nohtml -> (status_raw, colour, task_state)
STATUSES: dict[str, tuple[str, str, str]] = {
    "Building": ("build", "orange", "spawning"),
    "Online": ("active", "green", ""),
    "Offline": ("shutoff", "red", ""),
    "Stopping": ("active", "orange", "powering-off"),
    "Starting": ("shutoff", "orange", "powering-on"),
    "Rebooting": ("reboot", "orange", "rebooting"),
    "Rebuilding": ("rebuild", "orange", "rebuilding"),
    "Resizing": ("resize", "orange", "resize_migrating"),
    "Rescuing": ("active", "orange", "rescuing"),
    "Rescue": ("rescue", "orange", ""),
    "Shelving": ("active", "orange", "shelving"),
    "Shelved": ("shelved_offloaded", "red", ""),
    "Unshelving": ("shelved_offloaded", "orange", "spawning"),
    "Deleting": ("deleted", "red", "deleting"),
    "Error": ("error", "red", ""),
}
STABLE_STATUSES = ("Online", "Offline", "Rescue", "Shelved", "Error")

# Glance-style image statuses: queued -> saving -> active (or killed); clients treat
# active as usable, error/killed as failed, anything else as pending.
IMAGE_STATUSES = ("queued", "saving", "active", "killed", "error", "deleted")


def timestamp(at: float) -> str:
    """``2026-05-12 08:47:12`` (UTC), the panel's format."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def status_html(word: str, colour: str) -> str:
    """The HTML-escaped ``info.status`` older clients (lobster) parse the word out of:
    ``&lt;font color=&quot;green&quot;&gt;&lt;b&gt;Online&lt;/b&gt;&lt;/font&gt;``."""
    return html.escape(f'<font color="{colour}"><b>{word}</b></font>', quote=True)


@dataclass
class Vm:
    id: str
    hostname: str
    region: str
    plan_id: str
    image_id: str
    image_name: str
    username: str | None
    password: str
    seq: int
    status: str = "Building"
    key_id: str | None = None
    security_groups: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    net_id: str | None = None
    affinity_group: str | None = None
    private_ip: str = ""
    public_ip: str = ""  # reserved at create; shown from the first boot on
    ip_shown: bool = False
    ipv6: str = ""
    diskswap: bool = False
    created_at: float = field(default_factory=time.time)
    op: str | None = None
    op_task: asyncio.Task[None] | None = field(default=None, repr=False)
    snapshotting: str | None = None  # image id of a snapshot in progress
    vnc_token: str = ""

    def row(self) -> dict[str, Any]:
        """The ``vm/list`` row (also ``vm/info``'s ``extra``): no power state."""
        plan = PLANS_BY_ID[self.plan_id]
        return {
            "vm_id": self.id,
            "name": self.hostname,
            "region": self.region,
            "hostname": self.hostname,
            "primaryip": self.shown_ip,
            "privateip": self.private_ip,
            "plan_id": self.plan_id,
            "ram": str(plan.ram_mb),
            "vcpu": str(plan.vcpu),
            "storage": str(plan.storage_gb),
            "bandwidth": str(plan.bandwidth_gb),
        }

    @property
    def shown_ip(self) -> str:
        return self.public_ip if self.ip_shown else ""

    def login_details(self) -> str:
        if self.username is None:
            return f"password: {self.password}"
        return f"username: {self.username}; password: {self.password}"

    def info(self) -> dict[str, Any]:
        raw, colour, task_state = STATUSES[self.status]
        addresses: list[dict[str, str]] = []
        if self.private_ip:
            addresses.append({"addr": self.private_ip, "version": "4", "external": ""})
        if self.ip_shown:
            addresses.append({"addr": self.public_ip, "version": "4", "external": "1"})
            addresses.append({"addr": self.ipv6, "version": "6", "external": "1"})
        return {
            "hostname": self.hostname,
            "ip": self.shown_ip,
            "privateip": self.private_ip,
            "ipv6": [self.ipv6] if self.ip_shown else [],
            "additionalip": [],
            "additionalprivateip": [],
            "addresses": addresses,
            "status": status_html(self.status, colour),
            "status_nohtml": self.status,
            "status_raw": raw,
            "status_color": colour,
            "task_state": task_state,
            "image": self.image_name,
            "os": self.image_name,
            "security_groups": list(self.security_groups),
            "securitygroups": list(self.security_groups),
            "login_details": self.login_details(),
            "diskswap": "yes" if self.diskswap else "no",
            "bandwidthUsedGB": "0.00",
            "time_created": timestamp(self.created_at),
        }


@dataclass
class Image:
    """A private image: a VM snapshot (``vm/snapshot``)."""

    id: str
    name: str
    region: str
    source_vm: str
    username: str | None  # login user of the source image, for VMs booted from it
    size_bytes: int
    seq: int
    status: str = "queued"
    created_at: float = field(default_factory=time.time)
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "image_id": self.id,
            "name": self.name,
            "status": self.status,
            "size": str(self.size_bytes if self.status == "active" else 0),
            "region": self.region,
        }

    def details(self) -> dict[str, Any]:
        return {**self.to_json(), "source_vm_id": self.source_vm,
                "time_created": timestamp(self.created_at)}


@dataclass
class SshKey:
    id: str
    label: str
    value: str
    seq: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.label, "label": self.label, "value": self.value}


@dataclass
class Rule:
    id: str
    group_id: str
    direction: str  # ingress | egress
    type: str  # ipv4 | ipv6
    protocol: str  # any | tcp | udp | icmp
    remote_type: str  # cidr | group
    remote_value: str
    port_min: str
    port_max: str
    label: str

    def to_json(self) -> dict[str, Any]:
        return {
            "rule_id": self.id,
            "group_id": self.group_id,
            "direction": self.direction,
            "type": self.type,
            "protocol": self.protocol,
            "remote_type": self.remote_type,
            "remote_value": self.remote_value,
            "port_min": self.port_min,
            "port_max": self.port_max,
            "label": self.label,
        }


@dataclass
class SecurityGroup:
    id: str
    name: str
    region: str
    seq: int
    rules: list[Rule] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"group_id": self.id, "name": self.name, "region": self.region}


@dataclass
class Script:
    """A startup script (``script/create``), run by ``vm/create scripts=...``."""

    id: str
    name: str
    content: str
    seq: int

    def to_json(self) -> dict[str, Any]:
        return {"script_id": self.id, "name": self.name}
