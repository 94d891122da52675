"""Voltage Park end to end: GPU Cubes from instant-deploy presets, real kubectl, the real
operator, the Voltage Park simulator. Its own emulator, simulator and operator (module
scope), independent of the Krova package fixtures."""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cloudsim.testing import running_simulator
from support.e2e import Cluster, Operator, cluster_with_crds, condition, wait_for

API = "cube-operator.io/v1alpha1"
KEY = "vp_e2e_" + "0123456789abcdef"
TIME_SCALE = 40.0
SEATTLE = "26346157-1375-56f1-9d71-b420a83b1849"
SSH = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2eVoltagePark e2e@test"


class Vp:
    def __init__(self, url: str, admin_url: str) -> None:
        self.url, self.admin_url = url, admin_url

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10)

    def vms(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        with self.api() as api:
            offset = 0
            while True:
                body = api.get("/virtual-machines/", params={"limit": 100, "offset": offset}).json()
                out.extend(body["results"])
                if not body["has_next"]:
                    return out
                offset += len(body["results"])

    def vm(self, vm_id: str) -> dict[str, Any] | None:
        with self.api() as api:
            response = api.get(f"/virtual-machines/{vm_id}")
            return response.json() if response.status_code == 200 else None

    def count(self, method: str, route_end: str) -> int:
        rows = httpx.get(f"{self.admin_url}/stats", timeout=10).json()["requests"]
        return sum(r["count"] for r in rows if r["method"] == method and r["route"].endswith(route_end))

    def capacity(self, gpus: int) -> None:
        httpx.put(f"{self.admin_url}/locations/{SEATTLE}/capacity", json={"gpus": gpus}, timeout=10).raise_for_status()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster_with_crds(tmp_path_factory.mktemp("kube-vp")) as c:
        yield c


@pytest.fixture(scope="module")
def vp() -> Iterator[Vp]:
    with running_simulator("voltagepark", api_key=KEY, time_scale=TIME_SCALE) as sim:
        yield Vp(sim.url, sim.admin_url)


@pytest.fixture(scope="module")
def operator(cluster: Cluster, vp: Vp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    op = Operator(kubeconfig=cluster.kubeconfig, log_path=tmp_path_factory.mktemp("op-vp") / "operator.log", budget_scale=TIME_SCALE)
    op.start()
    yield op
    op.stop()
    log = op.log()
    assert KEY not in log, "the API key leaked into the operator log"
    assert "Traceback" not in log, log[-4000:]


def team_namespace(cluster: Cluster, vp: Vp, *, stop_mode: str = "Stopped") -> str:
    namespace = "vp-" + uuid.uuid4().hex[:8]
    cluster.apply([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vp-credentials", "namespace": namespace},
         "stringData": {"apiKey": KEY}},
        {"apiVersion": API, "kind": "ProviderConfig", "metadata": {"name": "voltagepark", "namespace": namespace},
         "spec": {"provider": "voltagepark", "endpoint": vp.url, "voltagepark": {"stopMode": stop_mode},
                  "credentialsSecretRef": {"name": "vp-credentials"}, "pollIntervalSeconds": 1}},
    ])
    cluster.kubectl("wait", "--for=condition=Ready", "providerconfig/voltagepark", "-n", namespace, "--timeout=30s")
    return namespace


@pytest.fixture
def team(cluster: Cluster, vp: Vp, operator: Operator) -> str:
    return team_namespace(cluster, vp)


def cube(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"providerConfigRef": {"name": "voltagepark"}, "image": "Ubuntu 22.04 LTS",
                            "region": SEATTLE, "resources": {"vcpu": 4, "ramGb": 16, "diskGb": 40},
                            "gpus": {"model": "h100-sxm5-80gb", "count": 1}, "sshPublicKey": SSH}
    body.update(spec)
    return {"apiVersion": API, "kind": "Cube", "metadata": {"name": name, "namespace": namespace}, "spec": body}


def ready(cluster: Cluster, name: str, namespace: str, timeout: int = 60) -> dict[str, Any]:
    return cluster.ready("cube", name, namespace, timeout)


def reason(cluster: Cluster, name: str, namespace: str) -> str:
    return str(condition(cluster.get("cube", name, namespace), "Ready").get("reason"))


def test_a_gpu_cube_runs_stops_both_ways_and_is_deleted(cluster: Cluster, vp: Vp, team: str) -> None:
    cluster.apply(cube("gpu", team))
    status = ready(cluster, "gpu", team)["status"]
    assert status["state"] == "Running" and status["publicIpv4"] and status["sshHostPort"]
    assert status["gpus"] == [{"model": "h100-sxm5-80gb", "count": 1}] and float(status["costPerHour"]) > 0
    assert {"vmPort": 22, "hostPort": status["sshHostPort"], "protocol": "tcp"} in status["ports"]

    cluster.kubectl("patch", "cube", "gpu", "-n", team, "--type", "merge", "-p", '{"spec":{"powerState":"Stopped"}}')
    wait_for(lambda: reason(cluster, "gpu", team) == "Stopped", timeout=30, what="Stopped")
    assert (vp.vm(status["id"]) or {}).get("status") == "Stopped"
    cluster.kubectl("patch", "cube", "gpu", "-n", team, "--type", "merge", "-p", '{"spec":{"powerState":"Running"}}')
    wait_for(lambda: reason(cluster, "gpu", team) == "Running", timeout=30, what="Running again")

    # Stopped from the dashboard: started again, and said so.
    with vp.api() as api:
        api.put(f"/virtual-machines/{status['id']}/power-status", json={"status": "stopped"}).raise_for_status()
    def corrected() -> bool:
        items = json.loads(cluster.kubectl("get", "events", "-n", team, "-o", "json").stdout)["items"]
        return any(e["reason"] == "PowerStateChanged" and "outside Kubernetes" in e["message"] for e in items)
    wait_for(corrected, timeout=30, what="drift corrected")
    wait_for(lambda: reason(cluster, "gpu", team) == "Running", timeout=30, what="Running after drift")

    cluster.kubectl("delete", "cube", "gpu", "-n", team, "--timeout=60s", timeout=70)
    assert status["id"] not in {v["id"] for v in vp.vms()}
    assert vp.count("DELETE", "/virtual-machines/{virtual_machine_id}") >= 1

    cluster.apply(cube("kept", team, deletionPolicy="Orphan"))
    kept = ready(cluster, "kept", team)["status"]["id"]
    cluster.kubectl("delete", "cube", "kept", "-n", team, "--timeout=60s", timeout=70)
    assert (vp.vm(kept) or {}).get("status") == "Running"


def test_a_disassociated_stop_bills_storage_only(cluster: Cluster, vp: Vp, operator: Operator) -> None:
    namespace = team_namespace(cluster, vp, stop_mode="Disassociated")
    cluster.apply(cube("cheap", namespace))
    running = float(ready(cluster, "cheap", namespace)["status"]["costPerHour"])
    cluster.kubectl("patch", "cube", "cheap", "-n", namespace, "--type", "merge",
                    "-p", '{"spec":{"powerState":"Stopped"}}')
    wait_for(lambda: reason(cluster, "cheap", namespace) == "Stopped", timeout=30, what="Stopped")
    found = cluster.get("cube", "cheap", namespace)
    assert found and found["status"]["state"] == "StoppedDisassociated"
    assert float(found["status"]["costPerHour"]) < running
    cluster.kubectl("patch", "cube", "cheap", "-n", namespace, "--type", "merge",
                    "-p", '{"spec":{"powerState":"Running"}}')
    wait_for(lambda: reason(cluster, "cheap", namespace) == "Running", timeout=45, what="Running again")


def test_sigkill_after_the_create_was_accepted_makes_one_vm(cluster: Cluster, vp: Vp, operator: Operator,
                                                           team: str) -> None:
    httpx.post(f"{vp.admin_url}/faults", json={"method": "POST", "route": "/virtual-machines/instant",
                                                "kind": "hold", "seconds": 5, "count": 1}, timeout=10).raise_for_status()
    try:
        cluster.apply(cube("crashy", team))
        uid = wait_for(lambda: (c := cluster.get("cube", "crashy", team)) and c["metadata"]["uid"], what="uid")
        tag = f"cube-operator-uid:{uid}"
        wait_for(lambda: [v for v in vp.vms() if tag in v["tags"]], timeout=30, interval=0.05,
                 what="the simulator accepted the create")
        operator.kill()
        assert not (cluster.get("cube", "crashy", team) or {}).get("status", {}).get("id")
    finally:
        httpx.delete(f"{vp.admin_url}/faults", timeout=10)
        operator.start()
    found = ready(cluster, "crashy", team)
    owned = [v for v in vp.vms() if tag in v["tags"]]
    assert len(owned) == 1 and found["status"]["id"] == owned[0]["id"], owned


def test_no_capacity_waits_then_runs(cluster: Cluster, vp: Vp, team: str) -> None:
    vp.capacity(0)
    try:
        cluster.apply(cube("waiting", team))
        wait_for(lambda: reason(cluster, "waiting", team) == "NoCapacity", timeout=30, what="NoCapacity")
    finally:
        vp.capacity(8)
    ready(cluster, "waiting", team, timeout=150)


def test_bad_cloud_init_is_rejected_before_any_create(cluster: Cluster, vp: Vp, team: str) -> None:
    creates = vp.count("POST", "/virtual-machines/instant")
    cluster.apply(cube("init", team, userData="#cloud-config\nusers: [ops]\n"))
    wait_for(lambda: reason(cluster, "init", team) == "InvalidSpec", timeout=30, what="InvalidSpec")
    message = condition(cluster.get("cube", "init", team), "Ready")["message"]
    assert "users" in message and "spec.userData" in message
    assert vp.count("POST", "/virtual-machines/instant") == creates
