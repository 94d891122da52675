"""`cube-operator dev` (what `make dev` runs) from start to Ctrl-C, driven like a newcomer would."""
from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cube_operator.sandbox._apply import load_manifests
from cube_operator.sandbox.runner import EXAMPLES_ROOT, _simulator, catalogue_command
from support.e2e import KUBECTL, condition

TABLE_HEADER = re.compile(r"^\d\d:\d\d:\d\d\s*$")  # the time line above each printing of the table


class Sandbox:
    """`cube-operator dev` as a subprocess in a session of its own, as a terminal runs it:
    :meth:`interrupt` is Ctrl-C, a SIGINT to the whole foreground process group (the
    sandbox and the operator it started)."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cube_operator.cli", "dev", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line)

    def drain(self) -> list[str]:
        while True:
            try:
                self.lines.append(self._queue.get_nowait())
            except queue.Empty:
                return self.lines

    @property
    def output(self) -> str:
        return "".join(self.drain())

    def wait_for_line(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert time.monotonic() < deadline, self.output
            assert self.process.poll() is None, self.output
            try:
                self.lines.append(self._queue.get(timeout=1))
            except queue.Empty:
                pass

    def banner(self, label: str) -> str:
        """The first word after ``label`` on its banner line (a URL or a path)."""
        line = next(line for line in self.drain() if line.startswith(label))
        return line[len(label):].split()[0]

    def table_printings(self) -> int:
        return sum(1 for line in self.drain() if TABLE_HEADER.match(line))

    def interrupt(self, timeout: float = 30) -> int:
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise
        finally:
            time.sleep(0.2)  # the reader thread picks up the last lines
            self.drain()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def port_of(url: str) -> int:
    return int(httpx.URL(url).port or 0)


def test_sandbox_runs_examples_to_settled_and_stops_cleanly(tmp_path: Path) -> None:
    sandbox = Sandbox("--workdir", str(tmp_path))
    try:
        sandbox.wait_for_line("All Cubes are Running or Stopped")
        output = sandbox.output
        kubeconfig = next(line.split("=", 1)[1].strip() for line in sandbox.lines if "export KUBECONFIG=" in line)
        assert Path(kubeconfig) == tmp_path / "kubeconfig"  # --workdir: a stable path
        assert sandbox.banner("Work directory:") == str(tmp_path)
        assert "team-a/web-1" in output and "team-a/batch-1" in output  # the live lines

        # The banner's URLs: the operator's /metrics, its webhook receiver, the simulator.
        metrics = sandbox.banner("Operator metrics:")
        assert metrics.startswith("http://127.0.0.1:") and metrics.endswith("/metrics")
        answer = httpx.get(metrics, timeout=10)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
        assert "# TYPE cube_operator_reconciles_total counter" in answer.text
        assert re.search(r'^cube_operator_reconciles_total\{kind="Cube",result="success"\} [1-9]',
                         answer.text, re.MULTILINE), answer.text[:2000]
        receiver = sandbox.banner("Webhook receiver:")
        assert receiver.startswith("http://127.0.0.1:")
        # Bound to 127.0.0.1 only (every 127.x address is this host: 0.0.0.0 would take 127.0.0.2).
        for url in (receiver, metrics):
            assert accepts("127.0.0.1", port_of(url)), url
            assert not accepts("127.0.0.2", port_of(url)), f"{url} listens beyond 127.0.0.1"
        krova = sandbox.banner("Krova simulator:")
        assert krova.startswith("http://127.0.0.1:") and krova.endswith("/api/v1")
        index = httpx.get(krova.removesuffix("/api/v1") + "/_sim/", timeout=10).json()
        assert index["provider"] == "krova" and index["api"] == krova

        # The copy-paste curl lists the simulator's images with the sandbox's key.
        command = next(line.strip() for line in sandbox.lines if line.strip().startswith("curl "))
        assert f"{krova}/images" in command
        if shutil.which("curl"):
            listed = subprocess.run(command, shell=True, capture_output=True, text=True, check=True, timeout=30)
            images = json.loads(listed.stdout)["images"]
        else:  # the same request
            key = re.search(r"X-API-KEY: (\S+?)'", command)
            assert key is not None, command
            images = httpx.get(f"{krova}/images", headers={"X-API-KEY": key.group(1)}, timeout=10).json()["images"]
        assert images and all("id" in image for image in images)

        cubes = json.loads(subprocess.run([KUBECTL, "--kubeconfig", kubeconfig, "get", "cubes", "-n", "team-a",
                                           "-o", "json"], capture_output=True, text=True, check=True).stdout)
        states = {c["metadata"]["name"]: c["status"]["state"] for c in cubes["items"]}
        assert states == {"web-1": "running", "batch-1": "stopped"}
        table = subprocess.run([KUBECTL, "--kubeconfig", kubeconfig, "get", "cubes", "-n", "team-a"],
                               capture_output=True, text=True, check=True).stdout
        assert "running" in table and "stopped" in table
        hook = json.loads(subprocess.run([KUBECTL, "--kubeconfig", kubeconfig, "get", "webhook", "krova-events",
                                          "-n", "team-a", "-o", "json"], capture_output=True, text=True,
                                         check=True).stdout)
        deadline = time.monotonic() + 30
        while condition(hook, "Ready").get("status") != "True" and time.monotonic() < deadline:
            time.sleep(0.5)
            hook = json.loads(subprocess.run([KUBECTL, "--kubeconfig", kubeconfig, "get", "webhook", "krova-events",
                                              "-n", "team-a", "-o", "json"], capture_output=True, text=True,
                                             check=True).stdout)
        assert condition(hook, "Ready").get("status") == "True", hook.get("status")

        # Settled: the live table is not printed again while nothing changes (two polls).
        printed = sandbox.table_printings()
        time.sleep(11)
        assert sandbox.table_printings() == printed, "".join(sandbox.drain()[-30:])
    except BaseException:
        sandbox.kill()
        raise
    code = sandbox.interrupt()  # Ctrl-C
    rest = sandbox.output
    assert code == 0, rest
    assert "sandbox stopped" in rest
    log = (tmp_path / "operator.log").read_text()
    assert "Operator is stopping" in log  # the operator did get the Ctrl-C
    assert "Traceback" not in log and "InvalidStateError" not in log, log[-3000:]
    assert "kro_sandbox" not in log
    assert (tmp_path / "kubeconfig").exists()  # --workdir is kept


def test_sandbox_without_workdir_removes_its_temporary_directory() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cube_operator.cli", "dev", "--time-scale", "40", "--exit-when-ready"],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    kubeconfig = Path(next(line.split("=", 1)[1].strip() for line in result.stdout.splitlines()
                           if "export KUBECONFIG=" in line))
    workdir = kubeconfig.parent
    assert kubeconfig.name == "kubeconfig" and workdir.name.startswith("cube-operator-dev-")
    assert f"Work directory:          {workdir}  (temporary" in result.stdout
    assert not workdir.exists(), f"{workdir} is left behind"


@pytest.mark.parametrize("provider, title, cube", [
    ("nokyc", "NoKYC", "team-b/edge-par"),
    ("cyberpanel", "CyberPanel", "team-e/web-1"),
    ("lunanode", "LunaNode", "team-c/lab-1"),
    ("voltagepark", "Voltage Park", "team-d/trainer-1"),
])
def test_sandbox_runs_each_providers_examples(tmp_path: Path, provider: str, title: str, cube: str) -> None:
    """`cube-operator dev --provider P`: examples/P/ reach Ready with only P's simulator."""
    result = subprocess.run(
        [sys.executable, "-m", "cube_operator.cli", "dev", "--provider", provider, "--time-scale", "40",
         "--workdir", str(tmp_path), "--exit-when-ready"],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{title} simulator:" in result.stdout and cube in result.stdout
    assert "Krova simulator:" not in result.stdout
    assert "All Cubes are Running or Stopped" in result.stdout
    assert "Operator metrics:        http://127.0.0.1:" in result.stdout
    assert "curl -s" in result.stdout
    assert (tmp_path / "kubeconfig").exists()


# What each provider's catalogue listing answers: the list inside it.
CATALOGUE_ITEMS: dict[str, Any] = {
    "krova": lambda body: body["images"],
    "nokyc": lambda body: body["data"],
    "cyberpanel": lambda body: body["data"]["templates"],
    "lunanode": lambda body: body["images"] if body.get("success") == "yes" else body,
    "voltagepark": lambda body: body,
}


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("openssl")), reason="needs curl and openssl")
@pytest.mark.parametrize("provider", sorted(CATALOGUE_ITEMS))
async def test_banner_curl_lists_each_simulators_catalogue(provider: str) -> None:
    """The banner's copy-paste command, run by a shell against the simulator the sandbox builds
    for examples/<provider>/, with the credentials those examples use."""
    manifests = load_manifests(EXAMPLES_ROOT / provider)
    async with _simulator(provider, manifests, 10.0) as simulator:
        command = catalogue_command(provider, simulator.url, manifests)
        shell = await asyncio.create_subprocess_shell(command, stdout=asyncio.subprocess.PIPE,
                                                      stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(shell.communicate(), timeout=30)
    assert shell.returncode == 0, err.decode()
    items = CATALOGUE_ITEMS[provider](json.loads(out))
    assert isinstance(items, list) and items, out.decode()[:500]
