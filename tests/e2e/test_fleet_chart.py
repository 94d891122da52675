"""The cube-fleet chart (examples/charts/cube-fleet) end to end: rendered by the real helm,
applied with the real kubectl, reconciled by the real operator against a Krova simulator.

The API emulator cannot take `helm install` (Helm stores releases as protobuf-encoded
Secrets the emulator does not speak), so a release is `helm template` piped into
`kubectl apply --prune -l <the labels the chart puts on everything>`: an upgrade applies
the new render, and what left the values is pruned, like helm does. Once the test bed has
a real kube-apiserver these become `helm install` / `helm upgrade`.

Provider-side effects are counted on a simulator of this module's own, so that nothing
else of the e2e package shows up in its request log and the counts are exact."""
from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cloudsim.testing import running_simulator
from support.e2e import (
    API_KEY,
    SPACE_ID,
    TIME_SCALE,
    Cluster,
    Krova,
    Operator,
    condition,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "examples" / "charts" / "cube-fleet"
HELM = ROOT / ".tools" / "bin" / "helm"
INSTALL_TOOLS = ROOT / "scripts" / "install-test-tools.sh"
RELEASE = "fleet"
SELECTOR = f"app.kubernetes.io/name=cube-fleet,app.kubernetes.io/instance={RELEASE}"
PRUNE_KINDS = ("ProviderConfig", "Cube", "TcpMapping", "Domain", "Snapshot")
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2eFleetChartKey fleet@e2e"
API = "/api/v1/spaces/{spaceId}/cubes"
CUBE = API + "/{cubeId}"
PROVIDERS = ("krova", "nokyc", "cyberpanel", "voltagepark", "lunanode")


@pytest.fixture(scope="module")
def helm() -> Path:
    if not HELM.exists():
        subprocess.run(["bash", str(INSTALL_TOOLS)], check=True, timeout=600)
    assert HELM.exists(), f"{HELM} missing after {INSTALL_TOOLS}"
    return HELM


@pytest.fixture(scope="module")
def sim() -> Iterator[Krova]:
    """A Krova simulator for this module alone (same key and space as the package's)."""
    with running_simulator("krova", api_key=API_KEY, space_id=SPACE_ID, time_scale=TIME_SCALE) as running:
        yield Krova(url=running.url, admin_url=running.admin_url)


class Fleet:
    """One release of the chart in its own namespace: values in, objects applied."""

    def __init__(self, cluster: Cluster, helm: Path, sim: Krova, tmp: Path) -> None:
        self.cluster, self.helm, self.sim, self.tmp = cluster, helm, sim, tmp
        self.namespace = "fleet-" + uuid.uuid4().hex[:8]
        cluster.apply([
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}},
            {"apiVersion": "v1", "kind": "Secret",
             "metadata": {"name": "krova-credentials", "namespace": self.namespace},
             "stringData": {"apiKey": API_KEY}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ssh-keys", "namespace": self.namespace},
             "stringData": {"id_ed25519.pub": SSH_KEY}},
        ])

    def values(self, cubes: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "providerConfig": {
                "provider": "krova", "endpoint": self.sim.url,
                "credentialsSecretRef": {"name": "krova-credentials", "key": "apiKey"},
                "settings": {"spaceId": SPACE_ID},
                "pollIntervalSeconds": 1,
            },
            "defaults": {"region": "eu-nuremberg", "resources": {"vcpu": 1, "ramGb": 1, "diskGb": 10},
                         "sshPublicKeySecretRef": {"name": "ssh-keys", "key": "id_ed25519.pub"},
                         "userData": {"template": "base"}},
            "cloudInitTemplates": {"base": "#cloud-config\nhostname: {{ .cube.name }}\n"},
            "cubes": cubes,
        }

    def render(self, cubes: list[dict[str, Any]]) -> str:
        path = self.tmp / f"values-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(self.values(cubes)))
        result = subprocess.run([str(self.helm), "template", RELEASE, str(CHART), "--namespace", self.namespace,
                                 "--values", str(path)], capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def apply(self, cubes: list[dict[str, Any]]) -> str:
        """`helm template | kubectl apply --prune -l <release labels>`: helm install/upgrade."""
        allow = [arg for kind in PRUNE_KINDS for arg in ("--prune-allowlist", f"cube-operator.io/v1alpha1/{kind}")]
        return self.cluster.kubectl("apply", "-n", self.namespace, "--prune", "-l", SELECTOR, *allow, "-f", "-",
                                    input=self.render(cubes)).stdout

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.cluster.get(kind, name, self.namespace)

    def wait_ready(self, kind: str, names: list[str], timeout: float = 40) -> dict[str, dict[str, Any]]:
        def ready() -> dict[str, dict[str, Any]] | None:
            objs = {n: self.get(kind, n) for n in names}
            if all(o and condition(o, "Ready").get("status") == "True"
                   and o["status"].get("observedGeneration") == o["metadata"]["generation"]
                   for o in objs.values()):
                return objs  # type: ignore[return-value]
            return None
        return wait_for(ready, timeout=timeout, interval=0.3, what=f"{kind} {names} Ready")


def forget_requests(sim: Krova) -> None:
    """Empties the simulator's request log (this module's simulator: nobody else's)."""
    with sim.admin() as admin:
        admin.delete("/stats").raise_for_status()


def mutations(sim: Krova) -> list[tuple[str, str, str]]:
    """(method, route, path) of the mutating requests the provider accepted since
    forget_requests (the log holds the last 2000 requests: a few hundred here)."""
    with sim.admin() as admin:
        log = admin.get("/requests", params={"limit": 2000}).json()["requests"]
    assert len(log) < 2000, "the request log overflowed"
    return [(r["method"], r["route"], r["path"]) for r in log
            if r["method"] != "GET" and isinstance(r["status"], int) and r["status"] < 400]


def alive(sim: Krova) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in sim.cubes() if c["state"] != "deleted"}


@pytest.fixture()
def fleet(cluster: Cluster, helm: Path, sim: Krova, operator: Operator, tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet(cluster, helm, sim, tmp_path)
    yield fleet
    # The simulator goes away with this module and the operator stays for the package:
    # leave nothing behind that would keep calling it.
    for kinds in ("tcpmappings,domains,snapshots", "cubes", "providerconfigs"):
        cluster.kubectl("delete", kinds, "-n", fleet.namespace, "-l", SELECTOR, "--wait", "--timeout=30s",
                        check=False, timeout=40)


def test_install_then_upgrade_adds_one_vm_and_changes_one_power_state(fleet: Fleet, sim: Krova) -> None:
    started = time.monotonic()
    v1 = [
        {"name": "app", "labels": {"tier": "web"},
         "tcpMappings": [{"cubePort": 8080, "label": "http"}],
         "domains": [{"domain": "app.fleet.example.com", "port": 8080}],
         "snapshots": [{"name": "baseline"}]},
        {"name": "worker"},
    ]
    out = fleet.apply(v1)
    assert "providerconfig.cube-operator.io/krova created" in out, out
    fleet.cluster.kubectl("wait", "--for=condition=Ready", "providerconfig/krova", "-n", fleet.namespace,
                          "--timeout=30s")
    cubes = fleet.wait_ready("cube", ["app", "worker"])
    fleet.wait_ready("tcpmapping", ["app-tcp-8080"])
    fleet.wait_ready("domain", ["app-app-fleet-example-com"])
    fleet.wait_ready("snapshot", ["app-baseline"])
    # The same check NOTES.txt tells the user to run.
    fleet.cluster.kubectl("wait", "--for=condition=Ready", "cubes", "-l", f"app.kubernetes.io/instance={RELEASE}",
                          "-n", fleet.namespace, "--timeout=10s")
    remote = alive(sim)
    assert set(remote) == {"app", "worker"}
    assert all(c["state"] == "running" for c in remote.values())
    ids = {n: c["status"]["id"] for n, c in cubes.items()}
    uids = {n: c["metadata"]["uid"] for n, c in cubes.items()}
    assert ids == {n: remote[n]["id"] for n in ids}
    print(f"\n2 Cubes, a TcpMapping, a Domain and a Snapshot Ready in {time.monotonic() - started:.1f}s")

    # Settle: after everything is Ready, the fleet makes no provider change on its own.
    forget_requests(sim)
    time.sleep(1.5)
    assert mutations(sim) == []

    # helm upgrade: a third Cube, and worker to sleep. Nothing else may change.
    v2 = [v1[0], {"name": "worker", "powerState": "Stopped"}, {"name": "extra"}]
    out = fleet.apply(v2)
    assert "cube.cube-operator.io/extra created" in out and "cube.cube-operator.io/worker configured" in out, out
    assert "pruned" not in out, out
    cubes = fleet.wait_ready("cube", ["app", "worker", "extra"])
    assert cubes["worker"]["status"]["state"] == "stopped"
    wait_for(lambda: (sim.cube(ids["worker"]) or {}).get("state") == "stopped", what="worker asleep at Krova")
    time.sleep(1.5)  # a second poll: nothing follows the two changes
    changes = mutations(sim)
    assert sorted((m, r) for m, r, _ in changes) == sorted([
        ("POST", API),               # extra: exactly one new VM
        ("POST", CUBE + "/sleep"),   # worker: exactly one power change
    ]), changes
    assert [p for m, r, p in changes if r == CUBE + "/sleep"] == [f"/api/v1/spaces/{SPACE_ID}/cubes/{ids['worker']}/sleep"]
    remote = alive(sim)
    assert set(remote) == {"app", "worker", "extra"}
    assert len(sim.cubes()) == 3, "a VM was recreated"
    for name in ("app", "worker"):
        assert cubes[name]["status"]["id"] == ids[name] == remote[name]["id"], f"{name} was recreated"
        assert cubes[name]["metadata"]["uid"] == uids[name], f"the Cube {name} was recreated"
    assert remote["app"]["state"] == "running" and remote["extra"]["state"] == "running"


def test_removing_cubes_from_values_deletes_exactly_their_vms_unless_kept(fleet: Fleet, sim: Krova) -> None:
    v1 = [{"name": "stays"}, {"name": "goes"}, {"name": "kept", "keep": True}]
    rendered = yaml.safe_load_all(fleet.render(v1))
    kept_doc = next(d for d in rendered if d and d["kind"] == "Cube" and d["metadata"]["name"] == "kept")
    assert kept_doc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert kept_doc["spec"]["deletionPolicy"] == "Orphan"
    fleet.apply(v1)
    cubes = fleet.wait_ready("cube", ["stays", "goes", "kept"])
    ids = {n: c["status"]["id"] for n, c in cubes.items()}
    forget_requests(sim)

    # `goes` leaves the values: pruned, and its VM (deletionPolicy Delete) is deleted.
    out = fleet.apply([{"name": "stays"}, {"name": "kept", "keep": True}])
    assert "cube.cube-operator.io/goes pruned" in out, out
    wait_for(lambda: fleet.get("cube", "goes") is None, timeout=30, what="Cube goes deleted after its VM")
    wait_for(lambda: "goes" not in alive(sim), what="VM of goes deleted")
    deletes = [p for m, _, p in mutations(sim) if m == "DELETE"]
    assert deletes == [f"/api/v1/spaces/{SPACE_ID}/cubes/{ids['goes']}"], deletes

    # `kept` leaves the values: kubectl prune is not helm and deletes the object, but the
    # Cube is Orphan, so its VM stays at the provider, untouched.
    out = fleet.apply([{"name": "stays"}])
    assert "cube.cube-operator.io/kept pruned" in out, out
    wait_for(lambda: fleet.get("cube", "kept") is None, timeout=30, what="Cube kept gone from Kubernetes")
    time.sleep(1.5)
    remote = alive(sim)
    assert set(remote) == {"stays", "kept"}
    assert remote["kept"]["id"] == ids["kept"] and remote["kept"]["state"] == "running"
    assert [m for m in mutations(sim) if m[0] == "DELETE"] == [("DELETE", CUBE, deletes[0])], (
        "only the VM of `goes` may be deleted")
    assert fleet.wait_ready("cube", ["stays"])["stays"]["status"]["id"] == ids["stays"]

    # Clean up the orphan, as a user keeping a VM would eventually do at the provider.
    with sim.api() as api:
        api.delete(f"/spaces/{SPACE_ID}/cubes/{ids['kept']}").raise_for_status()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_example_is_accepted_by_the_api(cluster: Cluster, helm: Path, provider: str) -> None:
    """The render of each ci/<provider>-values.yaml passes the CRDs' schemas and CEL rules."""
    namespace = f"fleet-{provider}-" + uuid.uuid4().hex[:6]
    cluster.kubectl("create", "namespace", namespace)
    render = subprocess.run([str(helm), "template", RELEASE, str(CHART), "--namespace", namespace,
                             "--values", str(CHART / "ci" / f"{provider}-values.yaml")],
                            capture_output=True, text=True, timeout=60, check=True).stdout
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=render, check=False)
    assert result.returncode == 0, result.stderr
    assert f"providerconfig.cube-operator.io/{provider} created (server dry run)" in result.stdout
