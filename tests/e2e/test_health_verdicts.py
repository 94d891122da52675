"""What Flux and Argo CD make of cube-operator's objects, end to end: the real operator
against the Krova simulator and the API emulator, each object read back with real
`kubectl get -o json` and judged by .tools/bin/health (testbed/health):

* kstatus: sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute, what Flux waits on. It reads
  metadata.generation against status.observedGeneration, then the Reconciling and Stalled
  conditions (True: InProgress, resp. Failed), then Ready;
* Argo CD: deploy/argocd/cube-operator.io/<Kind>/health.lua under gopher-lua in Argo CD's
  sandbox (as deploy/argocd/argocd-cm.yaml configures it).

A Ready Cube is Current/Healthy; one still provisioning InProgress/Progressing; a
Stopped or paused one Current/Suspended; a terminal problem (InvalidSpec,
InvalidCredentials, Unsupported) Failed/Degraded. `pytest -s` prints the table the README
carries."""
from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.e2e import (
    Cluster,
    Krova,
    Operator,
    condition,
    cube_manifest,
    namespace_with_credentials,
    provider_config,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
HEALTH = ROOT / ".tools" / "bin" / "health"
ARGOCD = ROOT / "deploy" / "argocd"

# (scenario, object, Ready status/reason, kstatus, Argo CD) in the order the tests ran.
ROWS: list[tuple[str, str, str, str, str]] = []


@pytest.fixture(scope="module")
def health() -> Path:
    if not HEALTH.exists():
        pytest.fail(f"{HEALTH} is missing: run `make tools` (scripts/install-test-tools.sh builds it "
                    "from testbed/health with Go)")
    return HEALTH


@pytest.fixture(scope="module", autouse=True)
def table() -> Iterator[None]:
    yield
    if ROWS:
        lines = ["| scenario | object | Ready | kstatus (Flux) | Argo CD |", "|---|---|---|---|---|"]
        lines += [f"| {s} | {o} | {r} | {k} | {a} |" for s, o, r, k, a in ROWS]
        print("\n\n" + "\n".join(lines) + "\n")


def judge(health: Path, objects: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = subprocess.run([str(health), "--argocd-dir", str(ARGOCD)], input=json.dumps(objects),
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def kubectl_json(cluster: Cluster, namespace: str, *refs: str) -> dict[str, Any]:
    """`kubectl get REF... -o json`: one object, or a List of them."""
    return json.loads(cluster.kubectl("get", *refs, "-n", namespace, "-o", "json").stdout)


def ready_summary(obj: dict[str, Any]) -> str:
    ready = condition(obj, "Ready")
    return f"{ready.get('status', '-')} {ready.get('reason', '')}".strip()


def expect(cluster: Cluster, health: Path, scenario: str, namespace: str, ref: str, *,
           kstatus: str, argocd: str, timeout: float = 20) -> dict[str, Any]:
    """Read `ref` (kind/name) until both verdicts are the expected ones (the operator may
    write its conditions in more than one patch), then record the row; fail with the
    object's conditions and the verdicts otherwise."""
    last: dict[str, Any] = {}

    def matches() -> bool:
        obj = kubectl_json(cluster, namespace, ref)
        verdict = judge(health, [obj])[0]
        last.update(obj=obj, verdict=verdict)
        return verdict["kstatus"] == kstatus and verdict["argocd"] == argocd

    try:
        wait_for(matches, timeout=timeout, interval=0.5, what=f"{ref}: kstatus {kstatus}, Argo CD {argocd}")
    except AssertionError:
        conditions = json.dumps((last.get("obj", {}).get("status") or {}).get("conditions"), indent=1)
        pytest.fail(f"{scenario}: {ref} is kstatus {last['verdict']['kstatus']} "
                    f"({last['verdict']['kstatusMessage']!r}), Argo CD {last['verdict']['argocd']} "
                    f"({last['verdict']['argocdMessage']!r}); expected {kstatus}/{argocd}. "
                    f"Conditions: {conditions}")
    verdict = last["verdict"]
    assert not verdict.get("argocdError"), verdict
    name = ref.split("/", 1)[1]
    ROWS.append((scenario, f"{verdict['kind']} `{name}`", ready_summary(last["obj"]),
                 verdict["kstatus"], verdict["argocd"]))
    return last["obj"]


def wait_reason(cluster: Cluster, kind: str, name: str, namespace: str, reason: str,
                timeout: float = 60) -> dict[str, Any]:
    return wait_for(lambda: (o := cluster.get(kind, name, namespace))
                    and condition(o, "Ready").get("reason") == reason and o,
                    timeout=timeout, what=f"{kind}/{name} Ready reason {reason}")


def test_ready_running_cube_is_current_and_healthy(cluster: Cluster, health: Path, team: str) -> None:
    cluster.apply(cube_manifest("web", team))
    cluster.ready("cube", "web", team)
    expect(cluster, health, "Running Cube", team, "cube/web", kstatus="Current", argocd="Healthy")
    expect(cluster, health, "its ProviderConfig", team, "providerconfig/krova", kstatus="Current", argocd="Healthy")


def test_provisioning_cube_is_in_progress_then_current(cluster: Cluster, krova: Krova, health: Path,
                                                       team: str) -> None:
    with krova.admin() as admin:
        before = admin.get("/config").json()["provision_delay"]
        # 300 simulated seconds in "pending": 15 s here (TIME_SCALE 20).
        admin.patch("/config", json={"provision_delay": 300}).raise_for_status()
        try:
            cluster.apply(cube_manifest("slow", team))
            wait_for(lambda: (c := cluster.get("cube", "slow", team)) and (c.get("status") or {}).get("id")
                     and condition(c, "Ready").get("status") == "False"
                     and condition(c, "Ready").get("observedGeneration") == c["metadata"]["generation"],
                     timeout=30, what="the Cube created at Krova and not ready yet")
        finally:
            admin.patch("/config", json={"provision_delay": before}).raise_for_status()
    expect(cluster, health, "Cube provisioning", team, "cube/slow", kstatus="InProgress", argocd="Progressing",
           timeout=8)
    cluster.ready("cube", "slow", team, timeout=60)
    expect(cluster, health, "the same Cube once running", team, "cube/slow", kstatus="Current", argocd="Healthy")


def test_stopped_cube_is_current_and_suspended(cluster: Cluster, health: Path, team: str) -> None:
    cluster.apply(cube_manifest("sleeper", team))
    cluster.ready("cube", "sleeper", team)
    cluster.kubectl("patch", "cube", "sleeper", "-n", team, "--type", "merge", "-p",
                    '{"spec":{"powerState":"Stopped"}}')
    cube = wait_reason(cluster, "cube", "sleeper", team, "Stopped")
    assert condition(cube, "Ready")["status"] == "True"
    expect(cluster, health, "Cube with powerState: Stopped", team, "cube/sleeper",
           kstatus="Current", argocd="Suspended")


def test_paused_cube_is_suspended(cluster: Cluster, health: Path, team: str) -> None:
    cluster.apply(cube_manifest("frozen", team))
    cluster.ready("cube", "frozen", team)
    cluster.kubectl("annotate", "cube", "frozen", "-n", team, "cube-operator.io/paused=true")
    cube = wait_reason(cluster, "cube", "frozen", team, "Paused")
    assert condition(cube, "Ready")["status"] == "True"  # its last verdict, kept
    expect(cluster, health, "paused Cube (was Running)", team, "cube/frozen", kstatus="Current", argocd="Suspended")


def test_invalid_spec_is_failed_and_degraded(cluster: Cluster, health: Path, team: str) -> None:
    cluster.apply(cube_manifest("planned", team, plan="vps-s2"))  # Krova sizes by resources
    wait_reason(cluster, "cube", "planned", team, "InvalidSpec", timeout=30)
    cube = expect(cluster, health, "Cube with spec.plan on Krova", team, "cube/planned",
                  kstatus="Failed", argocd="Degraded")
    assert judge(health, [cube])[0]["argocdMessage"].startswith("InvalidSpec: spec.plan does not apply to krova")


def test_unsupported_is_failed_and_degraded(cluster: Cluster, health: Path, team: str) -> None:
    # Krova sets no root password: a capability it lacks, refused before any call.
    cluster.apply(cube_manifest("rooted", team, rootPasswordSecretRef={"name": "root-pw", "key": "password"}))
    wait_reason(cluster, "cube", "rooted", team, "Unsupported", timeout=30)
    cube = expect(cluster, health, "Cube with rootPasswordSecretRef on Krova", team, "cube/rooted",
                  kstatus="Failed", argocd="Degraded")
    assert judge(health, [cube])[0]["argocdMessage"].startswith("Unsupported: provider krova does not support")


def test_invalid_credentials_are_failed_and_degraded(cluster: Cluster, krova: Krova, health: Path,
                                                     operator: Operator) -> None:
    namespace = namespace_with_credentials(cluster, krova, api_key="kro_wrong_key_000000000000")
    cluster.apply(provider_config(namespace, krova) + [cube_manifest("locked-out", namespace)])
    wait_reason(cluster, "providerconfig", "krova", namespace, "InvalidCredentials", timeout=30)
    wait_reason(cluster, "cube", "locked-out", namespace, "ProviderConfigNotReady", timeout=30)
    expect(cluster, health, "ProviderConfig with a wrong API key", namespace, "providerconfig/krova",
           kstatus="Failed", argocd="Degraded")
    # The Cube waits on its ProviderConfig (fixing the Secret lets it go ahead): a wait.
    expect(cluster, health, "a Cube on that ProviderConfig", namespace, "cube/locked-out",
           kstatus="InProgress", argocd="Progressing")
    # Both at once, as a kubectl List, the way a GitOps tool sees an application's objects.
    listed = kubectl_json(cluster, namespace, "providerconfig/krova", "cube/locked-out")
    assert listed["kind"] == "List"
    verdicts = judge(health, listed)
    assert [(v["kind"], v["kstatus"], v["argocd"]) for v in verdicts] == [
        ("ProviderConfig", "Failed", "Degraded"), ("Cube", "InProgress", "Progressing")]
