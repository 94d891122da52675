"""Helpers for end-to-end tests: real kubectl, the Krova simulator's public API and the
operator as a separate process. Used by tests/e2e and bench/; test code, so it lives under
tests/ and is not part of the cube_operator package."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

KUBECTL = "/usr/bin/kubectl"
API_KEY = "kro_e2e_" + "0123456789abcdef"
SPACE_ID = "sp_e2e"
TIME_SCALE = 20.0  # Krova's 60 s rate-limit window becomes 3 s
OPERATOR_AGENTS = ("kopf/", "cube-operator")  # kopf's own client, and ours (controllers/_kube.py)


def real_apiserver() -> bool:
    """Whether e2e clusters are a real kube-apiserver (.tools/bin/realkube): by default when
    the binary is there; CUBE_E2E_APISERVER=emulator or =real chooses (real fails if missing)."""
    from support.realkube import REALKUBE

    choice = os.environ.get("CUBE_E2E_APISERVER", "")
    if choice not in ("", "real", "emulator"):
        raise ValueError(f"CUBE_E2E_APISERVER={choice!r}: expected real or emulator")
    return choice == "real" or (choice == "" and REALKUBE.exists())


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2,
             what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Cluster:
    kubeconfig: Path
    url: str
    #: Where a real API server writes its audit log (support.realkube.audit_args); None
    #: for the emulator, which keeps its own request log (GET /_emulator/requests).
    audit_dir: Path | None = None

    @property
    def real(self) -> bool:
        return self.audit_dir is not None

    def operator_calls(self) -> list[dict[str, Any]]:
        """Every request the operator process made (user agent kopf/* or cube-operator*), as
        {verb, group, resource, subresource, namespace, user_agent, code}, from the
        emulator's request log or the real API server's audit log."""
        if self.audit_dir is None:
            records = httpx.get(f"{self.url}/_emulator/requests", timeout=30).json()
        else:
            from support.realkube import audit_events

            records = []
            for event in audit_events(self.audit_dir):
                ref = event.get("objectRef") or {}
                records.append({
                    "verb": event.get("verb", ""), "group": ref.get("apiGroup", ""),
                    "resource": ref.get("resource", ""), "subresource": ref.get("subresource", ""),
                    "namespace": ref.get("namespace", ""), "user_agent": event.get("userAgent", ""),
                    "code": (event.get("responseStatus") or {}).get("code"),
                })
        return [r for r in records if r["resource"] and r["user_agent"].startswith(OPERATOR_AGENTS)]

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.kubeconfig), *args],
            check=False, input=input, capture_output=True, text=True, timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def apply(self, manifest: dict[str, Any] | list[dict[str, Any]] | str, check: bool = True
              ) -> subprocess.CompletedProcess[str]:
        text = manifest if isinstance(manifest, str) else yaml.safe_dump_all(
            manifest if isinstance(manifest, list) else [manifest])
        return self.kubectl("apply", "-f", "-", input=text, check=check)

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        result = self.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
        if result.returncode != 0:
            return None
        return json.loads(result.stdout)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def ready(self, kind: str, name: str, namespace: str, timeout: int = 60) -> dict[str, Any]:
        """Wait with `kubectl wait --for=condition=Ready`, then the object."""
        self.kubectl("wait", "--for=condition=Ready", f"{kind}/{name}", "-n", namespace,
                     f"--timeout={timeout}s", timeout=timeout + 10)
        found = self.get(kind, name, namespace)
        assert found, f"{kind}/{name} vanished"
        return found


@contextlib.contextmanager
def cluster_with_crds(tmp_dir: Path, *, emulator: bool | None = None) -> Iterator[Cluster]:
    """An API server of its own with every CRD established: a real kube-apiserver when
    real_apiserver() (every request of its admin user audited, see Cluster.operator_calls),
    else the emulator; ``emulator=True`` asks for the emulator (its fault endpoints)."""
    from cube_operator.api import KINDS
    from cube_operator.api.crds import crd_for

    with contextlib.ExitStack() as stack:
        if not emulator and real_apiserver():
            from support.realkube import ADMIN_USER, audit_args, running_realkube

            kube = stack.enter_context(running_realkube(tmp_dir, *audit_args(tmp_dir, [ADMIN_USER])))
            cluster = Cluster(kubeconfig=kube.kubeconfig, url=kube.url, audit_dir=Path(tmp_dir))
        else:
            from kubeapi.testing import running_emulator

            emu = stack.enter_context(running_emulator(tmp_dir))
            cluster = Cluster(kubeconfig=Path(emu.kubeconfig), url=emu.url)
        cluster.apply([crd_for(info) for info in KINDS])
        for info in KINDS:
            cluster.kubectl("wait", "--for=condition=Established", f"crd/{info.crd_name}", "--timeout=30s")
        yield cluster


@dataclass
class Krova:
    url: str
    admin_url: str

    def api(self, api_key: str = API_KEY) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-KEY": api_key}, timeout=10)

    def cubes(self) -> list[dict[str, Any]]:
        with self.api() as client:
            out: list[dict[str, Any]] = []
            page = 1
            while True:
                body = client.get(f"/spaces/{SPACE_ID}/cubes", params={"page": page, "limit": 100}).json()
                out.extend(body["cubes"])
                if page >= body["pagination"]["totalPages"]:
                    return out
                page += 1

    def cube(self, cube_id: str) -> dict[str, Any] | None:
        with self.api() as client:
            response = client.get(f"/spaces/{SPACE_ID}/cubes/{cube_id}")
            return response.json()["cube"] if response.status_code == 200 else None

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.admin_url, timeout=10)

    def count(self, method: str, route_suffix: str) -> int:
        """Requests the simulator served whose route template ends with ``route_suffix``."""
        with self.admin() as admin:
            rows = admin.get("/stats").json()["requests"]
        return sum(r["count"] for r in rows if r["method"] == method and r["route"].endswith(route_suffix))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Operator:
    kubeconfig: Path
    log_path: Path
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    metrics_port: int = field(default_factory=free_port)
    webhook_port: int = field(default_factory=free_port)
    liveness_port: int = field(default_factory=free_port)
    # The simulators run TIME_SCALE times faster, so may the providers' documented limits.
    budget_scale: float = TIME_SCALE

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.webhook_port}"

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1"}
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cube_operator.cli", "run", "--liveness-port", str(self.liveness_port),
             "--metrics-port", str(self.metrics_port), "--webhook-port", str(self.webhook_port),
             "--poll-interval", "2", "--log-level", "debug", "--budget-scale", str(self.budget_scale),
             "--allow-endpoint", "http://127.0.0.1", "--delete-dependents", "--watch-inactivity-timeout", "15",
             *self.args],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(lambda: _healthy(self.liveness_port), timeout=30, what="operator /healthz")

    def running(self) -> bool:
        return bool(self.process and self.process.poll() is None)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def provider_config(namespace: str, krova: Krova, *, api_key_secret: str = "krova-credentials",
                    name: str = "krova", space_id: str = SPACE_ID) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "cube-operator.io/v1alpha1", "kind": "ProviderConfig",
         "metadata": {"name": name, "namespace": namespace},
         "spec": {"provider": "krova", "endpoint": krova.url,
                  "credentialsSecretRef": {"name": api_key_secret, "key": "apiKey"},
                  "krova": {"spaceId": space_id},
                  "pollIntervalSeconds": 1}},
    ]


def namespace_with_credentials(cluster: Cluster, krova: Krova, api_key: str = API_KEY) -> str:
    namespace = "e2e-" + uuid.uuid4().hex[:8]
    cluster.apply([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "krova-credentials", "namespace": namespace},
         "stringData": {"apiKey": api_key}},
    ])
    return namespace


def cube_manifest(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "providerConfigRef": {"name": "krova"},
        "image": "ubuntu-24.04",
        "region": "eu-nuremberg",
        "resources": {"vcpu": 2, "ramGb": 4, "diskGb": 30},
        "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2eTestKey e2e@test",
    }
    base.update(spec)
    return {"apiVersion": "cube-operator.io/v1alpha1", "kind": "Cube",
            "metadata": {"name": name, "namespace": namespace}, "spec": base}


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions", []):
        if c.get("type") == type_:
            return c
    return {}


class RbacPolicy:
    """What the ClusterRoles/Roles among rendered manifests grant (no aggregation, no
    resourceNames): enough to tell whether a recorded API request would be a 403."""

    def __init__(self, objs: list[dict[str, Any]]) -> None:
        def rules(role: dict[str, Any]) -> list[tuple[frozenset[str], frozenset[str], frozenset[str]]]:
            return [(frozenset(r["apiGroups"]), frozenset(r["resources"]), frozenset(r["verbs"]))
                    for r in role.get("rules") or []]

        self.cluster = [r for o in objs if o.get("kind") == "ClusterRole" for r in rules(o)]
        self.namespaced: dict[str, list[tuple[frozenset[str], frozenset[str], frozenset[str]]]] = {}
        for o in objs:
            if o.get("kind") == "Role":
                self.namespaced.setdefault(o["metadata"]["namespace"], []).extend(rules(o))

    def allows(self, group: str, resource: str, verb: str, namespace: str = "") -> bool:
        candidates = self.cluster + (self.namespaced.get(namespace, []) if namespace else [])
        return any(group in g and resource in r and verb in v for g, r, v in candidates)
