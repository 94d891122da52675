"""LunaNode end to end: real kubectl drives the real operator against the LunaNode
simulator's signed category/action API. Its own API emulator, simulator and operator
(module scope), independent of the Krova package fixtures."""
from __future__ import annotations

import base64
import hashlib
import json
import struct
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cloudsim.lunanode import signed_form
from cloudsim.testing import running_simulator
from support.e2e import Cluster, Operator, cluster_with_crds, condition, wait_for

API = "cube-operator.io/v1alpha1"
API_ID = "e2eapiid00000016"
API_KEY = ("e2ekey" + "0123456789abcdef" * 8)[:64] + "fedcba9876543210" * 4
TIME_SCALE = 40.0


def ssh_key() -> str:
    def s(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b
    return "ssh-ed25519 " + base64.b64encode(s(b"ssh-ed25519") + s(hashlib.sha256(b"e2e").digest())).decode()


class Luna:
    def __init__(self, url: str, admin_url: str) -> None:
        self.url, self.admin_url = url, admin_url

    def call(self, category: str, action: str, **params: Any) -> dict[str, Any]:
        form = signed_form(API_ID, API_KEY, category, action, params)
        answer: dict[str, Any] = httpx.post(f"{self.url}/{category}/{action}/", data=form, timeout=10).json()
        return answer

    def vms(self) -> list[dict[str, Any]]:
        return list(self.call("vm", "list")["vms"])

    def status(self, vm_id: str) -> str | None:
        answer = self.call("vm", "info", vm_id=vm_id)
        return answer["info"]["status_nohtml"] if answer.get("success") == "yes" else None

    def count(self, route: str) -> int:
        rows = httpx.get(f"{self.admin_url}/stats", timeout=10).json()["requests"]
        return sum(r["count"] for r in rows if r["route"] == route)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster_with_crds(tmp_path_factory.mktemp("kube-lunanode")) as c:
        yield c


@pytest.fixture(scope="module")
def luna() -> Iterator[Luna]:
    with running_simulator("lunanode", api_id=API_ID, api_key=API_KEY, time_scale=TIME_SCALE) as sim:
        yield Luna(sim.url, sim.admin_url)


@pytest.fixture(scope="module")
def operator(cluster: Cluster, luna: Luna, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    op = Operator(kubeconfig=cluster.kubeconfig, log_path=tmp_path_factory.mktemp("op-luna") / "operator.log", budget_scale=TIME_SCALE)
    op.start()
    yield op
    op.stop()
    log = op.log()
    assert API_KEY not in log and API_KEY[:64] not in log, "the API key leaked into the operator log"
    assert "Traceback" not in log, log[-4000:]


def new_namespace(cluster: Cluster, luna: Luna, api_key: str = API_KEY, *, sweep: int = 30) -> str:
    namespace = "luna-" + uuid.uuid4().hex[:8]
    cluster.apply([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "lunanode-credentials", "namespace": namespace},
         "stringData": {"apiId": API_ID, "apiKey": api_key}},
        {"apiVersion": API, "kind": "ProviderConfig", "metadata": {"name": "lunanode", "namespace": namespace},
         "spec": {"provider": "lunanode", "endpoint": luna.url, "lunanode": {"stateSweepSeconds": sweep},
                  "credentialsSecretRef": {"name": "lunanode-credentials"}, "pollIntervalSeconds": 1}},
    ])
    return namespace


@pytest.fixture
def team(cluster: Cluster, luna: Luna, operator: Operator) -> str:
    namespace = new_namespace(cluster, luna)
    cluster.kubectl("wait", "--for=condition=Ready", "providerconfig/lunanode", "-n", namespace, "--timeout=30s")
    return namespace


def cube(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"providerConfigRef": {"name": "lunanode"}, "image": "Ubuntu 22.04 64-bit",
                            "region": "toronto", "plan": "m.1s", "sshPublicKey": ssh_key()}
    body.update(spec)
    return {"apiVersion": API, "kind": "Cube", "metadata": {"name": name, "namespace": namespace}, "spec": body}


def obj(kind: str, name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def ready(cluster: Cluster, kind: str, name: str, namespace: str, timeout: int = 60) -> dict[str, Any]:
    return cluster.ready(kind, name, namespace, timeout)


def test_a_wrong_key_is_reported_and_nothing_crashes(cluster: Cluster, luna: Luna, operator: Operator) -> None:
    wrong = API_KEY[:64] + "0" * 64  # right partial key, wrong HMAC key
    namespace = new_namespace(cluster, luna, wrong)
    cluster.apply(cube("never", namespace))
    config = wait_for(lambda: (pc := cluster.get("providerconfig", "lunanode", namespace))
                      and condition(pc, "Ready").get("reason") == "InvalidCredentials" and pc,
                      timeout=30, what="the wrong key reported")
    assert "0" * 64 not in json.dumps(config)
    wait_for(lambda: condition(cluster.get("cube", "never", namespace), "Ready").get("reason")
             == "ProviderConfigNotReady", timeout=30, what="the Cube says why it waits")
    short = new_namespace(cluster, luna, "tooshort")
    bad = wait_for(lambda: (pc := cluster.get("providerconfig", "lunanode", short))
                   and condition(pc, "Ready").get("reason") == "InvalidCredentials" and pc,
                   timeout=30, what="a malformed key named")
    assert "'apiKey'" in condition(bad, "Ready")["message"] and "128" in condition(bad, "Ready")["message"]
    assert operator.running()


def test_cube_runs_stops_and_is_deleted(cluster: Cluster, luna: Luna, team: str) -> None:
    cluster.apply(cube("web", team))
    found = ready(cluster, "cube", "web", team)
    status = found["status"]
    assert status["state"] == "Online" and status["vmState"] == "running"
    assert status["publicIpv4"] and status["privateIpv4"] and status["costPerHour"]
    row = next(v for v in luna.vms() if v["vm_id"] == status["id"])
    assert row["hostname"].endswith(found["metadata"]["uid"])

    cluster.kubectl("patch", "cube", "web", "-n", team, "--type", "merge", "-p", '{"spec":{"powerState":"Stopped"}}')
    wait_for(lambda: luna.status(status["id"]) == "Offline", timeout=30, what="Offline")
    wait_for(lambda: condition(cluster.get("cube", "web", team), "Ready").get("reason") == "Stopped",
             timeout=30, what="Ready=True Stopped")
    cluster.kubectl("patch", "cube", "web", "-n", team, "--type", "merge", "-p", '{"spec":{"powerState":"Running"}}')
    wait_for(lambda: condition(cluster.get("cube", "web", team), "Ready").get("reason") == "Running",
             timeout=30, what="Ready=True Running")
    assert luna.status(status["id"]) == "Online"

    cluster.kubectl("delete", "cube", "web", "-n", team, "--timeout=60s", timeout=70)
    assert status["id"] not in {v["vm_id"] for v in luna.vms()}

    cluster.apply(cube("kept", team, deletionPolicy="Orphan"))
    kept = ready(cluster, "cube", "kept", team)["status"]["id"]
    cluster.kubectl("delete", "cube", "kept", "-n", team, "--timeout=60s", timeout=70)
    assert luna.status(kept) == "Online"


def test_user_data_is_unsupported_before_any_call(cluster: Cluster, luna: Luna, team: str) -> None:
    creates = luna.count("/api/vm/create/")
    cluster.apply(cube("init", team, userData="#cloud-config\n"))
    found = wait_for(lambda: (c := cluster.get("cube", "init", team))
                     and condition(c, "Ready").get("reason") == "Unsupported" and c, timeout=30, what="Unsupported")
    assert "lunanode" in condition(found, "Ready")["message"] and "spec.userData" in condition(found, "Ready")["message"]
    assert luna.count("/api/vm/create/") == creates


def test_sigkill_after_the_create_was_accepted_makes_one_vm(cluster: Cluster, luna: Luna, operator: Operator,
                                                           team: str) -> None:
    httpx.post(f"{luna.admin_url}/faults", json={"method": "POST", "route": "vm/create", "kind": "hold",
                                                  "seconds": 5, "count": 1}, timeout=10).raise_for_status()
    try:
        cluster.apply(cube("crashy", team))
        uid = wait_for(lambda: (c := cluster.get("cube", "crashy", team)) and c["metadata"]["uid"], what="uid")
        wait_for(lambda: [v for v in luna.vms() if v["hostname"].endswith(uid)], timeout=30, interval=0.05,
                 what="the simulator accepted the create")
        operator.kill()
        assert not (cluster.get("cube", "crashy", team) or {}).get("status", {}).get("id")
    finally:
        httpx.delete(f"{luna.admin_url}/faults", timeout=10)
        operator.start()
    found = ready(cluster, "cube", "crashy", team)
    owned = [v for v in luna.vms() if v["hostname"].endswith(uid)]
    assert len(owned) == 1 and found["status"]["id"] == owned[0]["vm_id"], owned


def test_snapshot_then_restore_by_reimage(cluster: Cluster, luna: Luna, team: str) -> None:
    cluster.apply(cube("db", team))
    vm_id = ready(cluster, "cube", "db", team)["status"]["id"]
    cluster.apply(obj("Snapshot", "db-snap", team, cubeRef={"name": "db"}))
    snap = ready(cluster, "snapshot", "db-snap", team, timeout=90)
    images = {i["image_id"]: i for i in luna.call("image", "list")["images"]}
    assert images[snap["status"]["id"]]["status"] == "active"
    reimages = luna.count("/api/vm/reimage/")
    cluster.apply(obj("Restore", "db-restore", team, cubeRef={"name": "db"}, snapshotRef={"name": "db-snap"}))
    wait_for(lambda: (r := cluster.get("restore", "db-restore", team)) and r["status"].get("phase") == "Succeeded",
             timeout=90, what="restore Succeeded")
    assert luna.count("/api/vm/reimage/") == reimages + 1
    assert luna.status(vm_id) == "Online"


def test_a_tcpmapping_is_allow_rules_in_the_vms_group(cluster: Cluster, luna: Luna, team: str) -> None:
    cluster.apply(cube("app", team))
    vm_id = ready(cluster, "cube", "app", team)["status"]["id"]
    cluster.apply(obj("TcpMapping", "pg", team, cubeRef={"name": "app"}, cubePort=5432, whitelistedIps=["10.0.0.0/8"]))
    mapping = ready(cluster, "tcpmapping", "pg", team)
    assert mapping["status"]["hostPort"] == 5432

    def rules() -> list[tuple[str, str]]:
        group = next(g for g in luna.call("securitygroup", "list")["groups"] if g["name"] == f"cube-operator-{vm_id}")
        listed = luna.call("securitygroup", "rule_list", region=group["region"], group_id=group["group_id"])["rules"]
        return sorted((r["remote_value"], str(r["port_min"])) for r in listed)

    assert rules() == [("10.0.0.0/8", "5432")]
    cluster.kubectl("patch", "tcpmapping", "pg", "-n", team, "--type", "merge",
                    "-p", '{"spec":{"whitelistedIps":["10.0.0.0/8","192.168.0.0/16"]}}')
    wait_for(lambda: rules() == [("10.0.0.0/8", "5432"), ("192.168.0.0/16", "5432")], timeout=30,
             what="the allowlist change reached the rules")
    ready(cluster, "tcpmapping", "pg", team)
    cluster.kubectl("delete", "tcpmapping", "pg", "-n", team, "--timeout=30s", timeout=40)
    assert rules() == []
