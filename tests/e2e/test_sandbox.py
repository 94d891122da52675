"""`cube-operator dev` (what `make dev` runs) from start to Ctrl-C, driven like a newcomer would."""
from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from support.e2e import KUBECTL, condition


def test_sandbox_runs_examples_to_settled_and_stops_cleanly(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "cube_operator.cli", "dev", "--workdir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()  # type: ignore[union-attr]
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not any("All Cubes are Running or Stopped" in line for line in seen):
            assert time.monotonic() < deadline, "".join(seen)
            assert process.poll() is None, "".join(seen)
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                pass
        output = "".join(seen)
        kubeconfig = next(line.split("=", 1)[1].strip() for line in seen if "export KUBECONFIG=" in line)
        assert Path(kubeconfig) == tmp_path / "kubeconfig"
        assert "team-a/web-1" in output and "team-a/batch-1" in output  # the live lines
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
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    rest = "".join(seen) + "".join(iter_queue(lines))
    assert code == 0, rest
    assert "sandbox stopped" in rest
    assert "kro_sandbox" not in (tmp_path / "operator.log").read_text()


def iter_queue(lines: queue.Queue[str]) -> list[str]:
    out = []
    time.sleep(0.2)
    while not lines.empty():
        out.append(lines.get_nowait())
    return out


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
