"""How the operator scales: N Cubes applied at once, against the emulator and the Krova simulator.

Every piece runs as its own process, as in a deployment: the Kubernetes API emulator
(``python -m kubeapi``), the Krova simulator (``python -m cloudsim krova``) and the real
operator (``cube-operator run``). For each size N and each rate-limit mode the bench

1. starts the three processes afresh (a temporary directory per run), installs the CRDs,
   creates a namespace, the credentials Secret and a ProviderConfig, waits for it to be Ready;
2. applies N Cubes at once (one ``kubectl apply -f`` of a multi-document file) and follows
   them with a watch until every one has ``Ready=True``: seconds to all Ready, against the
   floor the provider's rate limit sets for N creates;
3. lets the operator settle, then measures a steady window of ``--steady-seconds``: the
   emulator's request log (``GET /_emulator/requests``) filtered to the operator's user
   agents (``kopf/...`` and ``cube-operator...``), by verb; the simulator's ``/_sim/stats``
   delta; the operator's CPU (``/proc/PID/stat`` utime+stime) and peak RSS
   (``/proc/PID/status`` VmHWM); reconcile errors from its ``/metrics``
   (``cube_operator_reconciles_total{result="error"}``);
4. stops the operator and runs a naive controller against the same simulator and the same
   N Cubes: a process of its own that GETs every Cube (``GET /spaces/{id}/cubes/{cubeId}``)
   once per poll interval, spread over the interval. Its provider calls come from the
   simulator's counters over its window (nothing is assumed), its CPU and peak RSS from
   the process itself (getrusage).

Rate-limit modes: ``real`` is Krova's documented limit (10 mutating calls per 60 s per
client address) time-scaled: ``--time-scale T`` on the simulator and ``--budget-scale T`` on
the operator, so the window is 60/T real seconds. ``off`` turns the simulator's limit off
(``--rate-limit 0``) and gives the operator a budget scale of 1e6 (a ProviderConfig's
``spec.rateLimit`` can only lower the budget). The simulator's clock runs T times faster in
both modes (provisioning and boot take (2 + 2) / T real seconds).

    nice -n 10 .venv/bin/python bench/scale.py [--sizes 100 1000] [--with-10k]
        [--limits real|off|both] [--time-scale 20] [--poll-interval 30] [--steady-seconds 60]
        [--naive-seconds 60] [--settle-seconds 15] [--keep]
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
KUBECTL = "/usr/bin/kubectl"
API_KEY = "kro_bench_" + "0123456789abcdef"
SPACE_ID = "sp_bench"
GROUP, VERSION = "cube-operator.io", "v1alpha1"
KROVA_LIMIT, KROVA_WINDOW = 10, 60.0  # Krova's documented budget: mutating calls per 60 s per client
OFF_BUDGET_SCALE = 1e6
OPERATOR_AGENTS = ("kopf/", "cube-operator")
CLK_TCK = os.sysconf("SC_CLK_TCK")
BENCH_AGENT = "cube-operator-scale-bench"  # never counted as the operator's


class PhaseTimeout(Exception):
    """A phase did not finish in time; the message says which and what was seen."""


class ChildDied(Exception):
    pass


def log(msg: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_LIBC = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM when this bench dies (PR_SET_PDEATHSIG),
    so a killed bench leaves no emulator, simulator or operator behind."""
    _LIBC.prctl(1, signal.SIGTERM)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def proc_status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


# ---- child processes ------------------------------------------------------------------


class Child:
    """A process of ours: output to ``workdir/NAME.log``; stopped with SIGTERM, then SIGKILL.
    It also gets SIGTERM should this bench die without cleaning up (PR_SET_PDEATHSIG)."""

    def __init__(self, name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env={**os.environ, **(env or {})}, cwd=REPO,
                                         preexec_fn=_die_with_parent)  # noqa: PLW1509 - one libc call
        self.pid = self.proc.pid
        self.stopped_cpu: float | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check(self) -> None:
        if not self.alive():
            raise ChildDied(f"{self.name} (pid {self.pid}) exited with {self.proc.returncode}; "
                            f"last lines of {self.log_path.name}:\n{self.tail(15)}")

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            match = regex.search(self.log_path.read_text(errors="replace"))
            if match:
                return match
            self.check()
            time.sleep(0.1)
        raise PhaseTimeout(f"{self.name} did not print its ready line within {timeout:.0f}s:\n{self.tail()}")

    def cpu(self) -> float:
        return cpu_seconds(self.pid) if self.alive() else (self.stopped_cpu or 0.0)

    def stop(self, grace: float = 20.0) -> None:
        if self.alive():
            with contextlib.suppress(OSError):
                self.stopped_cpu = cpu_seconds(self.pid)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log(f"{self.name} (pid {self.pid}) ignored SIGTERM for {grace:.0f}s: SIGKILL")
                self.proc.kill()
                self.proc.wait(timeout=10)


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.2,
               children: tuple[Child, ...] = ()) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        for child in children:
            child.check()
        try:
            last = predicate()
        except (httpx.HTTPError, ValueError, KeyError) as error:
            last = f"{type(error).__name__}: {error}"
        else:
            if last:
                return last
        time.sleep(interval)
    raise PhaseTimeout(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {str(last)[:300]}")


# ---- one environment: emulator + simulator + operator --------------------------------


@dataclass
class Env:
    workdir: Path
    mode: str
    time_scale: float
    poll_interval: float
    max_concurrent: int | None
    history_size: int
    emulator: Child | None = None
    simulator: Child | None = None
    operator: Child | None = None
    kube_url: str = ""
    sim_url: str = ""
    admin_url: str = ""
    metrics_url: str = ""
    kubeconfig: Path = field(default_factory=Path)

    def children(self) -> tuple[Child, ...]:
        return tuple(c for c in (self.emulator, self.simulator, self.operator) if c is not None)

    def start_backends(self) -> None:
        self.kubeconfig = self.workdir / "kubeconfig"
        self.emulator = Child("emulator", [sys.executable, "-m", "kubeapi", "--port", "0", "--kubeconfig",
                                           str(self.kubeconfig), "--history-size", str(self.history_size)],
                              self.workdir)
        self.kube_url = self.emulator.wait_for_line(r"serving (http://\S+);", 30).group(1)
        rate_limit = KROVA_LIMIT if self.mode == "real" else 0
        self.simulator = Child("simulator", [sys.executable, "-m", "cloudsim", "krova", "--port", "0",
                                             "--api-key", API_KEY, "--space-id", SPACE_ID,
                                             "--time-scale", str(self.time_scale),
                                             "--rate-limit", str(rate_limit)], self.workdir)
        match = self.simulator.wait_for_line(r"listening on (http://\S+) \(admin (http://\S+)\)", 30)
        self.sim_url, self.admin_url = match.group(1), match.group(2)
        # One Krova region is one server, whose pool of SSH host ports (30000..32767 by
        # default) would leave every Cube past the 2,768th in `error`: widen it.
        httpx.put(f"{self.admin_url}/config", json={"host_port_min": 1024, "host_port_max": 65535},
                  timeout=10).raise_for_status()
        config = httpx.get(f"{self.admin_url}/config", timeout=10).json()
        assert config["rate_limit"] == rate_limit, config

    def start_operator(self) -> None:
        port = free_port()
        self.metrics_url = f"http://127.0.0.1:{port}/metrics"
        budget = self.time_scale if self.mode == "real" else OFF_BUDGET_SCALE
        argv = [str(BIN / "cube-operator"), "run", "--poll-interval", f"{self.poll_interval:g}",
                "--budget-scale", f"{budget:g}", "--allow-endpoint", "http://127.0.0.1",
                "--metrics-port", str(port), "--liveness-port", "0", "--webhook-port", "0",
                "--bind-address", "127.0.0.1", "--log-level", "warning", "--standalone"]
        if self.max_concurrent:
            argv += ["--max-concurrent-reconciles", str(self.max_concurrent)]
        self.operator = Child("operator", argv, self.workdir,
                              env={"KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1"})
        wait_until(lambda: httpx.get(self.metrics_url, timeout=2).status_code == 200, 60,
                   "the operator's /metrics", children=self.children())

    def stop(self) -> None:
        for child in (self.operator, self.simulator, self.emulator):
            if child is not None:
                child.stop(grace=30.0 if child is self.operator else 15.0)

    # -- helpers ------------------------------------------------------------------------

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 120) -> str:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.workdir)}
        try:
            result = subprocess.run([KUBECTL, f"--kubeconfig={self.kubeconfig}",
                                     f"--cache-dir={self.workdir / '.kube-cache'}", *args],
                                    input=input, capture_output=True, text=True, timeout=timeout, env=env,
                                    check=False)
        except subprocess.TimeoutExpired as error:
            raise PhaseTimeout(f"kubectl {' '.join(args[:3])} did not finish within {timeout:.0f}s") from error
        if result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args[:4])} failed: {result.stderr.strip()[:2000]}")
        return result.stdout

    def kube(self) -> httpx.Client:
        return httpx.Client(base_url=self.kube_url, timeout=60, headers={"User-Agent": BENCH_AGENT})

    def sim_stats(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = httpx.get(f"{self.admin_url}/stats", timeout=30).json()["requests"]
        return rows

    def metrics(self) -> dict[str, float]:
        text = httpx.get(self.metrics_url, timeout=10).text
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    out[name] = float(value)
        return out


def metric_sum(metrics: dict[str, float], prefix: str, **labels: str) -> float:
    total = 0.0
    for name, value in metrics.items():
        if name.startswith(prefix + "{") and all(f'{k}="{v}"' in name for k, v in labels.items()):
            total += value
    return total


def stats_delta(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    counts: Counter[tuple[str, str, str]] = Counter()
    for row in after:
        counts[(row["method"], row["route"], str(row["status"]))] += row["count"]
    for row in before:
        counts[(row["method"], row["route"], str(row["status"]))] -= row["count"]
    return +counts


def short_route(method: str, route: str) -> str:
    route = route.removeprefix("/api/v1").replace("/spaces/{spaceId}", "")
    if method == "GET" and route == "/cubes":
        return "list"
    if method == "GET" and route == "/cubes/{cubeId}":
        return "get"
    return f"{method} {route}"


# ---- following the Cubes ---------------------------------------------------------------


class ReadyTracker(threading.Thread):
    """Follows the namespace's Cubes with one list and a resumed watch; records when each
    first had ``status.id`` (created at the provider) and ``Ready=True``."""

    def __init__(self, env: Env, namespace: str) -> None:
        super().__init__(daemon=True, name="ready-tracker")
        self.path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/cubes"
        self.env = env
        self.created_at: dict[str, float] = {}
        self.ready_at: dict[str, float] = {}
        self.reasons: dict[str, str] = {}
        self.stopping = threading.Event()
        self.problem = ""
        self.lock = threading.Lock()

    def see(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        now = time.monotonic()
        ready: dict[str, Any] = next(
            (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
        with self.lock:
            self.reasons[name] = ready.get("reason", "") or "(no status)"
            if status.get("id") and name not in self.created_at:
                self.created_at[name] = now
            if ready.get("status") == "True" and name not in self.ready_at:
                self.ready_at[name] = now

    def run(self) -> None:
        with httpx.Client(base_url=self.env.kube_url, headers={"User-Agent": BENCH_AGENT},
                          timeout=httpx.Timeout(60, read=40)) as client:
            rv = ""
            while not self.stopping.is_set():
                try:
                    if not rv:
                        body = client.get(self.path).json()
                        for item in body["items"]:
                            self.see(item)
                        rv = body["metadata"]["resourceVersion"]
                    params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true",
                              "timeoutSeconds": "20"}
                    with client.stream("GET", self.path, params=params) as stream:
                        for line in stream.iter_lines():
                            if self.stopping.is_set():
                                return
                            if not line.strip():
                                continue
                            event = json.loads(line)
                            if event["type"] == "ERROR":
                                rv = ""  # 410 Expired: list again
                                break
                            rv = event["object"]["metadata"].get("resourceVersion", rv)
                            if event["type"] in ("ADDED", "MODIFIED"):
                                self.see(event["object"])
                except (httpx.HTTPError, ValueError, KeyError) as error:
                    self.problem = f"{type(error).__name__}: {error}"
                    time.sleep(0.5)

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return len(self.created_at), len(self.ready_at)

    def not_ready_reasons(self) -> Counter[str]:
        with self.lock:
            return Counter(r for n, r in self.reasons.items() if n not in self.ready_at)


# ---- one measurement -------------------------------------------------------------------


@dataclass
class Result:
    mode: str
    size: int
    controller: str = "cube-operator"
    error: str = ""
    apply_s: float | None = None
    created_s: float | None = None
    ready_s: float | None = None
    floor_s: float | None = None
    reconcile_errors: float | None = None
    reconcile_errors_steady: float | None = None
    reconcile_retries: float | None = None
    kube_by_verb: dict[str, float] = field(default_factory=dict)
    provider_by_route: dict[str, float] = field(default_factory=dict)
    provider_errors: int = 0
    rss_mib: float | None = None
    cpu_per_cube: float | None = None
    steady_cpu_pct: float | None = None
    notes: list[str] = field(default_factory=list)


def rate_limit_floor(size: int, time_scale: float) -> float:
    """Earliest moment the N-th create can be admitted under Krova's sliding-window limit:
    the first window's 10 go at once, every later 10 wait one more window (60 s / T)."""
    return (math.ceil(size / KROVA_LIMIT) - 1) * KROVA_WINDOW / time_scale


def cube_docs(namespace: str, names: list[str]) -> str:
    docs = [{"apiVersion": f"{GROUP}/{VERSION}", "kind": "Cube",
             "metadata": {"name": n, "namespace": namespace},
             "spec": {"providerConfigRef": {"name": "krova"}, "image": "ubuntu-24.04",
                      "region": "eu-nuremberg", "resources": {"vcpu": 1, "ramGb": 1, "diskGb": 10},
                      "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2eTestKey bench@scale"}}
            for n in names]
    return yaml.safe_dump_all(docs)


def measure(args: argparse.Namespace, mode: str, size: int, root: Path, keep: list[Env]) -> list[Result]:
    tag = f"[{mode} N={size}]"
    workdir = Path(tempfile.mkdtemp(prefix=f"{mode}-{size}-", dir=root))
    env = Env(workdir, mode, args.time_scale, args.poll_interval, args.max_concurrent_reconciles,
              history_size=max(5000, 20 * size))
    ours = Result(mode, size)
    naive = Result(mode, size, controller="naive (GET per Cube per interval)")
    ours.floor_s = rate_limit_floor(size, args.time_scale) if mode == "real" else 0.0
    tracker: ReadyTracker | None = None
    try:
        env.start_backends()
        from cube_operator.api import KINDS
        from cube_operator.api.crds import crd_for
        env.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([crd_for(info) for info in KINDS]))
        env.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                    *[f"crd/{info.crd_name}" for info in KINDS], timeout=90)
        env.start_operator()
        assert env.operator is not None and env.emulator is not None and env.simulator is not None
        log(f"{tag} emulator {env.kube_url} (pid {env.emulator.pid}), simulator {env.sim_url} "
            f"(pid {env.simulator.pid}), operator pid {env.operator.pid}, workdir {workdir}")

        namespace = "scale-" + uuid.uuid4().hex[:6]
        env.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "krova-credentials", "namespace": namespace},
             "stringData": {"apiKey": API_KEY}},
            {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ProviderConfig",
             "metadata": {"name": "krova", "namespace": namespace},
             "spec": {"provider": "krova", "endpoint": env.sim_url,
                      "credentialsSecretRef": {"name": "krova-credentials", "key": "apiKey"},
                      "krova": {"spaceId": SPACE_ID}}},
        ]))
        with env.kube() as kube:
            def pc_ready() -> bool:
                obj = kube.get(f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/providerconfigs/krova").json()
                conds = (obj.get("status") or {}).get("conditions") or []
                return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
            wait_until(pc_ready, 60, "the ProviderConfig to be Ready", interval=0.5, children=env.children())

        manifest = workdir / "cubes.yaml"
        names = [f"c-{i:05d}" for i in range(size)]
        manifest.write_text(cube_docs(namespace, names))
        tracker = ReadyTracker(env, namespace)
        tracker.start()
        stats0 = env.sim_stats()
        cpu0 = {c.name: c.cpu() for c in env.children()}
        started = time.monotonic()
        env.kubectl("apply", "-f", str(manifest), timeout=max(120.0, size * 0.5))
        ours.apply_s = time.monotonic() - started
        log(f"{tag} kubectl apply of {size} Cubes took {ours.apply_s:.1f}s")

        ready_timeout = args.ready_timeout or (3 * (ours.floor_s or 0) + 180 + 0.6 * size)
        deadline = started + ready_timeout
        last_report = 0.0
        while True:
            for child in env.children():
                child.check()
            created, ready = tracker.counts()
            now = time.monotonic()
            if ready >= size:
                break
            if now > deadline:
                reasons = ", ".join(f"{r}: {n}" for r, n in tracker.not_ready_reasons().most_common(5))
                raise PhaseTimeout(f"only {ready}/{size} Cubes Ready ({created} with a provider id) after "
                                   f"{ready_timeout:.0f}s; not Ready by reason: {reasons}")
            if now - last_report >= 15:
                log(f"{tag} t={now - started:.0f}s: {created}/{size} created at the provider, {ready}/{size} Ready")
                last_report = now
            time.sleep(0.2)
        cpu_ready = {c.name: c.cpu() for c in env.children()}
        stats_ready = env.sim_stats()
        tracker.stopping.set()
        ours.ready_s = max(tracker.ready_at.values()) - started
        ours.created_s = max(tracker.created_at.values()) - started
        ours.cpu_per_cube = (cpu_ready["operator"] - cpu0["operator"]) / size
        create_calls = stats_delta(stats0, stats_ready)
        mutating = sum(c for (m, _, _), c in create_calls.items() if m != "GET")
        throttled = sum(c for (_, _, s), c in create_calls.items() if s == "429")
        creates = sum(c for (m, r, s), c in create_calls.items() if m == "POST" and r.endswith("/cubes")
                      and s.startswith("2"))
        wall = ours.ready_s
        ours.notes.append(
            f"create phase: kubectl apply {ours.apply_s:.1f}s, all {size} created at the provider after "
            f"{ours.created_s:.1f}s, all Ready after {ours.ready_s:.1f}s; provider: {creates} creates, "
            f"{mutating} mutating calls, {throttled} answered 429, "
            f"{sum(create_calls.values())} calls in all; CPU s over those {wall:.0f}s: "
            + ", ".join(f"{n} {cpu_ready[n] - cpu0[n]:.1f} ({(cpu_ready[n] - cpu0[n]) / wall * 100:.0f}%)"
                        for n in cpu0))
        log(f"{tag} all {size} Ready after {ours.ready_s:.1f}s (floor {ours.floor_s:.1f}s); "
            f"settling {args.settle_seconds:g}s")

        with env.kube() as kube:
            records = kube.get("/_emulator/requests").json()
            create_kube = Counter(r["verb"] + (f"/{r['subresource']}" if r["subresource"] else "")
                                  + f" {r['resource']}"
                                  for r in records if r["user_agent"].startswith(OPERATOR_AGENTS))
            ours.notes.append("Kubernetes requests by the operator from its start to all Ready, per Cube: "
                              + ", ".join(f"{v} {n / size:.2f}" for v, n in create_kube.most_common()
                                          if n / size >= 0.01))
            time.sleep(args.settle_seconds)
            metrics0 = env.metrics()
            kube.delete("/_emulator/requests")
            stats1 = env.sim_stats()
            cpu1 = {c.name: c.cpu() for c in env.children()}
            t1 = time.monotonic()
            log(f"{tag} steady window: {args.steady_seconds:g}s")
            end = t1 + args.steady_seconds
            while time.monotonic() < end:
                for child in env.children():
                    child.check()
                time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            records = kube.get("/_emulator/requests").json()
            stats2 = env.sim_stats()
            cpu2 = {c.name: c.cpu() for c in env.children()}
            window = time.monotonic() - t1
            metrics1 = env.metrics()
            ours.rss_mib = proc_status_kib(env.operator.pid, "VmHWM") / 1024
            items = kube.get(f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/cubes").json()["items"]

        per_hour = 3600.0 / window / size
        by_verb: Counter[str] = Counter()
        by_resource: Counter[str] = Counter()
        for r in records:
            if r["user_agent"].startswith(OPERATOR_AGENTS):
                verb = r["verb"] + (f"/{r['subresource']}" if r["subresource"] else "")
                by_verb[verb] += 1
                by_resource[f"{verb} {r['resource']}"] += 1
        ours.kube_by_verb = {k: v * per_hour for k, v in by_verb.items()}
        ours.notes.append("steady Kubernetes requests by verb and resource (count in the window): "
                          + ", ".join(f"{k} {v}" for k, v in by_resource.most_common()))
        steady_calls = stats_delta(stats1, stats2)
        routes: Counter[str] = Counter()
        for (m, r, s), c in steady_calls.items():
            routes[short_route(m, r)] += c
            if not s.startswith("2"):
                ours.provider_errors += c
        ours.provider_by_route = {k: v * per_hour for k, v in routes.items()}
        ours.steady_cpu_pct = (cpu2["operator"] - cpu1["operator"]) / window * 100
        ours.reconcile_errors = metric_sum(metrics1, "cube_operator_reconciles_total", result="error")
        ours.reconcile_errors_steady = ours.reconcile_errors - metric_sum(
            metrics0, "cube_operator_reconciles_total", result="error")
        ours.reconcile_retries = metric_sum(metrics1, "cube_operator_reconciles_total", result="retry")
        waits = metric_sum(metrics1, "cube_operator_rate_limit_waits_total")
        wait_s = metric_sum(metrics1, "cube_operator_rate_limit_wait_seconds_total")
        steady_reconciles = (metric_sum(metrics1, "cube_operator_reconciles_total", kind="Cube")
                             - metric_sum(metrics0, "cube_operator_reconciles_total", kind="Cube"))
        still_ready = sum(1 for o in items if any(c.get("type") == "Ready" and c.get("status") == "True"
                                                  for c in (o.get("status") or {}).get("conditions") or []))
        ours.notes.append(
            f"steady window {window:.0f}s: {steady_reconciles:.0f} Cube reconcile passes "
            f"({steady_reconciles / size / window * args.poll_interval:.2f} per Cube per poll interval), "
            f"{sum(by_verb.values())} Kubernetes requests, {sum(steady_calls.values())} provider calls "
            f"({ours.provider_errors} not 2xx); {still_ready}/{size} still Ready at its end; CPU %: "
            + ", ".join(f"{n} {(cpu2[n] - cpu1[n]) / window * 100:.1f}" for n in cpu1)
            + f"; RSS MiB: emulator {proc_status_kib(env.emulator.pid, 'VmHWM') / 1024:.0f}, "
              f"simulator {proc_status_kib(env.simulator.pid, 'VmHWM') / 1024:.0f} (peak)")
        ours.notes.append(f"whole run: reconciles error={ours.reconcile_errors:.0f} "
                          f"retry={ours.reconcile_retries:.0f}; client-side rate-limit waits {waits:.0f} "
                          f"({wait_s:.0f}s summed)")
        problems = [line for line in env.operator.log_path.read_text(errors="replace").splitlines()
                    if re.search(r"\b(WARNING|ERROR|CRITICAL|Traceback)\b", line)]
        if problems:
            ours.notes.append(f"operator log: {len(problems)} WARNING/ERROR lines; first ones:\n      "
                              + "\n      ".join(p[:400] for p in problems[:6]))

        # ---- the naive controller, against the same simulator and Cubes ----------------
        env.operator.stop(grace=60.0)
        ids = [o["status"]["id"] for o in items if (o.get("status") or {}).get("id")]
        (workdir / "ids.json").write_text(json.dumps(ids))
        report = workdir / "naive.json"
        log(f"{tag} operator stopped; naive controller: {len(ids)} Cubes, one GET each per "
            f"{args.poll_interval:g}s, for {args.naive_seconds:g}s")
        stats3 = env.sim_stats()
        sim_cpu3 = env.simulator.cpu()
        worker = Child("naive", [sys.executable, str(Path(__file__).resolve()), "--naive-worker",
                                 env.sim_url, str(workdir / "ids.json"), f"{args.poll_interval:g}",
                                 f"{args.naive_seconds:g}", str(report)], workdir)
        try:
            worker.proc.wait(timeout=args.naive_seconds + 120)
        except subprocess.TimeoutExpired:
            worker.stop()
            raise PhaseTimeout(f"the naive controller did not finish within {args.naive_seconds + 120:.0f}s") from None
        if worker.proc.returncode != 0:
            raise ChildDied(f"the naive controller failed:\n{worker.tail()}")
        stats4 = env.sim_stats()
        own = json.loads(report.read_text())
        sim_cpu_pct = (env.simulator.cpu() - sim_cpu3) / own["seconds"] * 100
        naive_calls = stats_delta(stats3, stats4)
        naive_per_hour = 3600.0 / own["seconds"] / len(ids)
        routes = Counter()
        for (m, r, s), c in naive_calls.items():
            routes[short_route(m, r)] += c
            if not s.startswith("2"):
                naive.provider_errors += c
        naive.provider_by_route = {k: v * naive_per_hour for k, v in routes.items()}
        naive.rss_mib = own["maxrss_kib"] / 1024
        naive.steady_cpu_pct = own["cpu_s"] / own["seconds"] * 100
        naive.reconcile_errors = naive.provider_errors
        naive.notes.append(
            f"naive: the simulator counted {sum(naive_calls.values())} calls in its {own['seconds']:.0f}s window "
            f"({own['sent']} sent by the loop, {own['failed']} failed, {own['late_s']:.1f}s behind schedule at "
            f"the end) for {len(ids)} Cubes; per Cube per hour = count / N / window x 3600; simulator CPU "
            f"{sim_cpu_pct:.1f}% meanwhile")
    except Exception as error:  # noqa: BLE001 - any failure becomes this row's message
        ours.error = f"{type(error).__name__}: {error}"
        log(f"{tag} FAILED: {ours.error}")
        if env.operator is not None:
            log(f"{tag} operator log tail:\n{env.operator.tail(30)}")
            problems = [line for line in env.operator.log_path.read_text(errors="replace").splitlines()
                        if re.search(r"\b(WARNING|ERROR|CRITICAL)\b", line)]
            ours.notes.append(f"FAILED: {ours.error}")
            if problems:
                ours.notes.append(f"operator log: {len(problems)} WARNING/ERROR lines; first ones:\n      "
                                  + "\n      ".join(p[:400] for p in problems[:8]))
        if tracker is not None:
            created, ready = tracker.counts()
            ours.notes.append(f"at failure: {created}/{size} created at the provider, {ready}/{size} Ready")
    finally:
        if tracker is not None:
            tracker.stopping.set()
        if args.keep:
            keep.append(env)
        else:
            env.stop()
    return [ours, naive]


# ---- the naive controller (a process of its own) --------------------------------------


def naive_worker(sim_url: str, ids_file: str, interval: float, seconds: float, report: str) -> None:
    """GET every Cube once per ``interval``, spread evenly over it (as per-object timers
    would), for ``seconds``; at most 32 requests in flight. Writes what it did to ``report``."""
    import asyncio
    import resource

    ids: list[str] = json.loads(Path(ids_file).read_text())

    async def main() -> dict[str, Any]:
        sent = failed = 0
        gate = asyncio.Semaphore(32)
        tasks: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(base_url=sim_url, headers={"X-API-KEY": API_KEY}, timeout=30,
                                     limits=httpx.Limits(max_connections=32)) as client:
            async def get(cube_id: str) -> None:
                nonlocal failed
                async with gate:
                    try:
                        response = await client.get(f"/spaces/{SPACE_ID}/cubes/{cube_id}")
                        failed += response.status_code != 200
                    except httpx.HTTPError:
                        failed += 1

            cpu_start = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
            start = time.monotonic()
            step = interval / max(1, len(ids))
            slot = 0
            late = 0.0
            while True:
                due = start + slot * step
                if due >= start + seconds:
                    break
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                late = max(0.0, -delay)
                task = asyncio.create_task(get(ids[slot % len(ids)]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
                slot += 1
            if tasks:
                await asyncio.wait(tasks)
            elapsed = time.monotonic() - start
            cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu_start
        return {"sent": sent, "failed": failed, "seconds": max(seconds, elapsed), "cpu_s": cpu,
                "late_s": late, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}

    Path(report).write_text(json.dumps(asyncio.run(main())))


# ---- the table -------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def breakdown(parts: dict[str, float], digits: int = 1) -> str:
    if not parts:
        return "0"
    total = sum(parts.values())
    top = sorted(parts.items(), key=lambda kv: -kv[1])
    return f"**{total:,.{digits}f}**: " + ", ".join(f"{k} {v:,.{digits}f}" for k, v in top)


def table(results: list[Result], args: argparse.Namespace) -> str:
    head = ["limit", "controller", "N", "s to all Ready", "rate-limit floor s", "ratio",
            "reconcile errors (steady)", "K8s API req/Cube/h by verb",
            "provider calls/Cube/h", "peak RSS MiB", "CPU s/Cube created", "steady CPU %"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        limit = f"real (10/60 s, ×{args.time_scale:g})" if r.mode == "real" else "off"
        if r.controller.startswith("naive"):
            if not r.provider_by_route and r.rss_mib is None:
                continue
            cells = [limit, r.controller, f"{r.size:,}", "–", "–", "–", f"{r.provider_errors} failed GETs",
                     "– (not modelled)", breakdown(r.provider_by_route), fmt(r.rss_mib, 0), "–",
                     fmt(r.steady_cpu_pct, 2)]
        else:
            ratio = (f"{r.ready_s / r.floor_s:.2f}" if r.ready_s and r.floor_s else "–")
            floor = "0 (off)" if r.mode == "off" else fmt(r.floor_s)
            errors = ("–" if r.reconcile_errors is None
                      else f"{r.reconcile_errors:.0f} ({r.reconcile_errors_steady:.0f})")
            ready = f"{fmt(r.ready_s)} (all created {fmt(r.created_s)})" if r.ready_s else "–"
            if r.error:
                ready = f"FAILED: {r.error[:120]}"
            cells = [limit, r.controller, f"{r.size:,}", ready, floor, ratio, errors,
                     breakdown(r.kube_by_verb) if r.kube_by_verb else "–",
                     breakdown(r.provider_by_route, 2) if r.provider_by_route else "–",
                     fmt(r.rss_mib, 0), fmt(r.cpu_per_cube, 3), fmt(r.steady_cpu_pct, 2)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--naive-worker":
        _, _, sim_url, ids_file, interval, seconds, report = sys.argv
        naive_worker(sim_url, ids_file, float(interval), float(seconds), report)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000], help="numbers of Cubes (100 1000)")
    parser.add_argument("--with-10k", action="store_true", help="add 10000 to the sizes")
    parser.add_argument("--limits", choices=("real", "off", "both"), default="both",
                        help="the provider's rate limit: real (time-scaled), off, or both (default)")
    parser.add_argument("--time-scale", type=float, default=20.0,
                        help="simulator clock speed-up, also the operator's --budget-scale with real "
                             "limits: Krova's 60 s window becomes 60/T s (default 20: 3 s)")
    parser.add_argument("--poll-interval", type=float, default=30.0,
                        help="the operator's --poll-interval and the naive controller's interval, "
                             "real seconds (default 30, the operator's default)")
    parser.add_argument("--steady-seconds", type=float, default=60.0, help="steady window (default 60)")
    parser.add_argument("--naive-seconds", type=float, default=None,
                        help="the naive controller's window (default: --steady-seconds)")
    parser.add_argument("--settle-seconds", type=float, default=15.0,
                        help="wait after all Ready before the steady window (default 15)")
    parser.add_argument("--ready-timeout", type=float, default=None,
                        help="seconds allowed from apply to all Ready (default 3 x floor + 180 + 0.6 N)")
    parser.add_argument("--max-concurrent-reconciles", type=int, default=None,
                        help="passed to the operator (default: the operator's, 32)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the processes and the temporary directory until Ctrl-C")
    args = parser.parse_args()
    if args.naive_seconds is None:
        args.naive_seconds = args.steady_seconds
    sizes = list(dict.fromkeys(args.sizes + ([10000] if args.with_10k else [])))
    modes = ["real", "off"] if args.limits == "both" else [args.limits]
    niceness = os.nice(0)
    command = shlex.join((["nice", "-n", str(niceness)] if niceness else [])
                         + [os.path.relpath(sys.executable), *sys.argv])

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    # SIGINT too: a shell without job control starts background commands with it ignored.
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)

    root = Path(tempfile.mkdtemp(prefix="cube-scale-"))
    keep: list[Env] = []
    results: list[Result] = []
    wall0 = time.monotonic()
    try:
        for size in sizes:
            for mode in modes:
                results += measure(args, mode, size, root, keep)
        wall = time.monotonic() - wall0
        print(f"\n$ {command}\n")
        print(f"Krova simulator, time scale {args.time_scale:g}; operator poll interval "
              f"{args.poll_interval:g} s; steady window {args.steady_seconds:g} s; wall time {wall:.0f} s\n")
        print(table(results, args))
        print("\nHow each figure was obtained:")
        print(f"- floor: (ceil(N/10) - 1) x 60 s / {args.time_scale:g}: Krova admits 10 mutating calls per "
              "sliding 60 s per client, so the first 10 creates go at once and every further 10 wait one window; "
              f"provisioning + boot add (2 + 2) s / {args.time_scale:g} per Cube after its create. ratio = s to all "
              "Ready / floor. Seconds to all Ready run from the start of `kubectl apply` to the last Cube's first "
              "Ready=True seen on a watch; (all created): to the last Cube's first status.id.")
        print("- reconcile errors: cube_operator_reconciles_total{result=\"error\"} over all kinds for the whole "
              "run, (in the steady window); naive row: GETs the simulator did not answer 2xx.")
        print("- K8s API requests: the emulator's request log over the steady window, user agent kopf/* or "
              "cube-operator*, by verb[/subresource] and resource, x 3600 / window / N.")
        print("- provider calls: the simulator's /_sim/stats delta over the steady window (list = GET /cubes, "
              "paginated 100 a page; get = GET /cubes/{cubeId}), x 3600 / window / N.")
        print("- operator RSS: VmHWM, CPU: utime+stime of /proc/PID; CPU s/Cube created = operator CPU from "
              "apply to all Ready / N; steady CPU % = operator CPU in the window / window (100 % = one core).")
        print("- naive: after the operator is stopped, a separate process GETs every Cube once per poll "
              "interval (spread over it, 32 in flight at most) against the same simulator; its provider calls "
              "are the simulator's counters over its window, its RSS and CPU its own getrusage. It creates "
              "nothing and its Kubernetes traffic is not modelled (–).")
        for r in results:
            for note in r.notes:
                print(f"- {r.mode} N={r.size}: {note}")
        if keep:
            print(f"\n--keep: processes still running, files in {root}:")
            for env in keep:
                print(f"  {env.mode}: KUBECONFIG={env.kubeconfig} simulator admin {env.admin_url} pids "
                      + " ".join(f"{c.name}={c.pid}" for c in env.children() if c.alive()))
            print("Ctrl-C stops them and removes the directory.", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
        return 0 if all(not r.error for r in results) else 1
    except KeyboardInterrupt:
        log("interrupted; stopping every process")
        return 130
    finally:
        for env in keep:
            env.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
