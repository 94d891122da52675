"""NoKYC VPS end to end: real kubectl drives the real operator against the NoKYC
simulator, with the operator's receiver serving TLS (NoKYC only calls https URLs).

Its own API emulator, simulator and operator (module scope), so the Krova package
fixtures and this module stay independent."""
from __future__ import annotations

import base64
import hashlib
import json
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudsim.testing import running_simulator
from cube_operator.providers.nokyc import sign
from support.e2e import Cluster, Operator, cluster_with_crds, condition, wait_for

API = "cube-operator.io/v1alpha1"
TOKEN = "nkv_live_" + ("e2e" + "0123456789abcdef" * 4)[:52]
READ_TOKEN = "nkv_live_" + ("read" + "0123456789abcdef" * 4)[:52]
TIME_SCALE = 20.0


def ssh_key(seed: str = "e2e") -> str:
    def s(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b
    blob = s(b"ssh-ed25519") + s(hashlib.sha256(seed.encode()).digest())
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {seed}@e2e"


class NoKyc:
    def __init__(self, url: str, admin_url: str) -> None:
        self.url, self.admin_url = url, admin_url

    def api(self, token: str = TOKEN) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.admin_url, timeout=10)

    def listing(self, path: str, **params: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        query: dict[str, str | int] = {**params, "page_size": 100}
        with self.api() as api:
            while True:
                body = api.get(path, params=query).json()
                out.extend(body["data"])
                if not body.get("has_more"):
                    return out
                query["cursor"] = body["next_cursor"]

    def servers(self) -> list[dict[str, Any]]:
        return self.listing("/servers")

    def server(self, server_id: str) -> dict[str, Any] | None:
        with self.api() as api:
            response = api.get(f"/servers/{server_id}")
            return response.json() if response.status_code == 200 else None

    def owned_by(self, uid: str) -> list[dict[str, Any]]:
        return [s for s in self.servers() if s.get("labels", {}).get("cube-operator-uid") == uid]

    def count(self, method: str, route_end: str) -> int:
        with self.admin() as admin:
            rows = admin.get("/stats").json()["requests"]
        return sum(r["count"] for r in rows if r["method"] == method and r["route"].endswith(route_end))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA for the simulator)."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "tls.crt", where / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster_with_crds(tmp_path_factory.mktemp("kube-nokyc")) as c:
        yield c


@pytest.fixture(scope="module")
def nokyc(tls: tuple[Path, Path]) -> Iterator[NoKyc]:
    with running_simulator("nokyc", tokens={TOKEN: "billing", READ_TOKEN: "read"}, time_scale=TIME_SCALE,
                           settings={"webhook_ca_file": str(tls[0])}) as sim:
        yield NoKyc(sim.url, sim.admin_url)


@pytest.fixture(scope="module")
def operator(cluster: Cluster, nokyc: NoKyc, tls: tuple[Path, Path],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    op = Operator(kubeconfig=cluster.kubeconfig, log_path=tmp_path_factory.mktemp("op-nokyc") / "operator.log",
                  budget_scale=TIME_SCALE, args=["--webhook-tls-cert", str(tls[0]), "--webhook-tls-key", str(tls[1])])
    op.start()
    yield op
    op.stop()
    assert TOKEN not in op.log() and READ_TOKEN not in op.log(), "a token leaked into the operator log"


def provider_config(namespace: str, nokyc: NoKyc, secret: str = "nokyc-credentials") -> dict[str, Any]:
    return {"apiVersion": API, "kind": "ProviderConfig", "metadata": {"name": "nokyc", "namespace": namespace},
            "spec": {"provider": "nokyc", "endpoint": nokyc.url, "nokyc": {},
                     "credentialsSecretRef": {"name": secret, "key": "token"},
                     "pollIntervalSeconds": 1}}


def new_namespace(cluster: Cluster, token: str = TOKEN) -> str:
    namespace = "nokyc-" + uuid.uuid4().hex[:8]
    cluster.apply([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "nokyc-credentials", "namespace": namespace},
         "stringData": {"token": token}},
    ])
    return namespace


@pytest.fixture
def team(cluster: Cluster, nokyc: NoKyc, operator: Operator) -> str:
    namespace = new_namespace(cluster)
    cluster.apply(provider_config(namespace, nokyc))
    cluster.kubectl("wait", "--for=condition=Ready", "providerconfig/nokyc", "-n", namespace, "--timeout=30s")
    return namespace


def cube(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"providerConfigRef": {"name": "nokyc"}, "image": "debian-13-minimal",
                            "region": "par", "plan": "vps-s1", "sshPublicKey": ssh_key()}
    body.update(spec)
    return {"apiVersion": API, "kind": "Cube", "metadata": {"name": name, "namespace": namespace}, "spec": body}


def obj(kind: str, name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def ready(cluster: Cluster, kind: str, name: str, namespace: str, timeout: int = 60) -> dict[str, Any]:
    return cluster.ready(kind, name, namespace, timeout)


def events(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    items = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    return [e for e in items if e["involvedObject"]["name"] == name]


def test_credentials_and_balance_are_reported(cluster: Cluster, nokyc: NoKyc, operator: Operator, team: str) -> None:
    config = cluster.get("providerconfig", "nokyc", team)
    assert config and condition(config, "Ready")["reason"] == "CredentialsValid"
    assert isinstance(config["status"].get("balanceUsd"), int | float)
    assert "balance" in condition(config, "Ready")["message"]
    wrong = new_namespace(cluster, "nkv_live_" + "x" * 52)
    cluster.apply(provider_config(wrong, nokyc))
    bad = wait_for(lambda: (pc := cluster.get("providerconfig", "nokyc", wrong))
                   and condition(pc, "Ready").get("reason") == "InvalidCredentials" and pc,
                   timeout=30, what="an unknown token reported")
    assert "x" * 52 not in json.dumps(bad)


def test_cube_runs_stops_and_is_deleted(cluster: Cluster, nokyc: NoKyc, team: str) -> None:
    cluster.apply(cube("web", team, userData="#cloud-config\npackages: [nginx]\n"))
    found = ready(cluster, "cube", "web", team)
    status = found["status"]
    assert status["vmState"] == "running" and status["state"] == "running"
    assert status["publicIpv4"] and status["publicIpv6"] and status["plan"] == "vps-s1" and status["costPerHour"]
    server = nokyc.server(status["id"])
    assert server and server["labels"]["cube-operator-uid"] == found["metadata"]["uid"]
    assert server["ipv4"]["address"] == status["publicIpv4"]

    cluster.kubectl("patch", "cube", "web", "-n", team, "--type", "merge", "-p", '{"spec":{"powerState":"Stopped"}}')
    wait_for(lambda: (nokyc.server(status["id"]) or {}).get("status") == "stopped", timeout=30, what="stopped")
    wait_for(lambda: condition(cluster.get("cube", "web", team), "Ready").get("reason") == "Stopped",
             timeout=30, what="Ready=True Stopped")
    cluster.kubectl("patch", "cube", "web", "-n", team, "--type", "merge", "-p", '{"spec":{"powerState":"Running"}}')
    wait_for(lambda: (c := cluster.get("cube", "web", team)) and c["status"].get("vmState") == "running"
             and condition(c, "Ready").get("reason") == "Running", timeout=30, what="Ready=True Running")

    # Stopped out of band (the dashboard): started again, and said so.
    with nokyc.api() as api:
        assert api.post(f"/servers/{status['id']}/stop", headers={"Idempotency-Key": str(uuid.uuid4())}
                        ).status_code in (200, 202)
    wait_for(lambda: any(e["reason"] == "PowerStateChanged" and "outside Kubernetes" in e["message"]
                         for e in events(cluster, team, "web")), timeout=30, what="drift corrected")
    wait_for(lambda: (nokyc.server(status["id"]) or {}).get("status") == "running", timeout=30, what="running")

    cluster.kubectl("delete", "cube", "web", "-n", team, "--timeout=60s", timeout=70)
    assert nokyc.server(status["id"]) is None

    cluster.apply(cube("kept", team, deletionPolicy="Orphan"))
    kept = ready(cluster, "cube", "kept", team)["status"]["id"]
    cluster.kubectl("delete", "cube", "kept", "-n", team, "--timeout=60s", timeout=70)
    assert (nokyc.server(kept) or {}).get("status") == "running"


def test_resources_choose_the_cheapest_plan_and_one_ssh_key_serves_all(cluster: Cluster, nokyc: NoKyc,
                                                                       team: str) -> None:
    spec = {"plan": None, "resources": {"vcpu": 2, "ramGb": 2, "diskGb": 40}}
    cluster.apply([cube("sized-a", team, **spec), cube("sized-b", team, **spec)])
    a = ready(cluster, "cube", "sized-a", team)
    ready(cluster, "cube", "sized-b", team)
    assert a["status"]["plan"] == "vps-s2"
    fingerprints = [k["fingerprint"] for k in nokyc.listing("/ssh-keys")]
    assert len(fingerprints) == len(set(fingerprints)), "the same SSH key was registered twice"
    posts = nokyc.count("POST", "/servers")
    cluster.apply(cube("huge", team, plan=None, resources={"vcpu": 64, "ramGb": 512, "diskGb": 9000}, region="buh"))
    huge = wait_for(lambda: (c := cluster.get("cube", "huge", team))
                    and condition(c, "Ready").get("reason") == "InvalidSpec" and c, timeout=30, what="InvalidSpec")
    assert "vps-m4" in condition(huge, "Ready")["message"]  # the largest plan offered in buh
    assert nokyc.count("POST", "/servers") == posts, "a create was sent for a spec no plan fits"


def test_sigkill_after_the_create_was_accepted_makes_one_server(cluster: Cluster, nokyc: NoKyc,
                                                               operator: Operator, team: str) -> None:
    with nokyc.admin() as admin:
        admin.post("/faults", json={"method": "POST", "route": "/servers", "kind": "hold",
                                    "seconds": 5, "count": 1}).raise_for_status()
    try:
        cluster.apply(cube("crashy", team))
        uid = wait_for(lambda: (c := cluster.get("cube", "crashy", team)) and c["metadata"]["uid"], what="uid")
        wait_for(lambda: nokyc.owned_by(uid), timeout=30, interval=0.05, what="the simulator accepted the create")
        operator.kill()
        assert not (cluster.get("cube", "crashy", team) or {}).get("status", {}).get("id")
    finally:
        with nokyc.admin() as admin:
            admin.delete("/faults")
        operator.start()
    found = ready(cluster, "cube", "crashy", team)
    owned = nokyc.owned_by(uid)
    assert len(owned) == 1 and found["status"]["id"] == owned[0]["id"]


def test_snapshot_and_restore(cluster: Cluster, nokyc: NoKyc, team: str) -> None:
    cluster.apply(cube("db", team))
    server_id = ready(cluster, "cube", "db", team)["status"]["id"]
    cluster.apply(obj("Snapshot", "db-snap", team, cubeRef={"name": "db"}))
    snap = ready(cluster, "snapshot", "db-snap", team)
    assert snap["status"]["state"] == "ready" and snap["status"]["id"].startswith("snap_")
    assert any(s["id"] == snap["status"]["id"] and s["server"] == server_id for s in nokyc.listing("/snapshots"))
    cluster.apply(obj("Restore", "db-restore", team, cubeRef={"name": "db"}, snapshotRef={"name": "db-snap"}))
    wait_for(lambda: (r := cluster.get("restore", "db-restore", team)) and r["status"].get("phase") == "Succeeded",
             timeout=60, what="restore Succeeded")
    assert nokyc.count("POST", "/restore") == 1
    cluster.kubectl("delete", "snapshot", "db-snap", "-n", team, "--timeout=30s", timeout=40)
    assert not any(s["id"] == snap["status"]["id"] for s in nokyc.listing("/snapshots"))


def rules_for(nokyc: NoKyc, server_id: str) -> list[dict[str, Any]]:
    group = next(g for g in nokyc.listing("/firewall/groups") if g["name"] == f"cube-operator-{server_id}")
    assert server_id in group["applied_to"] and group["default_action"] == "accept"
    return list(group["rules"])


def test_a_tcpmapping_is_rules_in_the_servers_group(cluster: Cluster, nokyc: NoKyc, team: str) -> None:
    cluster.apply(cube("app", team))
    server_id = ready(cluster, "cube", "app", team)["status"]["id"]
    cluster.apply(obj("TcpMapping", "pg", team, cubeRef={"name": "app"}, cubePort=5432, label="pg",
                      whitelistedIps=["10.0.0.0/8"]))
    mapping = ready(cluster, "tcpmapping", "pg", team)
    assert mapping["status"]["hostPort"] == 5432 and mapping["status"]["host"].endswith(":5432")
    rules = rules_for(nokyc, server_id)
    assert [(r["source"], r["action"]) for r in rules if r["port"] == "5432"] == [
        ("10.0.0.0/8", "accept"), ("0.0.0.0/0", "drop"), ("::/0", "drop")]
    # Someone adds their own rule to the group: the operator must leave it alone.
    group = next(g for g in nokyc.listing("/firewall/groups") if g["name"] == f"cube-operator-{server_id}")
    with nokyc.api() as api:
        api.post(f"/firewall/groups/{group['id']}/rules", headers={"Idempotency-Key": str(uuid.uuid4())},
                 json={"direction": "in", "proto": "tcp", "port": "22", "source": "192.0.2.0/24",
                       "action": "accept", "note": "ops bastion"}).raise_for_status()
    def without_ids(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # PUT .../rules replaces the list, so the provider assigns new rule ids; what a
        # rule says and where it stands must not change.
        return [{k: v for k, v in r.items() if k != "id"} for r in rules]

    foreign = without_ids([r for r in rules_for(nokyc, server_id) if r.get("note") == "ops bastion"])
    assert len(foreign) == 1
    cluster.kubectl("patch", "tcpmapping", "pg", "-n", team, "--type", "merge",
                    "-p", '{"spec":{"whitelistedIps":["10.0.0.0/8","192.168.0.0/16"]}}')
    wait_for(lambda: [(r["source"], r["action"]) for r in rules_for(nokyc, server_id) if r["port"] == "5432"] == [
        ("10.0.0.0/8", "accept"), ("192.168.0.0/16", "accept"), ("0.0.0.0/0", "drop"), ("::/0", "drop")],
        timeout=30, what="the allowlist change reached the rules")
    ready(cluster, "tcpmapping", "pg", team)
    assert without_ids([r for r in rules_for(nokyc, server_id) if r.get("note") == "ops bastion"]) == foreign
    cluster.kubectl("delete", "tcpmapping", "pg", "-n", team, "--timeout=30s", timeout=40)
    left = rules_for(nokyc, server_id)
    assert not [r for r in left if r["port"] == "5432"] and [r for r in left if r.get("note") == "ops bastion"]


def test_a_read_only_token_is_refused_with_its_scope(cluster: Cluster, nokyc: NoKyc, operator: Operator) -> None:
    namespace = new_namespace(cluster, READ_TOKEN)
    cluster.apply([provider_config(namespace, nokyc), cube("nope", namespace)])
    refused = wait_for(lambda: (c := cluster.get("cube", "nope", namespace))
                       and condition(c, "Ready").get("reason") == "Forbidden" and c, timeout=30, what="Forbidden")
    message = condition(refused, "Ready")["message"]
    assert "forbidden_scope" in message and "write scope" in message and "has read" in message


def test_a_suspended_server_is_reported_not_started(cluster: Cluster, nokyc: NoKyc, team: str) -> None:
    cluster.apply(cube("broke", team))
    server_id = ready(cluster, "cube", "broke", team)["status"]["id"]
    starts = nokyc.count("POST", "/start")
    with nokyc.admin() as admin:
        admin.post(f"/servers/{server_id}/state", json={"state": "suspended"}).raise_for_status()
    wait_for(lambda: condition(cluster.get("cube", "broke", team), "Ready").get("reason") == "ProviderSuspended",
             timeout=30, what="ProviderSuspended")
    time.sleep(2)
    assert nokyc.count("POST", "/start") == starts, "a suspended server was started"


def test_signed_deliveries_over_tls_refresh_and_forgeries_change_nothing(cluster: Cluster, nokyc: NoKyc,
                                                                        operator: Operator) -> None:
    namespace = new_namespace(cluster)
    config = provider_config(namespace, nokyc)
    config["spec"]["pollIntervalSeconds"] = 120  # only a delivery explains a fast update
    cluster.apply([config, obj("Webhook", "events", namespace, providerConfigRef={"name": "nokyc"},
                               receiver="operator", events=["cube.running", "cube.stopped", "cube.deleted"],
                               secretRef={"name": "nokyc-webhook"}), cube("hooked", namespace)])
    hook = ready(cluster, "webhook", "events", namespace)
    assert hook["status"]["url"].startswith("https://127.0.0.1:")
    assert hook["status"]["url"].endswith(f"/webhooks/nokyc/{namespace}/events")
    server_id = ready(cluster, "cube", "hooked", namespace)["status"]["id"]
    started = time.monotonic()
    with nokyc.api() as api:
        api.post(f"/servers/{server_id}/stop", headers={"Idempotency-Key": str(uuid.uuid4())}).raise_for_status()
    wait_for(lambda: any(e["reason"] == "PowerStateChanged" and "outside Kubernetes" in e["message"]
                         for e in events(cluster, namespace, "hooked")), timeout=15, interval=0.1,
             what="the delivery to refresh the Cube")
    print(f"\nNoKYC delivery over TLS → Cube refreshed in {time.monotonic() - started:.2f}s (poll 120s)")

    secret = base64.b64decode(cluster.get("secret", "nokyc-webhook", namespace)["data"]["secret"]).decode()
    url = f"https://127.0.0.1:{operator.webhook_port}/webhooks/nokyc/{namespace}/events"
    body = json.dumps({"id": "evt_x", "object": "event", "type": "server.stopped",
                       "data": {"server": {"id": server_id, "status": "stopped"}}}).encode()

    def post(signature: str, delivery: str) -> int:
        return httpx.post(url, content=body, verify=False, timeout=10, headers={
            "Content-Type": "application/json", "X-Nokyc-Signature": signature,
            "X-Nokyc-Delivery-Id": delivery}).status_code

    now = int(time.time())
    assert post(sign("not-the-secret", body, now), "del_forged") == 401
    assert post(sign(secret, body, now - 301), "del_stale") == 401
    delivery = "del_" + uuid.uuid4().hex
    assert post(sign(secret, body, now), delivery) == 200
    assert post(sign(secret, body, now), delivery) == 409
