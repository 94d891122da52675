"""A real kube-apiserver (with an embedded etcd) for tests: .tools/bin/realkube, built from
testbed/realkube by `make tools` (scripts/install-test-tools.sh) where Go is on PATH.

    with running_realkube(tmp_path) as kube:
        subprocess.run([KUBECTL, "get", "ns"], env=kube.env, check=True)
        kubectl(kube, "get", "ns")                      # the same, failing with stderr

    with running_realkube(tmp_path, *audit_args(tmp_path, [sa_username(ns, sa)])) as kube:
        ...                                             # then audit_events(tmp_path)

No controller-manager runs next to it: no garbage collection of ownerReferences, no
namespace finalization (a deleted namespace stays Terminating), no "default"
ServiceAccount in new namespaces, no Deployment/StatefulSet/Job controllers."""
from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
REALKUBE = ROOT / ".tools" / "bin" / "realkube"
HELM = ROOT / ".tools" / "bin" / "helm"
KUBECTL = "/usr/bin/kubectl"
#: The admin identity of realkube's kubeconfig (client certificate and admin.token).
ADMIN_USER = "realkube-admin"
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0


class RealkubeMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class RealKube:
    url: str
    kubeconfig: Path
    env: dict[str, str]
    dir: Path
    log: Path
    pid: int
    started_in: float  # seconds from process start to the READY line

    @property
    def token(self) -> str:
        """A bearer token of the same admin (group system:masters), for raw HTTP."""
        return (self.dir / "admin.token").read_text().strip()

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"


def realkube_binary() -> Path:
    if not os.access(REALKUBE, os.X_OK):
        raise RealkubeMissing(
            f"{REALKUBE} is missing: run `make tools` (it builds testbed/realkube with Go; "
            "the first build takes several minutes)")
    return REALKUBE


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextlib.contextmanager
def running_realkube(tmp_dir: Path | str, *extra_apiserver_args: str,
                     ready_timeout: float = READY_TIMEOUT) -> Iterator[RealKube]:
    """Start realkube with its files under tmp_dir/realkube, wait for READY, yield a
    RealKube, and stop it (SIGTERM, then SIGKILL after STOP_TIMEOUT) on exit.

    extra_apiserver_args are passed on to kube-apiserver (e.g. "--v=2")."""
    binary = realkube_binary()
    work = Path(tmp_dir) / "realkube"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "realkube.log"
    args = [str(binary), "--dir", str(work)]
    if extra_apiserver_args:
        args += ["--", *extra_apiserver_args]
    started = time.monotonic()
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=log_file)
    try:
        assert proc.stdout is not None
        deadline = started + ready_timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"realkube not READY after {ready_timeout:.0f}s; log tail:\n"
                                   f"{_tail(log)}")
            ready, _, _ = select.select([proc.stdout], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    proc.wait(timeout=10)
                    raise RuntimeError(f"realkube exited ({proc.returncode}) before READY; "
                                       f"log tail:\n{_tail(log)}")
                line += chunk
        words = line.decode().split()
        if len(words) != 3 or words[0] != "READY":
            raise RuntimeError(f"unexpected line from realkube: {line!r}")
        kubeconfig = Path(words[2])
        env = dict(os.environ, KUBECONFIG=str(kubeconfig))
        yield RealKube(url=words[1], kubeconfig=kubeconfig, env=env, dir=work, log=log,
                       pid=proc.pid, started_in=time.monotonic() - started)
    finally:
        _stop(proc)
        if proc.stdout is not None:
            proc.stdout.close()


# ---- helpers for tests against realkube: kubectl, helm, tokens, audit ---------------------

def helm_binary() -> Path:
    if not os.access(HELM, os.X_OK):
        raise RealkubeMissing(f"{HELM} is missing: run `make tools` (scripts/install-test-tools.sh)")
    return HELM


def kubectl(kube: RealKube | Path, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Real /usr/bin/kubectl with the admin kubeconfig of ``kube`` (or the kubeconfig at
    that path); with ``check`` a failure fails the test with kubectl's stderr."""
    config = kube.kubeconfig if isinstance(kube, RealKube) else kube
    result = subprocess.run([KUBECTL, "--kubeconfig", str(config), *args], input=input,
                            capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert result.returncode == 0, (
            f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def kubectl_json(kube: RealKube | Path, *args: str) -> Any:
    """``kubectl get ... -o json``, parsed; None when kubectl fails (e.g. NotFound)."""
    result = kubectl(kube, "get", *args, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def apply(kube: RealKube | Path, docs: Iterable[dict[str, Any]], *, retry_for: float = 15.0
          ) -> None:
    """``kubectl apply -f -`` of ``docs``, retried for ``retry_for`` seconds: right after a
    CRD is Established a fresh kubectl's discovery can lag for a moment."""
    text = yaml.safe_dump_all(list(docs))
    deadline = time.monotonic() + retry_for
    while True:
        result = kubectl(kube, "apply", "-f", "-", input=text, check=False)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"kubectl apply failed:\n{result.stderr}\n{text}")
        time.sleep(0.5)


def helm_env(kube: RealKube, home: Path) -> dict[str, str]:
    """The environment for helm: realkube's kubeconfig, helm's own dirs under ``home`` (so
    a test never reads or writes the user's ~/.config/helm, ~/.cache/helm)."""
    env = {k: v for k, v in kube.env.items() if not k.startswith("HELM_")}
    for var, sub in (("HELM_CACHE_HOME", "cache"), ("HELM_CONFIG_HOME", "config"),
                     ("HELM_DATA_HOME", "data")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    return env


def helm(kube: RealKube, home: Path, *args: str, check: bool = True, timeout: float = 120
         ) -> subprocess.CompletedProcess[str]:
    """The real helm (v4, .tools/bin/helm) with ``--kubeconfig`` of realkube's admin."""
    cmd = [str(helm_binary()), "--kubeconfig", str(kube.kubeconfig), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                            env=helm_env(kube, home))
    if check:
        assert result.returncode == 0, (
            f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def sa_username(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def create_token(kube: RealKube, namespace: str, service_account: str,
                 duration: str = "1h") -> str:
    """A bound token of the ServiceAccount, from the TokenRequest API (`kubectl create
    token`; realkube signs it with its service-account key)."""
    out = kubectl(kube, "create", "token", service_account, "-n", namespace,
                  "--duration", duration).stdout.strip()
    assert out.count(".") == 2, f"not a JWT: {out[:40]!r}"
    return out


def token_kubeconfig(kube: RealKube, token: str, path: Path, user: str = "token-user") -> Path:
    """A kubeconfig for realkube's server and CA that authenticates with ``token``."""
    config = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "realkube",
                      "cluster": {"server": kube.url, "certificate-authority": str(kube.ca)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "realkube", "user": user}}],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def audit_args(tmp_dir: Path | str, users: Iterable[str], level: str = "Metadata",
               rules: Iterable[dict[str, Any]] = ()) -> list[str]:
    """kube-apiserver flags for an audit log (JSON lines, tmp_dir/audit/audit.log, see
    audit_events) of every request of ``users`` at ``level`` (Metadata: who, what, the
    answer's code and the authorization decision; no bodies). ``rules`` (audit policy
    rules, e.g. ``{"level": "Request", "verbs": ["patch"]}``) come first, for the same
    users. Nothing else is logged."""
    audit = Path(tmp_dir) / "audit"
    audit.mkdir(parents=True, exist_ok=True)
    who = sorted(users)
    policy = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
              "omitStages": ["RequestReceived"],
              "rules": [*({**rule, "users": who} for rule in rules),
                        {"level": level, "users": who}, {"level": "None"}]}
    (audit / "policy.yaml").write_text(yaml.safe_dump(policy))
    return [f"--audit-policy-file={audit / 'policy.yaml'}",
            f"--audit-log-path={audit / 'audit.log'}", "--audit-log-format=json",
            "--audit-log-mode=blocking", "--audit-log-maxbackup=1", "--audit-log-maxsize=200"]


def audit_events(tmp_dir: Path | str) -> list[dict[str, Any]]:
    """The audit events written so far (see audit_args)."""
    path = Path(tmp_dir) / "audit" / "audit.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 30.0,
               interval: float = 0.25) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); AssertionError
    naming ``what`` and the last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; "
                                 f"last: {last!r}")
        time.sleep(interval)
