"""Helpers for tests that need a simulator (or a webhook receiver) on loopback.

* :func:`running_simulator`: a simulator in a background thread with its own event
  loop, usable from sync and async tests alike (the test talks HTTP to it).
* :func:`simulator_process`: the same through ``python -m cloudsim`` in a subprocess.
* :class:`WebhookReceiver`: a tiny aiohttp endpoint (http, or https with an
  ``ssl_context``) that records what it receives and answers with scripted statuses;
  :func:`verify_signature` checks Krova's signature, :func:`verify_nokyc_signature`
  NoKYC's.
* NoKYC: :func:`nokyc_test_simulator`, the ``NOKYC_*_TOKEN`` constants,
  :func:`nokyc_ssh_public_key`, :func:`sample_server_request` and
  :func:`wait_for_server_status`.
* LunaNode: :func:`lunanode_test_simulator`, :data:`LUNANODE_API_ID` /
  :data:`LUNANODE_API_KEY` (what ``running_simulator("lunanode")`` accepts by default),
  :func:`lunanode_form` (a signed request form), :func:`lunanode_call` and
  :func:`wait_for_vm_status`.
* Voltage Park: :func:`voltagepark_test_simulator`, :data:`VOLTAGEPARK_API_KEY` (what
  ``running_simulator("voltagepark")`` accepts by default) and
  :func:`wait_for_voltagepark_status`.
* CyberPanel: :func:`cyberpanel_test_simulator`, :data:`CYBERPANEL_API_KEY` (scopes
  ``all``; what ``running_simulator("cyberpanel")`` accepts by default),
  :func:`cyberpanel_key` (a fresh well-formed key), :func:`sample_vps_request`,
  :func:`wait_for_cyberpanel_status`, :func:`wait_for_cyberpanel_deployment` and
  :func:`verify_cyberpanel_signature`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import re
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from aiohttp import web

from . import PROVIDERS
from .common.server import SimServer
from .cyberpanel import CyberPanelSimulator
from .cyberpanel import verify_webhook as _cyberpanel_verify
from .krova import KrovaSimulator
from .lunanode import LunaNodeSimulator, signed_form
from .nokyc import NoKycSimulator
from .nokyc.webhooks import verify as _nokyc_verify
from .voltagepark import DEFAULT_ORGANIZATION_ID as VOLTAGEPARK_ORGANIZATION_ID
from .voltagepark import VoltageParkSimulator

DEFAULT_API_KEY = "kro_test_key"
DEFAULT_SPACE_ID = "sp_test"
SAMPLE_SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3mHc2l9n0b6rYc0b4l8uYbq1o1J4p2iZ0cW5v9Xk8 dev@example"
)

# Two tenants and a read-only key, for tests of auth scoping.
OTHER_API_KEY = "kro_other_key"
OTHER_SPACE_ID = "sp_other"
VIEWER_API_KEY = "kro_view_key"  # read-only (cube.view) key of DEFAULT_SPACE_ID

# NoKYC: one account, a token per scope (write is what running_simulator registers
# for api_key).
NOKYC_TOKEN = "nkv_live_" + "w" * 12 + "0123456789abcdefghijklmnopqrstuvwxyz0123"
NOKYC_READ_TOKEN = "nkv_live_" + "r" * 12 + "0123456789abcdefghijklmnopqrstuvwxyz0123"
NOKYC_BILLING_TOKEN = "nkv_live_" + "b" * 12 + "0123456789abcdefghijklmnopqrstuvwxyz0123"
NOKYC_TOKENS = {NOKYC_TOKEN: "write", NOKYC_READ_TOKEN: "read", NOKYC_BILLING_TOKEN: "billing"}

# LunaNode: the API ID (16 characters) and key (128) running_simulator("lunanode") and
# simulator_process("lunanode") use unless told otherwise.  The key's halves differ, so
# a client that sends the wrong half as api_partialkey fails.
LUNANODE_API_ID = "sim0apiid0000001"
LUNANODE_API_KEY = "0123456789abcdef" * 4 + "fedcba9876543210" * 4

# Voltage Park: the key running_simulator("voltagepark") and
# simulator_process("voltagepark") use unless told otherwise (Bearer and x-api-token).
VOLTAGEPARK_API_KEY = "vp_test_key_0123456789abcdef"

# CyberPanel: the key (scopes ``all``) running_simulator("cyberpanel") and
# simulator_process("cyberpanel") use unless told otherwise.
CYBERPANEL_API_KEY = "cyp_live_" + "0123456789abcdef" * 4

T = TypeVar("T")


def krova_test_simulator(**kwargs: Any) -> KrovaSimulator:
    """A Krova simulator for tests: both tenants and the viewer key registered, time 50x
    faster, rate limit off and every answer checked against the OpenAPI spec unless
    ``kwargs`` say otherwise."""
    options: dict[str, Any] = {"time_scale": 50.0, "rate_limit": 0, "validate_responses": True}
    options.update(kwargs)
    keys = {DEFAULT_API_KEY: DEFAULT_SPACE_ID, OTHER_API_KEY: OTHER_SPACE_ID,
            VIEWER_API_KEY: DEFAULT_SPACE_ID}
    return KrovaSimulator(keys, read_only_keys=[VIEWER_API_KEY], **options)


def sample_cube_request(**overrides: Any) -> dict[str, Any]:
    """A valid Krova create-Cube body (the seed's example); keys in ``overrides`` win."""
    body: dict[str, Any] = {
        "name": "my-api-server",
        "resources": {"vcpu": 2, "ramGb": 4, "diskGb": 30},
        "image": "ubuntu-24.04",
        "sshPublicKey": SAMPLE_SSH_KEY,
        "region": "eu-nuremberg",
    }
    body.update(overrides)
    return body


async def wait_for(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 5.0, interval: float = 0.02
) -> T:
    """Poll ``probe`` until it returns something truthy; ``TimeoutError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


async def wait_for_cube_state(
    client: httpx.AsyncClient, cube_id: str, state: str, *, timeout: float = 5.0
) -> dict[str, Any]:
    """Poll ``GET /cubes/{id}`` (``client`` is bound to ``.../spaces/{spaceId}``)."""

    async def probe() -> dict[str, Any] | None:
        response = await client.get(f"/cubes/{cube_id}")
        response.raise_for_status()
        cube: dict[str, Any] = response.json()["cube"]
        return cube if cube["state"] == state else None

    return await wait_for(probe, timeout=timeout)


async def create_cube(
    client: httpx.AsyncClient, *, wait: str | None = "running", **overrides: Any
) -> dict[str, Any]:
    """Create a Cube from :func:`sample_cube_request` and wait until it is in ``wait``."""
    response = await client.post("/cubes", json=sample_cube_request(**overrides))
    response.raise_for_status()
    cube: dict[str, Any] = response.json()["cube"]
    if wait is None:
        return cube
    return await wait_for_cube_state(client, cube["id"], wait)


@dataclass
class RunningSimulator:
    simulator: SimServer
    loop: asyncio.AbstractEventLoop

    @property
    def url(self) -> str:
        """API base URL, ending in ``/api/v1`` (Krova), ``/v1`` (NoKYC) or ``/api`` (LunaNode)."""
        return self.simulator.url

    @property
    def admin_url(self) -> str:
        return self.simulator.admin_url

    @property
    def port(self) -> int:
        return self.simulator.port

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the simulator's loop (its state is not thread-safe)."""

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)


def _make(
    provider: str, api_key: str | None, space_id: str | None, kwargs: dict[str, Any]
) -> SimServer:
    try:
        cls = PROVIDERS[provider]
    except KeyError:
        raise ValueError(f"unknown provider {provider!r}; known: {sorted(PROVIDERS)}") from None
    if provider == "nokyc":
        tokens = dict(kwargs.pop("tokens", None) or {})
        if api_key is not None:
            tokens.setdefault(api_key, "write")
        return cls(tokens or dict(NOKYC_TOKENS), **kwargs)
    if provider == "lunanode":
        api_id = kwargs.pop("api_id", None) or LUNANODE_API_ID
        return cls(api_id, api_key or LUNANODE_API_KEY, **kwargs)
    if provider == "voltagepark":
        vp_keys = {api_key or VOLTAGEPARK_API_KEY: space_id or VOLTAGEPARK_ORGANIZATION_ID,
                   **dict(kwargs.pop("api_keys", None) or {})}
        return cls(vp_keys, **kwargs)
    if provider == "cyberpanel":
        cp_keys = {api_key or CYBERPANEL_API_KEY: "all",
                   **dict(kwargs.pop("api_keys", None) or {})}
        return cls(cp_keys, **kwargs)
    keys = {
        api_key or DEFAULT_API_KEY: space_id or DEFAULT_SPACE_ID,
        **dict(kwargs.pop("api_keys", None) or {}),
    }
    return cls(keys, **kwargs)


@contextmanager
def running_simulator(
    provider: str = "krova",
    *,
    api_key: str | None = None,
    space_id: str | None = None,
    api_id: str | None = None,
    **kwargs: Any,
) -> Iterator[RunningSimulator]:
    """Run a simulator in a daemon thread for the duration of the ``with`` block.

    Extra keyword arguments go to the simulator class (``time_scale``, ``rate_limit``,
    ``settings``, ...).  Krova: ``api_key`` (default :data:`DEFAULT_API_KEY`) of Space
    ``space_id`` (default :data:`DEFAULT_SPACE_ID`), ``api_keys`` for more keys,
    ``validate_responses``.  NoKYC: ``tokens={token: scope}`` and/or ``api_key`` (a
    write token); with neither, the three :data:`NOKYC_TOKENS`; ``space_id`` is unused.
    LunaNode: ``api_id`` (default :data:`LUNANODE_API_ID`) and ``api_key`` (default
    :data:`LUNANODE_API_KEY`); ``space_id`` is unused.  Voltage Park: ``api_key``
    (default :data:`VOLTAGEPARK_API_KEY`) of organization ``space_id`` (default
    :data:`cloudsim.voltagepark.DEFAULT_ORGANIZATION_ID`), ``api_keys={key: org}`` for
    more.  CyberPanel: ``api_key`` (default :data:`CYBERPANEL_API_KEY`, scopes ``all``),
    ``api_keys={key: scopes}`` for more; ``space_id`` is unused.
    """
    options = dict(kwargs)
    if api_id is not None:
        options["api_id"] = api_id
    simulator = _make(provider, api_key, space_id, options)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=f"cloudsim-{provider}", daemon=True)
    thread.start()
    try:
        # Start and stop on the simulator's own loop; a start failure propagates here.
        asyncio.run_coroutine_threadsafe(simulator.start(), loop).result(timeout=30)
        try:
            yield RunningSimulator(simulator, loop)
        finally:
            asyncio.run_coroutine_threadsafe(simulator.stop(), loop).result(timeout=30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


@dataclass
class SimulatorProcess:
    process: subprocess.Popen[str]
    url: str
    admin_url: str


_READY = re.compile(r"listening on (\S+) \(admin (\S+)\)")


@contextmanager
def simulator_process(
    provider: str = "krova",
    *,
    api_key: str | None = None,
    space_id: str | None = None,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    start_timeout: float = 30.0,
    api_id: str | None = None,
) -> Iterator[SimulatorProcess]:
    """``python -m cloudsim PROVIDER --port 0 ...`` as a subprocess, until the block ends.

    Krova gets ``--api-key api_key --space-id space_id`` (the defaults of
    :func:`running_simulator`); NoKYC ``--token api_key`` (default :data:`NOKYC_TOKEN`,
    scope write) — more ``--token`` flags go in ``args``; LunaNode ``--api-id api_id
    --api-key api_key`` (defaults :data:`LUNANODE_API_ID`, :data:`LUNANODE_API_KEY`);
    Voltage Park ``--api-key api_key[:space_id]`` (default :data:`VOLTAGEPARK_API_KEY`);
    CyberPanel ``--api-key api_key`` (default :data:`CYBERPANEL_API_KEY`, scopes ``all``;
    give ``KEY:SCOPES`` as api_key for others)."""
    if provider == "nokyc":
        credentials = ["--token", api_key or NOKYC_TOKEN]
    elif provider == "lunanode":
        credentials = ["--api-id", api_id or LUNANODE_API_ID,
                       "--api-key", api_key or LUNANODE_API_KEY]
    elif provider == "voltagepark":
        key = api_key or VOLTAGEPARK_API_KEY
        credentials = ["--api-key", f"{key}:{space_id}" if space_id else key]
    elif provider == "cyberpanel":
        credentials = ["--api-key", api_key or CYBERPANEL_API_KEY]
    else:
        credentials = ["--api-key", api_key or DEFAULT_API_KEY,
                       "--space-id", space_id or DEFAULT_SPACE_ID]
    command = [
        sys.executable, "-m", "cloudsim", provider, "--port", "0", *credentials, *args,
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        line = _read_line(process, start_timeout)
        match = _READY.search(line)
        if match is None:
            stderr = ""
            if process.poll() is not None and process.stderr is not None:
                stderr = process.stderr.read()
            raise RuntimeError(f"simulator did not start: {line!r} {stderr}")
        yield SimulatorProcess(process, match.group(1), match.group(2))
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    result: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        result.append(process.stdout.readline())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Krova's check: ``header == "sha256=" + hex(HMAC-SHA256(secret, body))``."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(expected, header)


@dataclass
class ReceivedWebhook:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered


@dataclass
class WebhookReceiver:
    """Records POSTs to ``url``; answers ``statuses`` in turn, then ``default_status``."""

    statuses: list[int] = field(default_factory=list)
    default_status: int = 200
    received: list[ReceivedWebhook] = field(default_factory=list)
    url: str = ""
    _arrived: asyncio.Condition | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status = self.statuses.pop(0) if self.statuses else self.default_status
        self.received.append(ReceivedWebhook(dict(request.headers), body, status))
        assert self._arrived is not None
        async with self._arrived:
            self._arrived.notify_all()
        return web.Response(status=status, text="ok")

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedWebhook]:
        """Wait until at least ``count`` requests have arrived."""
        assert self._arrived is not None
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.received) >= count), timeout
            )
        return list(self.received)


@asynccontextmanager
async def webhook_receiver(
    statuses: Sequence[int] = (),
    default_status: int = 200,
    path: str = "/hooks/krova",
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[WebhookReceiver]:
    """A receiver on loopback; ``ssl_context`` (a server context) makes it https."""
    receiver = WebhookReceiver(statuses=list(statuses), default_status=default_status)
    receiver._arrived = asyncio.Condition()
    app = web.Application()
    app.router.add_post(path, receiver._handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    scheme = "https" if ssl_context is not None else "http"
    receiver.url = f"{scheme}://127.0.0.1:{runner.addresses[0][1]}{path}"
    try:
        yield receiver
    finally:
        await runner.cleanup()


# ---- NoKYC ------------------------------------------------------------------------------


def nokyc_test_simulator(**kwargs: Any) -> NoKycSimulator:
    """A NoKYC simulator for tests: :data:`NOKYC_TOKENS` registered, time 50x faster,
    rate limits off and short lifecycle delays (provisioning 1 s, installing 2 s ...,
    simulated), unless ``kwargs`` say otherwise (``settings`` are merged)."""
    settings: dict[str, Any] = {
        "provision_delay": 1.0, "install_delay": 2.0, "boot_delay": 1.0, "stop_delay": 1.0,
        "reboot_delay": 1.0, "destroy_delay": 1.0, "snapshot_delay": 2.0,
    }
    settings.update(kwargs.pop("settings", None) or {})
    options: dict[str, Any] = {"time_scale": 50.0, "rate_limit": 0}
    options.update(kwargs)
    tokens = options.pop("tokens", None) or dict(NOKYC_TOKENS)
    return NoKycSimulator(tokens, settings=settings, **options)


def nokyc_ssh_public_key(comment: str = "dev@example") -> str:
    """A fresh, well-formed ``ssh-ed25519`` public key (random bytes, unique each call)."""
    key_type = b"ssh-ed25519"
    blob = len(key_type).to_bytes(4, "big") + key_type + (32).to_bytes(4, "big") + os.urandom(32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def sample_server_request(ssh_key_id: str, **overrides: Any) -> dict[str, Any]:
    """The seed's create-server body with ``ssh_key_id``; keys in ``overrides`` win."""
    body: dict[str, Any] = {
        "name": "edge-paris",
        "plan": "vps-s2",
        "region": "par",
        "image": "debian-13-minimal",
        "ssh_keys": [ssh_key_id],
        "tags": ["production", "edge"],
        "labels": {"owner": "ops"},
        "user_data_b64": None,
    }
    body.update(overrides)
    return body


async def wait_for_server_status(
    client: httpx.AsyncClient, server_id: str, status: str, *, timeout: float = 5.0
) -> dict[str, Any]:
    """Poll ``GET /servers/{id}`` (``client`` bound to ``.../v1``) until ``status``;
    ``status="gone"`` waits for the 404."""

    async def probe() -> dict[str, Any] | None:
        response = await client.get(f"/servers/{server_id}")
        if status == "gone":
            return {"status": "gone"} if response.status_code == 404 else None
        response.raise_for_status()
        server: dict[str, Any] = response.json()
        return server if server["status"] == status else None

    return await wait_for(probe, timeout=timeout)


def verify_nokyc_signature(
    secret: str, body: bytes, header: str | None, *, tolerance: float = 300.0
) -> bool:
    """NoKYC's check: ``t=<unix>,v1=<hex HMAC-SHA256(secret, f"{t}." + body)>`` with t
    within ``tolerance`` seconds of now."""
    return _nokyc_verify(secret, body, header, tolerance=tolerance)


# ---- LunaNode ---------------------------------------------------------------------------


def lunanode_test_simulator(**kwargs: Any) -> LunaNodeSimulator:
    """A LunaNode simulator for tests: :data:`LUNANODE_API_ID` / :data:`LUNANODE_API_KEY`,
    time 50x faster and short lifecycle delays (build 2 s, others 1 s, simulated) unless
    ``kwargs`` say otherwise (``settings`` are merged; ``api_id`` / ``api_key`` win)."""
    settings: dict[str, Any] = {
        "build_delay": 2.0, "boot_delay": 1.0, "stop_delay": 1.0, "reboot_delay": 1.0,
        "reimage_delay": 1.0, "resize_delay": 1.0, "rescue_delay": 1.0, "shelve_delay": 1.0,
        "delete_delay": 1.0, "snapshot_delay": 2.0,
    }
    settings.update(kwargs.pop("settings", None) or {})
    options: dict[str, Any] = {"time_scale": 50.0}
    options.update(kwargs)
    api_id = options.pop("api_id", LUNANODE_API_ID)
    api_key = options.pop("api_key", LUNANODE_API_KEY)
    return LunaNodeSimulator(api_id, api_key, settings=settings, **options)


def lunanode_form(
    category: str, action: str, params: Mapping[str, Any] | None = None, *,
    api_id: str = LUNANODE_API_ID, api_key: str = LUNANODE_API_KEY,
    nonce: int | str | None = None,
) -> dict[str, str]:
    """The signed form (``req``, ``signature``, ``nonce``, ``handler``) a LunaNode client
    posts to ``/api/{category}/{action}/``; ``nonce`` defaults to now."""
    return signed_form(api_id, api_key, category, action, params, nonce=nonce)


async def lunanode_call(
    client: httpx.AsyncClient, category: str, action: str,
    params: Mapping[str, Any] | None = None, *,
    api_id: str = LUNANODE_API_ID, api_key: str = LUNANODE_API_KEY,
) -> dict[str, Any]:
    """Post a signed ``category/action`` call (``client`` bound to the simulator's
    ``.../api``) and return the JSON answer, whatever its ``success``."""
    form = lunanode_form(category, action, params, api_id=api_id, api_key=api_key)
    response = await client.post(f"/{category}/{action}/", data=form)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


async def wait_for_vm_status(
    client: httpx.AsyncClient, vm_id: str, status: str, *, timeout: float = 5.0,
    api_id: str = LUNANODE_API_ID, api_key: str = LUNANODE_API_KEY,
) -> dict[str, Any]:
    """Poll ``vm/info`` until ``info.status_nohtml`` is ``status`` (``"gone"``: until it
    answers ``invalid vm``); returns the vm/info answer."""

    async def probe() -> dict[str, Any] | None:
        answer = await lunanode_call(client, "vm", "info", {"vm_id": vm_id},
                                     api_id=api_id, api_key=api_key)
        if status == "gone":
            return answer if answer.get("error") == "invalid vm" else None
        if answer.get("success") != "yes":
            raise AssertionError(f"vm/info failed: {answer}")
        return answer if answer["info"]["status_nohtml"] == status else None

    return await wait_for(probe, timeout=timeout)


# ---- Voltage Park -----------------------------------------------------------------------


def voltagepark_test_simulator(**kwargs: Any) -> VoltageParkSimulator:
    """A Voltage Park simulator for tests: :data:`VOLTAGEPARK_API_KEY` (``api_keys``
    adds more), time 50x faster and short lifecycle delays (provision 2 s, the others
    1 s, simulated) unless ``kwargs`` say otherwise (``settings`` are merged)."""
    settings: dict[str, Any] = {
        "provision_delay": 2.0, "start_delay": 1.0, "stop_delay": 1.0,
        "relocate_delay": 1.0, "terminate_delay": 1.0,
    }
    settings.update(kwargs.pop("settings", None) or {})
    options: dict[str, Any] = {"time_scale": 50.0}
    options.update(kwargs)
    keys = {VOLTAGEPARK_API_KEY: VOLTAGEPARK_ORGANIZATION_ID,
            **dict(options.pop("api_keys", None) or {})}
    return VoltageParkSimulator(keys, settings=settings, **options)


async def wait_for_voltagepark_status(
    client: httpx.AsyncClient, vm_id: str, status: str, *, timeout: float = 5.0,
) -> dict[str, Any]:
    """Poll ``GET /virtual-machines/{vm_id}`` (``client`` bound to ``.../api/v1`` with a
    Bearer header) until its ``status`` is ``status`` (``"gone"``: until 404); returns
    the VM (``{"status": "gone"}`` for gone)."""

    async def probe() -> dict[str, Any] | None:
        response = await client.get(f"/virtual-machines/{vm_id}")
        if status == "gone":
            return {"status": "gone"} if response.status_code == 404 else None
        response.raise_for_status()
        vm: dict[str, Any] = response.json()
        return vm if vm["status"] == status else None

    return await wait_for(probe, timeout=timeout)


# ---- CyberPanel -------------------------------------------------------------------------


def cyberpanel_test_simulator(**kwargs: Any) -> CyberPanelSimulator:
    """A CyberPanel simulator for tests: :data:`CYBERPANEL_API_KEY` (scopes ``all``;
    ``api_keys={key: scopes}`` adds more), time 50x faster, rate limits off and short
    delays (deployment 5 s, power actions 1 s, simulated) unless ``kwargs`` say
    otherwise (``settings`` are merged)."""
    settings: dict[str, Any] = {"deploy_delay": 5.0, "start_delay": 1.0, "stop_delay": 1.0,
                                "restart_delay": 1.0}
    settings.update(kwargs.pop("settings", None) or {})
    options: dict[str, Any] = {"time_scale": 50.0, "rate_limit": 0}
    options.update(kwargs)
    keys = {CYBERPANEL_API_KEY: "all", **dict(options.pop("api_keys", None) or {})}
    return CyberPanelSimulator(keys, settings=settings, **options)


def cyberpanel_key() -> str:
    """A fresh, well-formed ``cyp_live_<64 hex>`` key (not registered anywhere)."""
    return "cyp_live_" + os.urandom(32).hex()


def sample_vps_request(**overrides: Any) -> dict[str, Any]:
    """The seed's create-VPS body (Starter in ``la``, Ubuntu 22.04); ``overrides`` win."""
    body: dict[str, Any] = {
        "hostname": "my-server.example.com",
        "plan_id": 1,
        "location_code": "la",
        "template_id": "9000",
        "root_password": "SecurePass123",
    }
    body.update(overrides)
    return body


async def wait_for_cyberpanel_status(
    client: httpx.AsyncClient, vps_id: int, status: str, *, timeout: float = 5.0,
) -> dict[str, Any]:
    """Poll ``GET /vps/{id}`` (``client`` bound to ``.../api/v1`` with a Bearer header)
    until its ``status`` is ``status`` (``"deleted"``: until 400 ``VPS_DELETED``,
    ``"gone"``: until 404); returns the VPS details (``{"status": ...}`` for those two)."""

    async def probe() -> dict[str, Any] | None:
        response = await client.get(f"/vps/{vps_id}")
        if status in ("deleted", "gone"):
            code = response.json().get("error_code") if response.status_code >= 400 else None
            wanted = "VPS_DELETED" if status == "deleted" else "VPS_NOT_FOUND"
            return {"status": status} if code == wanted else None
        response.raise_for_status()
        vps: dict[str, Any] = response.json()["data"]
        return vps if vps["status"] == status else None

    return await wait_for(probe, timeout=timeout)


async def wait_for_cyberpanel_deployment(
    client: httpx.AsyncClient, vps_id: int, *, timeout: float = 5.0,
) -> dict[str, Any]:
    """Poll ``GET /vps/{id}/deployment`` until it is ``completed`` or ``failed``;
    returns its ``data``."""

    async def probe() -> dict[str, Any] | None:
        response = await client.get(f"/vps/{vps_id}/deployment")
        response.raise_for_status()
        data: dict[str, Any] = response.json()["data"]
        return data if data["deployment_status"] in ("completed", "failed") else None

    return await wait_for(probe, timeout=timeout)


def verify_cyberpanel_signature(secret: str, body: bytes, header: str | None) -> bool:
    """CyberPanel's check: ``X-Webhook-Signature == "sha256=" + hex(HMAC-SHA256(secret,
    body))``."""
    return _cyberpanel_verify(secret, body, header)
