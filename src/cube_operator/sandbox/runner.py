"""The sandbox: Kubernetes API emulator + provider simulators + the operator + examples.

``--provider krova`` (the default), ``nokyc``, ``cyberpanel``, ``lunanode``, ``voltagepark``
or ``all`` picks which simulators run and which ``examples/<provider>/`` are applied.

The emulator and simulator run in this process; the operator runs as a separate
`cube-operator run` process against the emulator's kubeconfig, exactly as it would
against a real cluster.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
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
                   providers: tuple[str, ...] = ("krova",)) -> int:
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
            operator = _start_operator(kubeconfig, log_path, time_scale)
            try:
                await create_all(client, manifests)
                print(f"Kubernetes API emulator: {kube.url}")
                for provider, simulator in simulators.items():
                    title = f"{TITLES[provider]} simulator:"
                    print(f"{title:<25}{simulator.url}  (time x{time_scale:g})")
                print(f"Operator log:            {log_path}")
                print(f"\n  export KUBECONFIG={kubeconfig}\n  kubectl get cubes -A\n", flush=True)
                return await _watch(client, operator, exit_when_ready, stop)
            finally:
                operator.terminate()
                try:
                    operator.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    operator.kill()
    return 1  # pragma: no cover - the context manager always returns inside


def _start_operator(kubeconfig: Path, log_path: Path, time_scale: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    port = _free_port()  # the receiver; the simulators run here too, so it is public to them
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "cube_operator.cli", "run", "--liveness-port", "0",
             "--metrics-port", "0", "--webhook-port", str(port), "--webhook-public-url", f"http://127.0.0.1:{port}",
             "--poll-interval", "5",
             "--budget-scale", str(time_scale), "--allow-endpoint", "http://127.0.0.1"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _watch(client: httpx.AsyncClient, operator: subprocess.Popen[bytes],
                 exit_when_ready: bool, stop: asyncio.Event) -> int:
    announced = False
    last = ""
    while not stop.is_set():
        if operator.poll() is not None:
            print(f"the operator exited with code {operator.returncode}; see its log", file=sys.stderr)
            return 1
        response = await client.get("/apis/cube-operator.io/v1alpha1/cubes")
        cubes = response.json().get("items", [])
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
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)
    return 0


def run_sandbox(workdir: Path | None = None, time_scale: float = 10.0, exit_when_ready: bool = False,
                provider: str = "krova") -> int:
    providers = PROVIDERS if provider == "all" else (provider,)
    try:
        _testbed()
    except SandboxUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    directory = workdir or Path(tempfile.mkdtemp(prefix="cube-operator-dev-"))
    directory.mkdir(parents=True, exist_ok=True)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        code = await _sandbox(directory, time_scale, exit_when_ready, stop, providers)
        print("sandbox stopped", flush=True)
        return code

    return asyncio.run(main())
