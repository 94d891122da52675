"""Krova's in-memory state and the asynchronous lifecycle behind the API.

State flows (delays are simulated seconds, see :class:`KrovaSettings`):

* create: ``pending`` -(provision_delay)-> ``booting`` -(boot_delay)-> ``running``.  The
  first boot assigns ``publicIpv4`` (the region's shared gateway) and the SSH mapping
  (``isSsh``, cubePort 22, a host port from the pool).
* sleep / power-off: ``running`` -> ``stopping`` -(stop_delay)-> ``stopped``.
* wake: ``stopped`` -> ``booting`` -(boot_delay)-> ``running``.
* restart: ``running`` -> ``stopping`` -> ``booting`` -> ``running``.
* restore: ``stopping`` -(stop_delay + restore_delay)-> ``booting`` -> ``running``.
* delete: ``stopping`` -(delete_delay)-> ``deleted`` (ports freed, mappings, domains and
  snapshots removed, ``cube.deleted`` fired) -(purge_delay)-> gone (404).

A boot ends in ``error`` instead of ``running`` while ``fail_next_boots`` is positive or
with probability ``boot_failure_rate``.  Every Cube runs at most one lifecycle task;
starting another (delete during provisioning, a forced state) cancels the previous one.

Events (webhooks): ``cube.created``; ``cube.running`` on every transition to running;
``cube.sleeping`` *and* ``cube.stopped`` on every transition to stopped (the seed's and
the spec's name for the same thing; each endpoint gets the ones it subscribed to);
``cube.error``; ``cube.deleted``; ``cube.cold_restarted``; ``snapshot.created`` (on
completion) / ``snapshot.deleted`` / ``snapshot.restored``; ``domain.added`` /
``domain.active`` / ``domain.removed``; ``tcp_mapping.added`` / ``.removed`` /
``.updated``.

Every delivery carries ``X-Krova-Signature``, in the format ``webhook_signature`` picks:
``sha256`` (the seed's, :func:`sign`) or ``v1`` (Krova's current one, :func:`sign_v1`,
stamped with the wall-clock time the delivery is built).  Retries of a delivery resend
the same headers and body.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import logging
import random
import secrets
import time
from collections.abc import Coroutine
from dataclasses import dataclass, fields
from typing import Any

from ..common.clock import SimClock, utc_now_iso
from ..common.errors import ApiError, ConfigError
from ..common.ids import new_id
from ..common.webhooks import WebhookDispatcher
from .catalog import IMAGES_BY_ID, REGIONS_BY_SLUG
from .models import (
    CUBE_STATES,
    Cube,
    Domain,
    Snapshot,
    Space,
    TcpMapping,
    Webhook,
    WhitelistEntry,
)
from .validation import CubeSpec, DomainSpec, TcpMappingSpec

log = logging.getLogger(__name__)

SSH_PORT = 22

# Formats of the ``X-Krova-Signature`` header, see :func:`sign` and :func:`sign_v1`.
WEBHOOK_SIGNATURES = ("sha256", "v1")

# String knobs and the values each accepts.
_CHOICES: dict[str, tuple[str, ...]] = {"webhook_signature": WEBHOOK_SIGNATURES}


@dataclass
class KrovaSettings:
    """Provider knobs, changeable at runtime through ``PUT /_sim/config``."""

    provision_delay: float = 2.0
    boot_delay: float = 2.0
    stop_delay: float = 1.0
    delete_delay: float = 3.0
    purge_delay: float = 2.0
    snapshot_delay: float = 5.0
    restore_delay: float = 3.0
    domain_delay: float = 5.0
    ssh_port_delay: float = 2.0
    boot_failure_rate: float = 0.0
    fail_next_boots: int = 0
    insufficient_credits: bool = False
    host_port_min: int = 30000
    host_port_max: int = 32767
    webhook_signature: str = "sha256"

    def __post_init__(self) -> None:
        for key, choices in _CHOICES.items():
            if getattr(self, key) not in choices:
                raise ConfigError(f"{key} must be one of {', '.join(choices)}")

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def apply(self, changes: dict[str, Any]) -> set[str]:
        """Validate and apply the keys this class knows; return them.  All-or-nothing."""
        known = {f.name: f for f in fields(self)}
        updates: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in known:
                continue
            current = getattr(self, key)
            if key in _CHOICES:
                if value not in _CHOICES[key]:
                    raise ConfigError(f"{key} must be one of {', '.join(_CHOICES[key])}")
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ConfigError(f"{key} must be a boolean")
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ConfigError(f"{key} must be a non-negative integer")
            elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{key} must be a non-negative number")
            updates[key] = value
        rate = updates.get("boot_failure_rate", self.boot_failure_rate)
        if rate > 1:
            raise ConfigError("boot_failure_rate must be within 0..1")
        low = updates.get("host_port_min", self.host_port_min)
        high = updates.get("host_port_max", self.host_port_max)
        if not 1 <= low <= high <= 65535:
            raise ConfigError("host_port_min..host_port_max must be a range within 1..65535")
        for key, value in updates.items():
            setattr(self, key, float(value) if isinstance(getattr(self, key), float) else value)
        return set(updates)


def sign(secret: str, body: bytes) -> str:
    """The ``X-Krova-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_v1(secret: str, body: bytes, timestamp: int) -> str:
    """Krova's current ``X-Krova-Signature`` value: ``t=<timestamp>,v1=<hex>``, where the
    hex is HMAC-SHA256 (key ``secret``) of ``b"<timestamp>." + body``; ``timestamp`` is
    unix seconds."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class KrovaEngine:
    def __init__(
        self,
        clock: SimClock,
        dispatcher: WebhookDispatcher,
        spaces: dict[str, Space],
        settings: KrovaSettings | None = None,
    ) -> None:
        self.clock = clock
        self.dispatcher = dispatcher
        self.spaces = spaces
        self.settings = settings or KrovaSettings()
        self.cubes: dict[str, Cube] = {}
        self.mappings: dict[str, TcpMapping] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self.domains: dict[str, Domain] = {}
        self.webhooks: dict[str, Webhook] = {}
        self._used_ports: dict[str, set[int]] = {}  # server domain -> host ports in use
        self._lowest_free_hint: dict[str, int] = {}  # server domain -> no port below it is free
        self._ssh_pending: set[str] = set()  # cube ids with an SSH port change running
        self._tasks: set[asyncio.Task[None]] = set()
        self._seq = 0
        self._random = random.Random()

    # ---- background tasks ------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._guard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @staticmethod
    async def _guard(coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in a lifecycle step must not vanish silently
            log.exception("cloudsim krova: background task failed")

    def _run_op(self, cube: Cube, coro: Coroutine[Any, Any, None]) -> None:
        """Make ``coro`` the Cube's only lifecycle task."""
        self._cancel_op(cube)
        cube.op_task = self.spawn(coro)

    def _cancel_op(self, cube: Cube) -> None:
        task = cube.op_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
        cube.op_task = None

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- events ------------------------------------------------------------------------

    def emit(self, space_id: str, event: str, data: dict[str, Any]) -> None:
        subscribers = [
            w for w in self.webhooks.values()
            if w.space_id == space_id and w.enabled and event in w.events
        ]
        if not subscribers:
            return
        payload = {
            "id": new_id("evt"),
            "event": event,
            "createdAt": utc_now_iso(),
            "spaceId": space_id,
            "data": data,
        }
        body = json.dumps(payload, separators=(",", ":")).encode()
        for hook in subscribers:
            delivery_id = new_id("dlv")
            headers = {
                "Content-Type": "application/json",
                "X-Krova-Signature": self._signature(hook.secret, body),
                "X-Krova-Event": event,
                "X-Krova-Delivery": delivery_id,
            }
            self.dispatcher.deliver(hook.id, hook.url, event, body, headers, delivery_id=delivery_id)

    def _signature(self, secret: str, body: bytes) -> str:
        """The delivery's signature header, built once; its retries reuse it unchanged."""
        if self.settings.webhook_signature == "v1":
            return sign_v1(secret, body, int(time.time()))
        return sign(secret, body)

    def _set_state(self, cube: Cube, state: str) -> None:
        previous = cube.state
        cube.state = state
        cube.touch()
        if previous == state:
            return
        if state == "running":
            self.emit(cube.space_id, "cube.running", cube.event_data())
        elif state == "stopped":
            self.emit(cube.space_id, "cube.sleeping", cube.event_data())
            self.emit(cube.space_id, "cube.stopped", cube.event_data())
        elif state == "error":
            self.emit(cube.space_id, "cube.error", cube.event_data())
        elif state == "deleted":
            self.emit(cube.space_id, "cube.deleted", cube.event_data())

    # ---- host ports --------------------------------------------------------------------

    def _allocate_port(self, server: str) -> int:
        used = self._used_ports.setdefault(server, set())
        # The lowest free port, found from the lowest one that may be free: a scan from the
        # pool's start would cost O(ports in use) per allocation with thousands of Cubes.
        # (The wrap-around covers a pool whose bounds were changed at runtime.)
        low, high = self.settings.host_port_min, self.settings.host_port_max
        start = min(max(low, self._lowest_free_hint.get(server, 0)), high + 1)
        for candidate in itertools.chain(range(start, high + 1), range(low, start)):
            if candidate not in used:
                used.add(candidate)
                self._lowest_free_hint[server] = candidate + 1
                return candidate
        raise ApiError(503, "No host ports available on this server")

    def _release_port(self, server: str, host_port: int) -> None:
        self._used_ports.get(server, set()).discard(host_port)
        self._lowest_free_hint[server] = min(self._lowest_free_hint.get(server, host_port), host_port)

    # ---- lookups -----------------------------------------------------------------------

    def cube(self, space_id: str, cube_id: str) -> Cube:
        cube = self.cubes.get(cube_id)
        if cube is None or cube.space_id != space_id:
            raise ApiError(404, "Cube not found")
        return cube

    def live_cube(self, space_id: str, cube_id: str) -> Cube:
        """A Cube that is not being deleted (mutations of its children need one)."""
        cube = self.cube(space_id, cube_id)
        if cube.deleting:
            raise ApiError(422, "Cube is being deleted")
        return cube

    def cubes_of(self, space_id: str) -> list[Cube]:
        return sorted((c for c in self.cubes.values() if c.space_id == space_id),
                      key=lambda c: c.seq)

    def mappings_of(self, cube_id: str) -> list[TcpMapping]:
        rows = [m for m in self.mappings.values() if m.cube_id == cube_id]
        return sorted(rows, key=lambda m: (not m.is_ssh, m.created_at, m.id))

    def ssh_mapping(self, cube_id: str) -> TcpMapping | None:
        return next((m for m in self.mappings.values() if m.cube_id == cube_id and m.is_ssh), None)

    # ---- cubes -------------------------------------------------------------------------

    def create_cube(self, space_id: str, spec: CubeSpec) -> Cube:
        if self.settings.insufficient_credits:
            raise ApiError(422, "Insufficient credits to create a Cube")
        region = REGIONS_BY_SLUG[spec.region]
        self._seq += 1
        cube = Cube(
            id=new_id("cube"),
            space_id=space_id,
            name=spec.name,
            region=spec.region,
            image=spec.image,
            vcpu=spec.vcpu,
            ram_gb=spec.ram_gb,
            disk_gb=spec.disk_gb,
            ssh_public_key=spec.ssh_public_key,
            ssh_user=IMAGES_BY_ID[spec.image].default_user,
            server_domain=region.server_domain,
            user_data=spec.user_data,
            termination_protection=spec.termination_protection,
            seq=self._seq,
        )
        if spec.termination_protection:
            cube.tp_changed_at = cube.created_at
            cube.tp_changed_by = "user:api"
        self.cubes[cube.id] = cube
        self.emit(space_id, "cube.created", cube.event_data())
        self._run_op(cube, self._provision(cube))
        return cube

    async def _provision(self, cube: Cube) -> None:
        await self.clock.sleep(self.settings.provision_delay)
        self._set_state(cube, "booting")
        await self._boot(cube)

    async def _boot(self, cube: Cube) -> None:
        """``booting`` -> ``running`` (or ``error``); the Cube is already booting."""
        await self.clock.sleep(self.settings.boot_delay)
        self._finish_boot(cube)

    def _boot_fails(self) -> bool:
        if self.settings.fail_next_boots > 0:
            self.settings.fail_next_boots -= 1
            return True
        rate = self.settings.boot_failure_rate
        return rate > 0 and self._random.random() < rate

    def _finish_boot(self, cube: Cube) -> None:
        if self._boot_fails():
            self._set_state(cube, "error")
            return
        try:
            self._ensure_network(cube)
        except ApiError:
            log.warning("cloudsim krova: no host port for the SSH mapping of %s", cube.id)
            self._set_state(cube, "error")
            return
        self._set_state(cube, "running")

    def _ensure_network(self, cube: Cube) -> None:
        """First boot: the shared gateway address and the automatic SSH mapping."""
        cube.public_ipv4 = REGIONS_BY_SLUG[cube.region].gateway_ipv4
        if not cube.host_keys:
            cube.host_keys = [{
                "type": "ssh-ed25519",
                "key": "AAAAC3NzaC1lZDI1NTE5AAAAI" + secrets.token_urlsafe(32)[:43],
            }]
        if self.ssh_mapping(cube.id) is None:
            host_port = self._allocate_port(cube.server_domain)
            mapping = TcpMapping(
                id=new_id("tcp"),
                cube_id=cube.id,
                server=cube.server_domain,
                cube_port=SSH_PORT,
                host_port=host_port,
                host=cube.hostname,
                label="ssh",
                is_ssh=True,
                udp_enabled=False,
                whitelist=[],
            )
            self.mappings[mapping.id] = mapping

    def sleep_cube(self, cube: Cube) -> None:
        if cube.deleting or cube.state != "running":
            raise ApiError(422, f"Cube is {cube.state}; only a running Cube can be put to sleep")
        self._set_state(cube, "stopping")
        self._run_op(cube, self._stop_to_sleep(cube))

    async def _stop_to_sleep(self, cube: Cube) -> None:
        await self.clock.sleep(self.settings.stop_delay)
        self._set_state(cube, "stopped")

    def wake_cube(self, cube: Cube) -> None:
        if cube.deleting or cube.state != "stopped":
            raise ApiError(422, f"Cube is {cube.state}; only a stopped Cube can be woken")
        if self.settings.insufficient_credits:
            raise ApiError(422, "Insufficient credits for at least one hour of runtime")
        self._set_state(cube, "booting")
        self._run_op(cube, self._boot(cube))

    def restart_cube(self, cube: Cube) -> None:
        if cube.restarting:
            raise ApiError(409, "A restart is already in progress for this Cube")
        if cube.deleting or cube.state != "running":
            raise ApiError(409, f"Cube is {cube.state}; only a running Cube can be restarted")
        cube.restarting = True
        self._set_state(cube, "stopping")
        self._run_op(cube, self._restart(cube))

    async def _restart(self, cube: Cube) -> None:
        try:
            await self.clock.sleep(self.settings.stop_delay)
            self._set_state(cube, "booting")
            await self._boot(cube)
        finally:
            cube.restarting = False
        if cube.state == "running":
            self.emit(cube.space_id, "cube.cold_restarted", cube.event_data())

    def delete_cube(self, cube: Cube) -> None:
        if cube.deleting:
            return  # deleting an already-deleting Cube is a no-op success
        if cube.termination_protection:
            raise ApiError(
                422, "Cube has termination protection enabled; disable it before deleting"
            )
        cube.deleting = True
        cube.restarting = False
        self._set_state(cube, "stopping")
        self._run_op(cube, self._delete(cube))

    async def _delete(self, cube: Cube) -> None:
        await self.clock.sleep(self.settings.delete_delay)
        self._teardown(cube)
        self._set_state(cube, "deleted")
        await self.clock.sleep(self.settings.purge_delay)
        self.cubes.pop(cube.id, None)

    def _teardown(self, cube: Cube) -> None:
        """Free ports and drop everything hanging off the Cube."""
        for mapping in [m for m in self.mappings.values() if m.cube_id == cube.id]:
            self._release_port(mapping.server, mapping.host_port)
            del self.mappings[mapping.id]
        for snap in [s for s in self.snapshots.values() if s.cube_id == cube.id]:
            if snap.task is not None:
                snap.task.cancel()
            del self.snapshots[snap.id]
        for domain in [d for d in self.domains.values() if d.cube_id == cube.id]:
            del self.domains[domain.id]
        self._ssh_pending.discard(cube.id)

    def set_termination_protection(self, cube: Cube, enabled: bool) -> None:
        if cube.termination_protection != enabled:
            cube.termination_protection = enabled
            cube.tp_changed_at = utc_now_iso()
            cube.tp_changed_by = "user:api"
            cube.touch()

    def force_state(self, cube: Cube, state: str) -> None:
        """Admin: put a Cube into ``state`` as if the platform had done it out of band."""
        if state not in CUBE_STATES:
            raise ApiError(400, f"state must be one of {', '.join(CUBE_STATES)}")
        self._cancel_op(cube)
        cube.restarting = False
        if state == "deleted":
            cube.deleting = True
            self._teardown(cube)
            self._set_state(cube, "deleted")
            self.cubes.pop(cube.id, None)
            return
        cube.deleting = False
        if state == "running":
            self._ensure_network(cube)
        self._set_state(cube, state)

    # ---- TCP mappings and SSH ---------------------------------------------------------

    def create_mapping(self, cube: Cube, spec: TcpMappingSpec) -> TcpMapping:
        if any(m.cube_port == spec.cube_port for m in self.mappings_of(cube.id)):
            raise ApiError(409, f"cubePort {spec.cube_port} is already mapped on this Cube")
        host_port = self._allocate_port(cube.server_domain)
        mapping = TcpMapping(
            id=new_id("tcp"),
            cube_id=cube.id,
            server=cube.server_domain,
            cube_port=spec.cube_port,
            host_port=host_port,
            host=cube.hostname,
            label=spec.label,
            is_ssh=False,
            udp_enabled=spec.udp_enabled,
            whitelist=[WhitelistEntry(new_id("wl", 12), c) for c in spec.whitelist],
        )
        self.mappings[mapping.id] = mapping
        self.emit(cube.space_id, "tcp_mapping.added", self._mapping_event(cube, mapping))
        return mapping

    @staticmethod
    def _mapping_event(cube: Cube, mapping: TcpMapping) -> dict[str, Any]:
        return {"id": mapping.id, "cubeId": cube.id, "cubePort": mapping.cube_port,
                "hostPort": mapping.host_port, "isSsh": mapping.is_ssh}

    def delete_mapping(self, cube: Cube, mapping_id: str) -> None:
        mapping = self.mappings.get(mapping_id)
        if mapping is None or mapping.cube_id != cube.id:
            raise ApiError(404, "TCP mapping not found")
        if mapping.is_ssh:
            raise ApiError(
                400,
                "The SSH mapping cannot be deleted; use PUT /ssh-port to change its port",
            )
        self._release_port(mapping.server, mapping.host_port)
        del self.mappings[mapping.id]
        self.emit(cube.space_id, "tcp_mapping.removed", self._mapping_event(cube, mapping))

    def change_ssh_port(self, cube: Cube, new_port: int) -> None:
        ssh = self.ssh_mapping(cube.id)
        if ssh is None:
            raise ApiError(422, "Cube has no SSH mapping yet; it is created at first boot")
        if cube.id in self._ssh_pending:
            raise ApiError(409, "Another SSH port change is already in progress on this Cube")
        if any(m.cube_port == new_port and not m.is_ssh for m in self.mappings_of(cube.id)):
            raise ApiError(409, f"cubePort {new_port} is already used by another TCP mapping")
        if ssh.cube_port == new_port:
            return
        ssh.cube_port = new_port
        ssh.status = "pending"
        ssh.updated_at = utc_now_iso()
        self._ssh_pending.add(cube.id)
        self.spawn(self._apply_ssh_port(cube, ssh))

    async def _apply_ssh_port(self, cube: Cube, ssh: TcpMapping) -> None:
        try:
            await self.clock.sleep(self.settings.ssh_port_delay)
            ssh.status = "active"
            ssh.updated_at = utc_now_iso()
            self.emit(cube.space_id, "tcp_mapping.updated", self._mapping_event(cube, ssh))
        finally:
            self._ssh_pending.discard(cube.id)

    # ---- snapshots and restore ---------------------------------------------------------

    def snapshots_of(self, cube_id: str) -> list[Snapshot]:
        rows = [s for s in self.snapshots.values() if s.cube_id == cube_id]
        return sorted(rows, key=lambda s: (s.created_at, s.id), reverse=True)

    def create_snapshot(self, cube: Cube, name: str | None) -> Snapshot:
        if cube.state not in ("running", "stopped"):
            raise ApiError(
                422, f"Cube is {cube.state}; snapshots need a running or stopped Cube"
            )
        if any(s.status == "pending" for s in self.snapshots_of(cube.id)):
            raise ApiError(409, "A snapshot is already in progress for this Cube")
        created = utc_now_iso()
        snap = Snapshot(
            id=new_id("snap"),
            cube_id=cube.id,
            space_id=cube.space_id,
            name=name or f"{cube.name}-{created[:19].replace(':', '').replace('T', '-')}",
            created_at=created,
        )
        self.snapshots[snap.id] = snap
        snap.task = self.spawn(self._complete_snapshot(cube, snap))
        return snap

    async def _complete_snapshot(self, cube: Cube, snap: Snapshot) -> None:
        await self.clock.sleep(self.settings.snapshot_delay)
        # Compressed rootfs: a fraction of the disk, varying a little per snapshot.
        snap.size_bytes = int(cube.disk_gb * 1024**3 * 0.08) + self._random.randrange(1 << 24)
        snap.status = "complete"
        snap.completed_at = utc_now_iso()
        self.emit(cube.space_id, "snapshot.created", snap.to_json())

    def delete_snapshot(self, cube: Cube, snapshot_id: str) -> None:
        snap = self.snapshots.get(snapshot_id)
        if snap is None or snap.cube_id != cube.id:
            raise ApiError(404, "Snapshot not found")
        if snap.task is not None and not snap.task.done():
            snap.task.cancel()
        del self.snapshots[snap.id]
        self.emit(cube.space_id, "snapshot.deleted", snap.to_json())

    def restore(self, cube: Cube, snapshot_id: str) -> None:
        snap = self.snapshots.get(snapshot_id)
        if snap is None or snap.space_id != cube.space_id:
            raise ApiError(404, "Snapshot not found")
        if snap.cube_id != cube.id:
            raise ApiError(422, "Snapshot belongs to another Cube")
        if snap.status != "complete":
            raise ApiError(422, "Snapshot is not complete yet")
        if cube.deleting or cube.state not in ("running", "stopped", "error"):
            raise ApiError(
                422, f"Cube is {cube.state}; restore needs a running, stopped or error Cube"
            )
        self._set_state(cube, "stopping")
        self._run_op(cube, self._restore(cube, snap))

    async def _restore(self, cube: Cube, snap: Snapshot) -> None:
        await self.clock.sleep(self.settings.stop_delay + self.settings.restore_delay)
        self._set_state(cube, "booting")
        await self._boot(cube)
        if cube.state == "running":
            self.emit(cube.space_id, "snapshot.restored", snap.to_json())

    # ---- domains -----------------------------------------------------------------------

    def domains_of(self, cube_id: str) -> list[Domain]:
        rows = [d for d in self.domains.values() if d.cube_id == cube_id]
        return sorted(rows, key=lambda d: (d.created_at, d.id))

    def add_domain(self, cube: Cube, spec: DomainSpec) -> Domain:
        if any(d.domain == spec.domain for d in self.domains.values()):
            raise ApiError(409, f"Domain {spec.domain} is already attached")
        domain = Domain(
            id=new_id("dm"),
            cube_id=cube.id,
            domain=spec.domain,
            port=spec.port,
            security_headers_mode=spec.security_headers_mode,
            response_header_timeout_secs=spec.response_header_timeout_secs,
            max_request_body_mb=spec.max_request_body_mb,
            response_compression=spec.response_compression,
        )
        self.domains[domain.id] = domain
        self.emit(cube.space_id, "domain.added", self._domain_event(domain))
        self.spawn(self._activate_domain(cube, domain))
        return domain

    @staticmethod
    def _domain_event(domain: Domain) -> dict[str, Any]:
        return {"id": domain.id, "cubeId": domain.cube_id, "domain": domain.domain,
                "port": domain.port, "status": domain.status}

    async def _activate_domain(self, cube: Cube, domain: Domain) -> None:
        await self.clock.sleep(self.settings.domain_delay)
        if self.domains.get(domain.id) is not domain:
            return  # removed meanwhile
        domain.status = "active"
        domain.updated_at = utc_now_iso()
        self.emit(cube.space_id, "domain.active", self._domain_event(domain))

    def domain(self, cube: Cube, domain_id: str) -> Domain:
        domain = self.domains.get(domain_id)
        if domain is None or domain.cube_id != cube.id:
            raise ApiError(404, "Domain not found")
        return domain

    def remove_domain(self, cube: Cube, domain_id: str) -> None:
        domain = self.domain(cube, domain_id)
        del self.domains[domain.id]
        self.emit(cube.space_id, "domain.removed", self._domain_event(domain))

    # ---- webhooks ----------------------------------------------------------------------

    def create_webhook(self, space_id: str, url: str, events: list[str]) -> Webhook:
        hook = Webhook(
            id=new_id("wh"), space_id=space_id, url=url, events=events,
            secret=secrets.token_hex(32),
        )
        self.webhooks[hook.id] = hook
        return hook

    def webhook(self, space_id: str, webhook_id: str) -> Webhook:
        hook = self.webhooks.get(webhook_id)
        if hook is None or hook.space_id != space_id:
            raise ApiError(404, "Webhook not found")
        return hook

    def delete_webhook(self, space_id: str, webhook_id: str) -> None:
        hook = self.webhook(space_id, webhook_id)
        del self.webhooks[hook.id]
        self.dispatcher.forget_endpoint(hook.id)
