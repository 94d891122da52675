"""A real kube-apiserver (with an embedded etcd) for tests: .tools/bin/realkube, built from
testbed/realkube by `make tools` (scripts/install-test-tools.sh) where Go is on PATH.

    with running_realkube(tmp_path) as kube:
        subprocess.run([KUBECTL, "get", "ns"], env=kube.env, check=True)

No controller-manager runs next to it: no garbage collection of ownerReferences, no
namespace finalization (a deleted namespace stays Terminating), no "default"
ServiceAccount in new namespaces, no Deployment/StatefulSet/Job controllers."""
from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REALKUBE = ROOT / ".tools" / "bin" / "realkube"
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
