"""The operator, with nothing but the Helm chart's RBAC, on a real kube-apiserver
(.tools/bin/realkube, built by `make tools`).

The chart is installed with the real helm; a token of its ServiceAccount comes from the
TokenRequest API (`kubectl create token`), and the real `cube-operator run` process runs
locally with the args and env of the chart's Deployment (ports moved to free ones, plus
--budget-scale for the simulator's clock) and a kubeconfig holding only that token,
against the Krova simulator. It handles a ProviderConfig, a Webhook with
`receiver: operator` (whose signing secret it writes into a Secret), a Cube and a Snapshot
through to their deletion, without --delete-dependents (the chart passes no such flag and
grants no delete: on a cluster the garbage collector deletes a Cube's dependents).

Twice: with the chart's defaults (cluster-wide: a ClusterRole and the ClusterKopfPeering),
and with watchNamespaces (a Role and a KopfPeering in the watched namespace).

The API server writes an audit event for every request of the ServiceAccount and every
unauthenticated one (system:anonymous: a client that sent no token). The test fails, as
soon as it happens, on a request that was not the ServiceAccount's or that the RBAC
authorizer refused (401/403, decision "forbid"), and at the end on any other client error
it did not expect and on "Forbidden", a 403 or a traceback in the operator's log."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudsim.testing import running_simulator
from support.e2e import (
    API_KEY,
    SPACE_ID,
    TIME_SCALE,
    Krova,
    condition,
    cube_manifest,
    free_port,
    provider_config,
)
from support.realkube import (
    HELM,
    REALKUBE,
    RealKube,
    apply,
    audit_args,
    audit_events,
    create_token,
    helm,
    kubectl,
    kubectl_json,
    running_realkube,
    sa_username,
    token_kubeconfig,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "cube-operator"
RELEASE = "cube-operator"
NAMESPACE = "cube-operator-system"
SERVICE_ACCOUNT = "cube-operator"
OPERATOR = sa_username(NAMESPACE, SERVICE_ACCOUNT)
POD = "cube-operator-7c9d6b5f4d-x2k7q"  # what the Deployment's fieldRef would give POD_ID
TEAM = "team-rbac"
API = "cube-operator.io/v1alpha1"
PLURALS = ("providerconfigs", "cubes", "snapshots", "restores", "tcpmappings", "domains",
           "webhooks")
PORT_FLAGS = ("--liveness-port", "--metrics-port", "--webhook-port")
# Answers that are part of normal work: 404 (a Secret not written yet, an object already
# gone), 409 (a create or patch that lost a race, retried), 410 (a watch's resourceVersion
# expired; kopf relists), and a 422 to a JSON patch whose "test" of metadata.resourceVersion
# failed (kopf adds its finalizer that way and retries on the next event). Anything else
# 4xx/5xx fails the test.
EXPECTED_CODES = {404, 409, 410}
FAILED_TEST_OP = "the server rejected our request due to an error in our request"
# Request bodies of the operator's patches of its own kinds (to recognise those 422s).
PATCH_BODIES = {"level": "Request", "verbs": ["patch"],
                "resources": [{"group": "cube-operator.io"}]}
FORBIDDEN_IN_LOG = re.compile(r"forbidden|traceback|(?<![\d.,:])\b403\b(?![\d.,:])",
                              re.IGNORECASE)

Obj = dict[str, Any]


def require_tools() -> None:
    for tool in (REALKUBE, HELM):
        if not tool.exists():
            pytest.fail(f"{tool} is missing: run `make tools` (scripts/install-test-tools.sh; "
                        "realkube needs Go on PATH and builds testbed/realkube)")


def obj(kind: str, name: str, **spec: Any) -> Obj:
    return {"apiVersion": API, "kind": kind, "metadata": {"name": name, "namespace": TEAM},
            "spec": spec}


class OperatorProcess:
    """`cube-operator run` as the chart's Deployment runs it, outside a pod."""

    def __init__(self, deployment: Obj, kubeconfig: Path, log_path: Path) -> None:
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        self.ports = {flag: free_port() for flag in PORT_FLAGS}
        args = []
        for arg in container["args"]:
            flag = arg.partition("=")[0]
            args.append(f"{flag}={self.ports[flag]}" if flag in self.ports else arg)
        # The simulator's clock runs TIME_SCALE times faster; listen on loopback only.
        self.args = [*args, f"--budget-scale={TIME_SCALE}", "--bind-address=127.0.0.1"]
        # The Deployment's env: POD_ID/POD_NAMESPACE from fieldRefs, TMPDIR as a value.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("KUBERNETES_", "CUBE_OPERATOR_"))}
        for var in container["env"]:
            ref = (var.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath")
            env[var["name"]] = {"metadata.name": POD, "metadata.namespace": NAMESPACE}[ref] \
                if ref else var["value"]
        env["TMPDIR"] = str(log_path.parent)  # the pod's emptyDir on /tmp
        env.update(KUBECONFIG=str(kubeconfig), PYTHONUNBUFFERED="1")
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = Path(sys.executable).with_name("cube-operator")
        assert exe.exists(), f"{exe}: the project is not installed in this venv (make)"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([str(exe), "run", *self.args], env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)
        wait_until(self.healthy, "the operator's /healthz", timeout=30)

    def healthy(self) -> bool:
        assert self.process and self.process.poll() is None, \
            f"the operator exited:\n{self.log()[-3000:]}"
        try:
            url = f"http://127.0.0.1:{self.ports['--liveness-port']}/healthz"
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> int | None:
        if not self.process:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def resource_of(event: Obj) -> str:
    ref = event.get("objectRef") or {}
    name = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
    return f"{name}.{ref['apiGroup']}" if ref.get("apiGroup") else name or event["requestURI"]


def code_of(event: Obj) -> int:
    return int((event.get("responseStatus") or {}).get("code") or 0)


def describe(event: Obj) -> str:
    annotations = event.get("annotations") or {}
    status = event.get("responseStatus") or {}
    return (f"{event['user']['username']} {event['verb']} {event['requestURI']} -> "
            f"{code_of(event)} {status.get('message', '')[:240]!r} "
            f"[authorization: {annotations.get('authorization.k8s.io/decision')} "
            f"{annotations.get('authorization.k8s.io/reason', '')!r}] "
            f"(user agent {event.get('userAgent')!r})")


class Audit:
    """The operator's requests in the API server's audit log (audit_args): all audited
    requests but this test's own kubectl calls."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    def events(self) -> list[Obj]:
        return [e for e in audit_events(self.tmp_path)
                if not e.get("userAgent", "").startswith("kubectl")]

    def refusals(self) -> list[str]:
        """Requests not made as the ServiceAccount, or that its RBAC refused."""
        return [describe(e) for e in self.events()
                if e["user"]["username"] != OPERATOR or code_of(e) in (401, 403)
                or (e.get("annotations") or {}).get("authorization.k8s.io/decision") == "forbid"]

    def unexpected(self) -> list[str]:
        return [describe(e) for e in self.events()
                if code_of(e) >= 400 and code_of(e) not in EXPECTED_CODES | {401, 403}
                and not lost_race(e)]


def lost_race(event: Obj) -> bool:
    """A 422 to a JSON patch whose test of metadata.resourceVersion failed."""
    body = event.get("requestObject")
    return (code_of(event) == 422 and isinstance(body, list)
            and event["responseStatus"].get("message") == FAILED_TEST_OP
            and any(op.get("op") == "test" and op.get("path") == "/metadata/resourceVersion"
                    for op in body))


def log_problems(log: str) -> list[str]:
    return [line for line in log.splitlines() if FORBIDDEN_IN_LOG.search(line)]


class Scenario:
    """Waits on the cluster that fail at once, with the evidence, as soon as the API server
    refuses the operator (audit) or its log says so, instead of at the wait's timeout."""

    def __init__(self, kube: RealKube, operator: OperatorProcess, audit: Audit) -> None:
        self.kube, self.operator, self.audit = kube, operator, audit

    def check(self) -> None:
        refused = self.audit.refusals()
        logged = log_problems(self.operator.log())
        if refused or logged:
            hint = ("\n(system:anonymous: those requests carried no credentials at all, "
                    "not the ServiceAccount's token)" if "system:anonymous " in "".join(refused)
                    else "")
            raise AssertionError(
                "the operator was refused by the API server:\n" + "\n".join(refused[:15])
                + hint + "\n--- operator log:\n" + "\n".join(logged[:15]))

    def get(self, kind: str, name: str) -> Obj | None:
        found: Obj | None = kubectl_json(self.kube, kind, name, "-n", TEAM)
        return found

    def ready(self, kind: str, name: str, timeout: float = 45) -> Obj:
        def probe() -> Obj | None:
            self.check()
            found = self.get(kind, name)
            return found if condition(found, "Ready").get("status") == "True" else None
        try:
            found: Obj = wait_until(probe, f"{kind}/{name} Ready", timeout=timeout,
                                    interval=0.3)
        except AssertionError as error:
            status = (self.get(kind, name) or {}).get("status")
            raise AssertionError(f"{error}\nstatus: {json.dumps(status)}") from None
        return found

    def delete(self, kind: str, name: str, timeout: float = 45) -> None:
        """Delete and wait until it is gone (its finalizer removed by the operator)."""
        kubectl(self.kube, "delete", kind, name, "-n", TEAM, "--wait=false")

        def gone() -> bool:
            self.check()
            return self.get(kind, name) is None
        try:
            wait_until(gone, f"{kind}/{name} gone", timeout=timeout, interval=0.3)
        except AssertionError as error:
            left = self.get(kind, name) or {}
            finalizers = left.get("metadata", {}).get("finalizers")
            raise AssertionError(f"{error}\nfinalizers: {finalizers} "
                                 f"status: {json.dumps(left.get('status'))}") from None


@pytest.mark.timeout(150)
@pytest.mark.parametrize("watch_namespaces", [False, True],
                         ids=["cluster-wide", "watchNamespaces"])
def test_operator_with_the_charts_service_account(tmp_path: Path, watch_namespaces: bool
                                                  ) -> None:
    """cluster-wide: the chart's defaults (a ClusterRole, the ClusterKopfPeering).
    watchNamespaces: [TEAM] (a Role and a KopfPeering in TEAM, a small ClusterRole)."""
    require_tools()
    began = time.monotonic()
    home = tmp_path / "helm"
    # The ServiceAccount's requests, and unauthenticated ones (a client that lost its token).
    extra = audit_args(tmp_path, [OPERATOR, "system:anonymous"], rules=[PATCH_BODIES])
    with running_realkube(tmp_path, *extra) as kube, \
            running_simulator("krova", api_key=API_KEY, space_id=SPACE_ID,
                              time_scale=TIME_SCALE) as sim:
        krova = Krova(url=sim.url, admin_url=sim.admin_url)
        # The chart with its defaults (peering on), the simulator's loopback endpoint allowed
        # as allowedEndpoints renders it, and maybe watchNamespaces (its Role and KopfPeering
        # go into TEAM, which must exist first).
        values = ["--set-json", 'allowedEndpoints=["http://127.0.0.1"]']
        if watch_namespaces:
            kubectl(kube, "create", "namespace", TEAM)
            values += ["--set-json", f'watchNamespaces=["{TEAM}"]']
        helm(kube, home, "install", RELEASE, str(CHART), "--namespace", NAMESPACE,
             "--create-namespace", *values)
        deployment = kubectl_json(kube, "deployment", RELEASE, "-n", NAMESPACE)
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == SERVICE_ACCOUNT
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert "--peering=cube-operator" in container["args"]
        assert "--allow-endpoint=http://127.0.0.1" in container["args"]
        assert not any(a.startswith("--delete-dependents") for a in container["args"])
        if watch_namespaces:
            assert f"--namespace={TEAM}" in container["args"]
            assert kubectl_json(kube, "kopfpeering", "cube-operator", "-n", TEAM)
            assert kubectl_json(kube, "role", RELEASE, "-n", TEAM)
            peering_args: tuple[str, ...] = ("kopfpeering", "cube-operator", "-n", TEAM)
        else:
            assert not any(a.startswith("--namespace") for a in container["args"])
            peering_args = ("clusterkopfpeering", "cube-operator")
        assert kubectl_json(kube, *peering_args), "the chart's peering object is missing"
        kubectl(kube, "wait", "--for=condition=Established", "--timeout=30s",
                *[f"crd/{plural}.cube-operator.io" for plural in PLURALS],
                "crd/clusterkopfpeerings.kopf.dev", timeout=40)
        # A just-Established CRD's storage answers 429 "storage is (re)initializing" for a
        # moment (kopf retries); start the operator once every kind lists.
        wait_until(lambda: kubectl(kube, "get", ",".join(PLURALS), "-A",
                                   check=False).returncode == 0,
                   "the CRDs' storage to serve lists", timeout=30)

        token = create_token(kube, NAMESPACE, SERVICE_ACCOUNT, "1h")
        sa_config = token_kubeconfig(kube, token, tmp_path / "operator.kubeconfig", "operator")
        whoami = json.loads(kubectl(sa_config, "auth", "whoami", "-o", "json").stdout)
        assert whoami["status"]["userInfo"]["username"] == OPERATOR
        # The token holds no more than the chart grants: listing Secrets is refused.
        denied = kubectl(sa_config, "get", "secrets", "-n", TEAM, check=False)
        assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()

        apply(kube, [*([] if watch_namespaces else
                       [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TEAM}}]),
                     {"apiVersion": "v1", "kind": "Secret",
                      "metadata": {"name": "krova-credentials", "namespace": TEAM},
                      "stringData": {"apiKey": API_KEY}}])
        operator = OperatorProcess(deployment, sa_config, tmp_path / "operator.log")
        audit = Audit(tmp_path)
        run = Scenario(kube, operator, audit)
        try:
            operator.start()
            apply(kube, provider_config(TEAM, krova))
            run.ready("providerconfig", "krova")

            apply(kube, [obj("Webhook", "events", providerConfigRef={"name": "krova"},
                             receiver="operator",
                             events=["cube.running", "cube.sleeping", "cube.deleted"],
                             secretRef={"name": "krova-webhook"})])
            hook = run.ready("webhook", "events")
            assert hook["status"]["url"] == (
                f"http://127.0.0.1:{operator.ports['--webhook-port']}"
                f"/webhooks/krova/{TEAM}/events")
            secret = kubectl_json(kube, "secret", "krova-webhook", "-n", TEAM)
            assert secret and secret["data"].get("secret"), "signing secret not written"

            apply(kube, [cube_manifest("host", TEAM)])
            cube = run.ready("cube", "host", timeout=60)
            cube_id = cube["status"]["id"]
            assert krova.cube(cube_id), "the Cube is not at the provider"
            apply(kube, [obj("Snapshot", "host-snap", cubeRef={"name": "host"})])
            snap = run.ready("snapshot", "host-snap", timeout=60)
            assert snap["status"]["state"] == "complete"
            assert [o["name"] for o in snap["metadata"].get("ownerReferences", [])] == ["host"]
            # The provider delivered cube.running to the operator's receiver.
            with krova.api() as api:
                deliveries = api.get(f"/spaces/{SPACE_ID}/webhooks/{hook['status']['id']}"
                                     "/deliveries").json()["deliveries"]
            assert any(d["status"] == "delivered" for d in deliveries), deliveries

            run.delete("cube", "host", timeout=60)
            wait_until(lambda: krova.cube(cube_id) is None, "the VM gone at Krova", timeout=30)
            # No garbage collector: the Snapshot stays, and says why.
            orphan = wait_until(
                lambda: condition(s := run.get("snapshot", "host-snap"), "Ready").get("reason")
                == "CubeDeleted" and s, "the Snapshot to report CubeDeleted", timeout=30)
            assert condition(orphan, "Ready")["status"] == "False"
            run.delete("snapshot", "host-snap")
            run.delete("webhook", "events")
            with krova.api() as api:
                gone = api.get(f"/spaces/{SPACE_ID}/webhooks/{hook['status']['id']}")
                assert gone.status_code == 404, "the subscription outlived its Webhook"
            run.delete("providerconfig", "krova")
        finally:
            code = operator.stop()
        log = operator.log()
        assert code == 0, f"the operator exited with {code}:\n{log[-3000:]}"
        # A clean exit leaves the peering object: no stale keep-alive of this replica.
        peering = kubectl_json(kube, *peering_args)
        assert POD not in json.dumps(peering.get("status") or {}), peering.get("status")
        events = audit.events()
        refused, unexpected = audit.refusals(), audit.unexpected()

    elapsed = time.monotonic() - began
    calls = Counter((e["verb"], resource_of(e)) for e in events)
    codes = Counter(code_of(e) for e in events)
    agents = sorted({e.get("userAgent", "").split(" ")[0] for e in events})
    print(f"\n{len(events)} audit events of {OPERATOR} (codes {dict(codes)}; user agents "
          f"{agents}); test {elapsed:.1f}s")
    for (verb, resource), n in sorted(calls.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"  {n:4d} {verb:6s} {resource}")

    assert not refused, "the API server refused the operator:\n" + "\n".join(refused)
    assert not unexpected, "unexpected answers to the operator:\n" + "\n".join(unexpected)
    # The audit saw what the operator did (else the checks above prove nothing).
    for verb, resource in (("watch", "cubes.cube-operator.io"),
                           ("patch", "cubes.cube-operator.io"),
                           ("patch", "cubes/status.cube-operator.io"),
                           ("patch", "snapshots/status.cube-operator.io"),
                           ("patch", "webhooks/status.cube-operator.io"),
                           ("patch", "providerconfigs/status.cube-operator.io"),
                           ("get", "secrets"), ("create", "secrets"), ("create", "events"),
                           ("patch", peering_args[0] + "s.kopf.dev")):
        assert (verb, resource) in calls, f"no {verb} {resource} in the audit log"
    assert not log_problems(log), "the operator log reports refusals or tracebacks:\n" + \
        "\n".join(log_problems(log)[:20])
    assert API_KEY not in log, "the API key leaked into the operator log"
    assert elapsed < 90, f"the test took {elapsed:.0f}s (budget ~90s)"
