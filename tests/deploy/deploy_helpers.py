"""Helpers of the deploy tests (imported by name: conftest.py puts this directory on
sys.path, since pytest runs with --import-mode=importlib)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "cube-operator"
MANIFESTS = ROOT / "deploy" / "manifests"
ARGOCD = ROOT / "deploy" / "argocd"
HELM = ROOT / ".tools" / "bin" / "helm"
INSTALL_TOOLS = ROOT / "scripts" / "install-test-tools.sh"
KUBECTL = "/usr/bin/kubectl"
RELEASE = "cube-operator"
NAMESPACE = "cube-operator-system"
KINDS = ("ProviderConfig", "Cube", "Snapshot", "Restore", "TcpMapping", "Domain", "Webhook")
PLURALS = {k: k.lower() + "s" for k in KINDS}

Obj = dict[str, Any]


def load_all(text: str) -> list[Obj]:
    return [d for d in yaml.safe_load_all(text) if d]


def key(obj: Obj) -> tuple[str, str, str]:
    """(kind, namespace, name) of an object; namespace '' for cluster-scoped ones."""
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def by_kind(objs: Iterable[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: Iterable[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in by_kind(objs, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[key(o) for o in found]}"
    return found[0]


class Renderer:
    """Runs the real `helm template` of the chart."""

    def __init__(self, helm: Path) -> None:
        self.helm = helm

    def run(self, *args: str, values: Obj | None = None, tmp_path: Path | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.helm), "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args]
        if values is not None:
            assert tmp_path is not None
            values_file = tmp_path / f"values-{len(list(tmp_path.glob('values-*')))}.yaml"
            values_file.write_text(yaml.safe_dump(values))
            cmd += ["--values", str(values_file)]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stderr}")
        return result

    def __call__(self, *args: str, values: Obj | None = None,
                 tmp_path: Path | None = None) -> list[Obj]:
        return load_all(self.run(*args, values=values, tmp_path=tmp_path).stdout)


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Runs a command, failing the test with its stderr when it fails."""
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False,
                            **kwargs)
    assert result.returncode == 0, f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr}"
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60.0,
             interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


class OperatorProcess:
    """The real `cube-operator run`, started with the args of the chart's Deployment (its
    ports moved to free ones) and the env the Deployment gives it (POD_ID, POD_NAMESPACE)."""

    PORT_FLAGS = ("--liveness-port", "--metrics-port", "--webhook-port")

    def __init__(self, objs: list[Obj], kubeconfig: Path, log_path: Path, pod: str) -> None:
        deployment = one(objs, "Deployment")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        self.ports = {flag: free_port() for flag in self.PORT_FLAGS}
        self.args = [f"{a.split('=')[0]}={self.ports[a.split('=')[0]]}"
                     if a.split("=")[0] in self.ports else a for a in container["args"]]
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1",
                    "POD_ID": pod, "POD_NAMESPACE": NAMESPACE}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = Path(sys.executable).with_name("cube-operator")
        assert exe.exists(), f"{exe}: the project is not installed in this venv"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([str(exe), "run", *self.args], env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.healthy, f"/healthz of {self.env['POD_ID']}", timeout=30)

    def healthy(self) -> bool:
        assert self.process and self.process.poll() is None, self.log()
        url = f"http://127.0.0.1:{self.ports['--liveness-port']}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
