"""The sandbox: Kubernetes API emulator + provider simulators + the operator + examples.

``--provider krova`` (the default), ``nokyc``, ``cyberpanel``, ``lunanode``, ``voltagepark``
or ``all`` picks which simulators run and which ``examples/<provider>/`` are applied.

The emulator and simulator run in this process; the operator runs as a separate
`cube-operator run` process against the emulator's kubeconfig, exactly as it would
against a real cluster. Everything listens on 127.0.0.1 only, the operator's /metrics and
webhook receiver included. The banner names every URL and, per simulator, a `curl` that
lists its images (or catalogue) with the examples' credentials. ``--workdir DIR`` keeps the
kubeconfig (DIR/kubeconfig) and operator.log across runs; without it they go to a temporary
directory, removed on exit.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ..api import KINDS
from ..api.crds import crd_for
from ._apply import create_all, load_manifests

EXAMPLES_ROOT = Path(__file__).resolve().parents[3] / "examples"
EXAMPLES = EXAMPLES_ROOT / "krova"
PROVIDERS = ("krova", "nokyc", "cyberpanel", "lunanode", "voltagepark")
TITLES = {"krova": "Krova", "nokyc": "NoKYC", "cyberpanel": "CyberPanel", "lunanode": "LunaNode",
          "voltagepark": "Voltage Park"}


def _example_settings(manifests: list[dict[str, Any]]) -> tuple[str, str]:
    """The API key and space the Krova examples use, so the simulator accepts them."""
    secret = next(m for m in manifests if m["kind"] == "Secret")
    config = next(m for m in manifests if m["kind"] == "ProviderConfig")
    return secret["stringData"]["apiKey"], config["spec"]["krova"]["spaceId"]


def _simulator(provider: str, manifests: list[dict[str, Any]], time_scale: float) -> Any:
    """The provider's simulator, accepting the credentials its examples use."""
    import cloudsim

    if provider == "krova":
        api_key, space_id = _example_settings(manifests)
        return cloudsim.KrovaSimulator(api_keys={api_key: space_id}, time_scale=time_scale)
    secret = next(m for m in manifests if m["kind"] == "Secret")
    if provider == "voltagepark":
        return cloudsim.VoltageParkSimulator(secret["stringData"]["apiKey"], time_scale=time_scale)
    if provider == "cyberpanel":
        return cloudsim.CyberPanelSimulator({secret["stringData"]["apiKey"]: "all"}, time_scale=time_scale)
    if provider == "lunanode":
        return cloudsim.LunaNodeSimulator(secret["stringData"]["apiId"], secret["stringData"]["apiKey"],
                                          time_scale=time_scale)
    # Plain-http webhooks are a sandbox-only allowance: the real NoKYC calls https only.
    return cloudsim.NoKycSimulator(tokens={secret["stringData"]["token"]: "billing"}, time_scale=time_scale,
                                   settings={"allow_http_webhooks": True})


def _secret(manifests: list[dict[str, Any]]) -> dict[str, str]:
    secret: dict[str, str] = next(m for m in manifests if m["kind"] == "Secret")["stringData"]
    return secret


def catalogue_command(provider: str, api_url: str, manifests: list[dict[str, Any]]) -> str:
    """A copy-paste shell command listing what the provider's simulator offers (its images,
    or its catalogue's equivalent), with the credentials the examples use."""
    secret = _secret(manifests)
    q = shlex.quote
    if provider == "krova":  # GET /images, X-API-KEY
        return f"curl -s -H {q('X-API-KEY: ' + secret['apiKey'])} {q(api_url + '/images')}"
    if provider == "nokyc":  # GET /images, Bearer token
        return f"curl -s -H {q('Authorization: Bearer ' + secret['token'])} {q(api_url + '/images')}"
    if provider == "cyberpanel":  # GET /vps/templates (the OS templates), Bearer key
        return f"curl -s -H {q('Authorization: Bearer ' + secret['apiKey'])} {q(api_url + '/vps/templates')}"
    if provider == "voltagepark":  # GET /instant-deploy-presets/ (needs no key; one does no harm)
        return (f"curl -s -H {q('Authorization: Bearer ' + secret['apiKey'])} "
                f"{q(api_url + '/instant-deploy-presets/')}")
    # LunaNode: POST image/list, signed: hex HMAC-SHA512(key, "image/list/|req|nonce").
    key = secret["apiKey"]
    req = json.dumps({"api_id": secret["apiId"], "api_partialkey": key[:64]}, separators=(",", ":"))
    return (f"N=$(date +%s); R={q(req)}; curl -s {q(api_url + '/image/list/')} "
            '--data-urlencode "req=$R" --data-urlencode "nonce=$N" --data-urlencode '
            f'"signature=$(printf %s "image/list/|$R|$N" | openssl dgst -sha512 -hmac {q(key)} '
            "| sed 's/^.*= //')\"")


CATALOGUES = {"krova": "images", "nokyc": "images", "cyberpanel": "OS templates",
              "voltagepark": "instant-deploy presets", "lunanode": "images"}


def _cube_line(cube: dict[str, Any]) -> str:
    status = cube.get("status") or {}
    ready: dict[str, Any] = next((c for c in status.get("conditions", []) if c.get("type") == "Ready"), {})
    return (f"  {cube['metadata']['namespace']}/{cube['metadata']['name']:<10} "
            f"state={status.get('state') or '-':<12} ip={status.get('publicIpv4') or '-':<15} "
            f"ready={ready.get('status', '-')} ({ready.get('reason', '')})")


INSTALL_HINT = ("install the sandbox extra (pip install 'cube-operator[sandbox]'), "
                "or run `make dev` from a checkout")


class SandboxUnavailable(RuntimeError):
    """The test bed (kubeapi, cloudsim and their dependencies) is not installed."""


def _testbed() -> tuple[Any, Any]:
    """The Krova simulator and the API emulator classes, imported only when the sandbox runs.

    They are not part of the operator image (its wheel holds only cube_operator, and
    jsonschema, which they need, is in the `sandbox` extra), so never import them at the
    top of a cube_operator module.
    """
    try:
        from cloudsim import (  # noqa: F401
            CyberPanelSimulator,
            KrovaSimulator,
            LunaNodeSimulator,
            NoKycSimulator,
            VoltageParkSimulator,
        )
        from kubeapi import KubeAPIServer
    except ModuleNotFoundError as error:
        missing = error.name or str(error)
        raise SandboxUnavailable(
            f"cube-operator dev needs the test bed (kubeapi, cloudsim), which this installation "
            f"lacks (no module named {missing!r}): {INSTALL_HINT}"
        ) from error
    return KrovaSimulator, KubeAPIServer


async def _sandbox(workdir: Path, time_scale: float, exit_when_ready: bool, stop: asyncio.Event,
                   providers: tuple[str, ...] = ("krova",), temporary: bool = False) -> int:
    _krova, KubeAPIServer = _testbed()

    examples = {p: load_manifests(EXAMPLES_ROOT / p) for p in providers}
    async with contextlib.AsyncExitStack() as stack:
        kube = await stack.enter_async_context(KubeAPIServer(port=0))
        simulators = {p: await stack.enter_async_context(_simulator(p, examples[p], time_scale))
                      for p in providers}
        kubeconfig = kube.write_kubeconfig(workdir / "kubeconfig")
        manifests = []
        for provider in providers:
            for manifest in examples[provider]:
                if manifest["kind"] == "ProviderConfig":
                    manifest["spec"]["endpoint"] = simulators[provider].url
                manifests.append(manifest)
        async with httpx.AsyncClient(base_url=kube.url, timeout=10) as client:
            await create_all(client, [crd_for(info) for info in KINDS])
            log_path = workdir / "operator.log"
            ports = _Ports(metrics=_free_port(), webhook=_free_port())
            operator = _start_operator(kubeconfig, log_path, time_scale, ports)
            try:
                await create_all(client, manifests)
                print(f"Kubernetes API emulator: {kube.url}")
                for provider, simulator in simulators.items():
                    title = f"{TITLES[provider]} simulator:"
                    print(f"{title:<25}{simulator.url}  (time x{time_scale:g}; admin {simulator.admin_url}/)")
                print(f"Operator metrics:        {ports.metrics_url}")
                print(f"Webhook receiver:        {ports.webhook_url}  (where the simulators deliver events)")
                print(f"Operator log:            {log_path}")
                kept = "temporary, removed on exit; --workdir DIR keeps one" if temporary else "kept"
                print(f"Work directory:          {workdir}  ({kept})")
                print(f"\n  export KUBECONFIG={kubeconfig}\n  kubectl get cubes -A\n")
                for provider, simulator in simulators.items():
                    print(f"  # {TITLES[provider]}'s {CATALOGUES[provider]}, from its simulator:")
                    print(f"  {catalogue_command(provider, simulator.url, examples[provider])}\n")
                sys.stdout.flush()
                return await _watch(client, operator, exit_when_ready, stop)
            finally:
                operator.terminate()
                try:
                    operator.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    operator.kill()
    return 1  # pragma: no cover - the context manager always returns inside


class _Ports:
    """The operator's own listeners in the sandbox, on 127.0.0.1 (this host) only."""

    HOST = "127.0.0.1"

    def __init__(self, metrics: int, webhook: int) -> None:
        self.metrics = metrics
        self.webhook = webhook  # the simulators run on this host too, so it is public to them

    @property
    def metrics_url(self) -> str:
        return f"http://{self.HOST}:{self.metrics}/metrics"

    @property
    def webhook_url(self) -> str:
        return f"http://{self.HOST}:{self.webhook}"


def _start_operator(kubeconfig: Path, log_path: Path, time_scale: float, ports: _Ports) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    with open(log_path, "wb") as log:  # this run's log only
        return subprocess.Popen(
            [sys.executable, "-m", "cube_operator.cli", "run", "--bind-address", ports.HOST,
             "--liveness-port", "0", "--metrics-port", str(ports.metrics),
             "--webhook-port", str(ports.webhook), "--webhook-public-url", ports.webhook_url,
             "--poll-interval", "5",
             "--budget-scale", str(time_scale), "--allow-endpoint", "http://127.0.0.1", "--delete-dependents"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _watch(client: httpx.AsyncClient, operator: subprocess.Popen[bytes],
                 exit_when_ready: bool, stop: asyncio.Event) -> int:
    """Print the table of Cubes whenever it differs from the last one printed (so not at
    all while everything has settled), until ``stop``; a failed read prints nothing."""
    announced = False
    last: str | None = None
    while not stop.is_set():
        if operator.poll() is not None:
            print(f"the operator exited with code {operator.returncode}; see its log", file=sys.stderr)
            return 1
        cubes = await _list_cubes(client)
        if cubes is None:  # the emulator is busy: an empty table now would only be reprinted
            await _pause(stop)
            continue
        lines = "\n".join(_cube_line(cube) for cube in cubes)
        if lines != last:
            print(time.strftime("%H:%M:%S"), "\n" + lines, flush=True)
            last = lines
        settled = cubes and all(
            ((c.get("status") or {}).get("vmState") or (c.get("status") or {}).get("state"))
            in ("running", "stopped")
            and any(x.get("type") == "Ready" and x.get("status") == "True"
                    for x in (c.get("status") or {}).get("conditions", []))
            for c in cubes
        )
        if settled and not announced:
            announced = True
            print("All Cubes are Running or Stopped. Press Ctrl-C to stop the sandbox.", flush=True)
            if exit_when_ready:
                return 0
        await _pause(stop)
    return 0


async def _list_cubes(client: httpx.AsyncClient) -> list[dict[str, Any]] | None:
    try:
        response = await client.get("/apis/cube-operator.io/v1alpha1/cubes")
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    items: list[dict[str, Any]] = response.json().get("items") or []
    return items


async def _pause(stop: asyncio.Event, seconds: float = 1.0) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def run_sandbox(workdir: Path | None = None, time_scale: float = 10.0, exit_when_ready: bool = False,
                provider: str = "krova") -> int:
    providers = PROVIDERS if provider == "all" else (provider,)
    try:
        _testbed()
    except SandboxUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    temporary = workdir is None
    directory = Path(tempfile.mkdtemp(prefix="cube-operator-dev-")) if workdir is None else workdir
    directory.mkdir(parents=True, exist_ok=True)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        code = await _sandbox(directory, time_scale, exit_when_ready, stop, providers, temporary)
        print("sandbox stopped", flush=True)
        return code

    try:
        return asyncio.run(main())
    finally:
        if temporary:  # the operator has exited by now: nothing writes there any more
            shutil.rmtree(directory, ignore_errors=True)
