"""CyberPanel Cloud end to end: real kubectl, the real operator (its receiver taking the
per-VPS deployment callbacks), the CyberPanel simulator. Its own emulator, simulator and
operator (module scope), independent of the Krova package fixtures."""
from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cloudsim.testing import running_simulator
from cube_operator.providers.cyberpanel import sign
from support.e2e import Cluster, Operator, cluster_with_crds, condition, wait_for

API = "cube-operator.io/v1alpha1"
KEY = "cyp_live_" + "e2e0" * 16
TIME_SCALE = 20.0
# Deployment: 120 simulated seconds (6 s here), so its progress shows on the way.
SETTINGS = {"deploy_delay": 120.0, "start_delay": 3.0, "stop_delay": 3.0, "restart_delay": 3.0}
SSH = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2eCyberPanel e2e@test"
DOMAIN = "vms.example.com"


class CyberPanel:
    def __init__(self, url: str, admin_url: str) -> None:
        self.url, self.admin_url = url, admin_url

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10)

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.admin_url, timeout=10)

    def vps(self) -> list[dict[str, Any]]:
        """Every VPS the simulator holds, deleted ones too (admin view)."""
        with self.admin() as admin:
            return list(admin.get("/vps").json()["vps"])

    def live(self, vps_id: str) -> dict[str, Any] | None:
        return next((v for v in self.vps() if str(v["id"]) == vps_id and not v["deleted"]), None)

    def count(self, method: str, route: str) -> int:
        with self.admin() as admin:
            rows = admin.get("/stats").json()["requests"]
        return sum(r["count"] for r in rows if r["method"] == method and r["route"] == route)

    def deliveries(self, vps_id: str) -> list[dict[str, Any]]:
        with self.admin() as admin:
            return list(admin.get("/webhooks", params={"vps_id": vps_id}).json()["deliveries"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster_with_crds(tmp_path_factory.mktemp("kube-cp")) as c:
        yield c


@pytest.fixture(scope="module")
def cp() -> Iterator[CyberPanel]:
    with running_simulator("cyberpanel", api_key=KEY, time_scale=TIME_SCALE, settings=SETTINGS) as sim:
        yield CyberPanel(sim.url, sim.admin_url)


@pytest.fixture(scope="module")
def operator(cluster: Cluster, cp: CyberPanel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    op = Operator(kubeconfig=cluster.kubeconfig, log_path=tmp_path_factory.mktemp("op-cp") / "operator.log",
                  budget_scale=TIME_SCALE)
    op.args = ["--webhook-public-url", op.receiver_url]  # where the simulator delivers callbacks
    op.start()
    yield op
    op.stop()
    log = op.log()
    assert KEY not in log, "the API key leaked into the operator log"
    assert "Traceback" not in log, log[-4000:]


def team_namespace(cluster: Cluster, cp: CyberPanel, *, poll: int = 1) -> str:
    namespace = "cp-" + uuid.uuid4().hex[:8]
    cluster.apply([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cp-credentials", "namespace": namespace},
         "stringData": {"apiKey": KEY}},
        {"apiVersion": API, "kind": "ProviderConfig", "metadata": {"name": "cyberpanel", "namespace": namespace},
         "spec": {"provider": "cyberpanel", "endpoint": cp.url, "cyberpanel": {"hostnameDomain": DOMAIN},
                  "credentialsSecretRef": {"name": "cp-credentials"}, "pollIntervalSeconds": poll}},
    ])
    cluster.kubectl("wait", "--for=condition=Ready", "providerconfig/cyberpanel", "-n", namespace, "--timeout=30s")
    return namespace


@pytest.fixture
def team(cluster: Cluster, cp: CyberPanel, operator: Operator) -> str:
    return team_namespace(cluster, cp)


def cube(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"providerConfigRef": {"name": "cyberpanel"}, "image": "9000", "region": "la",
                            "resources": {"vcpu": 1, "ramGb": 1, "diskGb": 20}, "sshPublicKey": SSH}
    body.update(spec)
    return {"apiVersion": API, "kind": "Cube", "metadata": {"name": name, "namespace": namespace}, "spec": body}


def ready(cluster: Cluster, name: str, namespace: str, timeout: int = 60) -> dict[str, Any]:
    return cluster.ready("cube", name, namespace, timeout)


def reason(cluster: Cluster, kind: str, name: str, namespace: str) -> str:
    return str(condition(cluster.get(kind, name, namespace), "Ready").get("reason"))


def test_the_provider_config_shows_the_key_and_its_scopes(cluster: Cluster, team: str) -> None:
    config = cluster.get("providerconfig", "cyberpanel", team)
    assert config is not None
    assert config["status"]["scopes"] == ["all"] and config["status"]["balanceUsd"] > 0
    assert "scopes all" in condition(config, "Ready")["message"]


def test_a_key_that_cannot_write_is_reported(cluster: Cluster, cp: CyberPanel, operator: Operator) -> None:
    with cp.admin() as admin:
        reader = admin.post("/keys", json={"name": "read-only", "scopes": ["vps:read"]}).json()["api_key"]
    namespace = "cp-" + uuid.uuid4().hex[:8]
    cluster.apply([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "reader", "namespace": namespace},
         "stringData": {"apiKey": reader}},
        {"apiVersion": API, "kind": "ProviderConfig", "metadata": {"name": "cyberpanel", "namespace": namespace},
         "spec": {"provider": "cyberpanel", "endpoint": cp.url, "cyberpanel": {"hostnameDomain": DOMAIN},
                  "credentialsSecretRef": {"name": "reader"}}},
    ])
    wait_for(lambda: reason(cluster, "providerconfig", "cyberpanel", namespace) == "Forbidden", timeout=30,
             what="Forbidden")
    message = condition(cluster.get("providerconfig", "cyberpanel", namespace), "Ready")["message"]
    assert "read-only" in message and "vps:write" in message and reader not in message


def test_a_cube_deploys_with_progress_runs_stops_and_is_deleted(cluster: Cluster, cp: CyberPanel,
                                                               operator: Operator, team: str) -> None:
    cluster.apply(cube("web", team))
    seen: list[dict[str, Any]] = []

    def progressing() -> bool:
        found = cluster.get("cube", "web", team) or {}
        progress = (found.get("status") or {}).get("provisioning")
        if progress:
            seen.append({"progress": progress, "message": condition(found, "Ready").get("message", "")})
        return bool(progress and progress.get("currentTask"))
    wait_for(progressing, timeout=30, interval=0.1, what="deployment progress in status")
    assert "is deploying the Cube: task" in seen[-1]["message"], seen[-1]
    status = ready(cluster, "web", team)["status"]
    assert status["state"] == "running" and status["publicIpv4"] and status.get("provisioning") is None
    assert status["imageName"] == "Ubuntu 22.04" and status["plan"] and float(status["costPerHour"]) > 0
    vps = cp.live(status["id"])
    assert vps is not None and vps["name"].startswith("web-") and vps["name"].endswith("." + DOMAIN)

    # The generated root password: in its Secret, owned by the Cube, and nowhere else.
    cube_obj = cluster.get("cube", "web", team)
    assert cube_obj is not None and status["rootPasswordSecret"] == "web-root-password"
    secret = cluster.get("secret", "web-root-password", team)
    assert secret is not None and secret["metadata"]["ownerReferences"][0]["uid"] == cube_obj["metadata"]["uid"]
    password = base64.b64decode(secret["data"]["password"]).decode()
    assert len(password) == 24 and password.isalnum()
    assert password not in json.dumps(cube_obj) and password not in operator.log()
    assert password not in cluster.kubectl("get", "events", "-n", team, "-o", "json").stdout
    with cp.admin() as admin:
        assert password not in admin.get("/requests", params={"limit": 1000}).text
        assert password not in admin.get("/vps").text

    cluster.kubectl("patch", "cube", "web", "-n", team, "--type", "merge", "-p", '{"spec":{"powerState":"Stopped"}}')
    wait_for(lambda: reason(cluster, "cube", "web", team) == "Stopped", timeout=30, what="Stopped")
    assert (cp.live(status["id"]) or {}).get("status") == "stopped"
    cluster.kubectl("patch", "cube", "web", "-n", team, "--type", "merge", "-p", '{"spec":{"powerState":"Running"}}')
    wait_for(lambda: reason(cluster, "cube", "web", team) == "Running", timeout=30, what="Running again")

    # Stopped from the panel: started again, and said so.
    with cp.api() as api:
        api.post(f"/vps/{status['id']}/stop").raise_for_status()

    def corrected() -> bool:
        items = json.loads(cluster.kubectl("get", "events", "-n", team, "-o", "json").stdout)["items"]
        return any(e["reason"] == "PowerStateChanged" and "outside Kubernetes" in e["message"] for e in items)
    wait_for(corrected, timeout=30, what="drift corrected")
    wait_for(lambda: reason(cluster, "cube", "web", team) == "Running", timeout=30, what="Running after drift")

    deletes = cp.count("POST", "/api/v1/vps/{id}/delete")
    cluster.kubectl("delete", "cube", "web", "-n", team, "--timeout=60s", timeout=70)
    assert cp.live(status["id"]) is None
    assert cp.count("POST", "/api/v1/vps/{id}/delete") == deletes + 1

    cluster.apply(cube("kept", team, deletionPolicy="Orphan"))
    kept = ready(cluster, "kept", team)["status"]["id"]
    cluster.kubectl("delete", "cube", "kept", "-n", team, "--timeout=60s", timeout=70)
    assert (cp.live(kept) or {}).get("status") == "running"


def test_a_given_root_password_is_used_and_a_weak_one_refused(cluster: Cluster, cp: CyberPanel, team: str) -> None:
    creates = cp.count("POST", "/api/v1/vps/create")
    cluster.apply([
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "weak", "namespace": team},
         "stringData": {"password": "password"}},
        cube("weak", team, rootPasswordSecretRef={"name": "weak", "key": "password"}),
    ])
    wait_for(lambda: reason(cluster, "cube", "weak", team) == "InvalidSpec", timeout=30, what="InvalidSpec")
    assert "letters and digits" in condition(cluster.get("cube", "weak", team), "Ready")["message"]
    assert cp.count("POST", "/api/v1/vps/create") == creates
    cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "weak", "namespace": team},
                   "stringData": {"password": "Much2Stronger"}})
    # Secrets are not watched yet: a touch of the Cube makes it look again now.
    cluster.kubectl("annotate", "cube", "weak", "-n", team, "example.com/touched=1")
    status = ready(cluster, "weak", team)["status"]
    assert status["rootPasswordSecret"] == "weak" and cluster.get("secret", "weak-root-password", team) is None


def test_sigkill_after_the_create_was_accepted_makes_one_vps(cluster: Cluster, cp: CyberPanel, operator: Operator,
                                                            team: str) -> None:
    creates = cp.count("POST", "/api/v1/vps/create")
    with cp.admin() as admin:
        admin.post("/faults", json={"method": "POST", "route": "/api/v1/vps/create", "kind": "hold", "seconds": 5,
                                    "count": 1}).raise_for_status()
    try:
        cluster.apply(cube("crashy", team))
        uid = wait_for(lambda: (c := cluster.get("cube", "crashy", team)) and c["metadata"]["uid"], what="uid")
        marker = f"crashy-{uid[:8]}.{DOMAIN}"
        wait_for(lambda: [v for v in cp.vps() if v["name"] == marker], timeout=30, interval=0.05,
                 what="the simulator accepted the create")
        operator.kill()
        assert not (cluster.get("cube", "crashy", team) or {}).get("status", {}).get("id")
    finally:
        with cp.admin() as admin:
            admin.delete("/faults")
        operator.start()
    found = ready(cluster, "crashy", team)
    owned = [v for v in cp.vps() if v["name"] == marker and not v["deleted"]]
    assert len(owned) == 1 and found["status"]["id"] == str(owned[0]["id"]), owned
    assert cp.count("POST", "/api/v1/vps/create") == creates + 1, "a second create was sent"
    events = json.loads(cluster.kubectl("get", "events", "-n", team, "-o", "json").stdout)["items"]
    assert any(e["reason"] == "Found" and "earlier create attempt" in e["message"] for e in events)


def test_a_failed_deployment_is_reported_with_its_task(cluster: Cluster, cp: CyberPanel, team: str) -> None:
    with cp.admin() as admin:
        admin.put("/config", json={"fail_next_deployments": 1, "fail_at_task": "apply_cloud_init"}).raise_for_status()
    cluster.apply(cube("doomed", team))
    wait_for(lambda: reason(cluster, "cube", "doomed", team) == "ProvisioningFailed", timeout=45,
             what="ProvisioningFailed")
    found = cluster.get("cube", "doomed", team)
    assert found is not None
    assert "apply_cloud_init" in condition(found, "Ready")["message"]
    assert found["status"]["provisioning"]["failed"] is True
    assert condition(found, "Stalled").get("status") in (None, "True")
    cluster.kubectl("delete", "cube", "doomed", "-n", team, "--timeout=60s", timeout=70)
    assert cp.live(found["status"]["id"]) is None


def test_the_deployment_callback_refreshes_at_once_and_a_forged_one_changes_nothing(
        cluster: Cluster, cp: CyberPanel, operator: Operator) -> None:
    # A long poll interval: only the callback can tell the operator the deployment ended.
    namespace = team_namespace(cluster, cp, poll=300)
    cluster.apply(cube("called", namespace))
    vps_id = wait_for(lambda: ((cluster.get("cube", "called", namespace) or {}).get("status") or {}).get("id"),
                      timeout=30, what="created")
    vps = cp.live(vps_id)
    assert vps is not None and vps["webhook_signed"] and "/callbacks/cyberpanel/" in vps["webhook_url"]
    url = f"{operator.receiver_url}/callbacks/cyberpanel/{namespace}/called"
    forged = json.dumps({"event": "vps.deployment.completed", "timestamp": "2026-01-01T00:00:00Z",
                         "data": {"vps_id": int(vps_id), "status": "running"}}).encode()
    assert httpx.post(url, content=forged, timeout=10).status_code == 401
    assert httpx.post(url, content=forged, timeout=10,
                      headers={"X-Webhook-Signature": sign("not-the-secret", forged)}).status_code == 401
    assert reason(cluster, "cube", "called", namespace) in ("Provisioning", "Creating")

    delivered = wait_for(lambda: [d for d in cp.deliveries(vps_id) if d["status"] == "delivered"], timeout=30,
                         interval=0.05, what="the callback delivered")
    at = time.monotonic()
    ready(cluster, "called", namespace, timeout=10)
    assert time.monotonic() - at < 5, "status did not follow the callback"
    assert delivered[0]["event"] == "vps.deployment.completed"
    # The same body again (a replay): refused, nothing to do twice.
    secret = base64.b64decode(cluster.get("secret", "called-callback", namespace)["data"]["secret"]).decode()
    body = json.dumps(delivered[0]["payload"]).encode()
    first = httpx.post(url, content=body, headers={"X-Webhook-Signature": sign(secret, body)}, timeout=10)
    again = httpx.post(url, content=body, headers={"X-Webhook-Signature": sign(secret, body)}, timeout=10)
    assert first.status_code in (200, 409) and again.status_code == 409
    other = json.dumps({"event": "vps.deployment.completed", "data": {"vps_id": 999999}}).encode()
    assert httpx.post(url, content=other, headers={"X-Webhook-Signature": sign(secret, other)},
                      timeout=10).status_code == 400


def test_snapshots_are_made_kept_on_delete_and_other_kinds_are_unsupported(cluster: Cluster, cp: CyberPanel,
                                                                           team: str) -> None:
    cluster.apply(cube("snappy", team))
    vps_id = ready(cluster, "snappy", team)["status"]["id"]
    cluster.apply([
        {"apiVersion": API, "kind": "Snapshot", "metadata": {"name": "before-upgrade", "namespace": team},
         "spec": {"cubeRef": {"name": "snappy"}}},
        {"apiVersion": API, "kind": "TcpMapping", "metadata": {"name": "web", "namespace": team},
         "spec": {"cubeRef": {"name": "snappy"}, "cubePort": 8080}},
        {"apiVersion": API, "kind": "Domain", "metadata": {"name": "site", "namespace": team},
         "spec": {"cubeRef": {"name": "snappy"}, "domain": "site.example.com", "port": 8080}},
        {"apiVersion": API, "kind": "Webhook", "metadata": {"name": "events", "namespace": team},
         "spec": {"providerConfigRef": {"name": "cyberpanel"}, "receiver": "operator", "events": ["cube.running"],
                  "secretRef": {"name": "events-secret", "key": "secret"}}},
    ])
    snapshot = cluster.ready("snapshot", "before-upgrade", team, 30)
    name = snapshot["status"]["id"]
    assert name == f"{team}_before_upgrade".replace("-", "_")
    assert "will leave the snapshot in place" in condition(snapshot, "Ready")["message"]
    with cp.api() as api:
        listed = api.get(f"/vps/{vps_id}/snapshots").json()["data"]["snapshots"]
    assert [s["name"] for s in listed] == [name]
    for kind, obj in (("tcpmapping", "web"), ("domain", "site"), ("webhook", "events")):
        wait_for(lambda k=kind, o=obj: reason(cluster, k, o, team) == "Unsupported", timeout=30, what=f"{kind}")
        assert "cyberpanel" in condition(cluster.get(kind, obj, team), "Ready")["message"]
    cluster.apply({"apiVersion": API, "kind": "Restore", "metadata": {"name": "back", "namespace": team},
                   "spec": {"cubeRef": {"name": "snappy"}, "snapshotRef": {"name": "before-upgrade"}}})
    wait_for(lambda: reason(cluster, "restore", "back", team) == "Unsupported", timeout=30, what="restore")

    cluster.kubectl("delete", "snapshot", "before-upgrade", "-n", team, "--timeout=30s", timeout=40)
    events = json.loads(cluster.kubectl("get", "events", "-n", team, "-o", "json").stdout)["items"]
    assert any(e["reason"] == "LeftInPlace" and e["type"] == "Warning" and name in e["message"] for e in events)
    with cp.api() as api:
        assert [s["name"] for s in api.get(f"/vps/{vps_id}/snapshots").json()["data"]["snapshots"]] == [name]


def test_a_suspended_vps_is_reported_and_not_started_until_lifted(cluster: Cluster, cp: CyberPanel,
                                                                  team: str) -> None:
    cluster.apply(cube("owed", team))
    vps_id = ready(cluster, "owed", team)["status"]["id"]
    starts = cp.count("POST", "/api/v1/vps/{id}/start")
    with cp.admin() as admin:
        admin.post(f"/vps/{vps_id}/status", json={"status": "suspended", "reason": "unpaid invoice"}).raise_for_status()
    wait_for(lambda: reason(cluster, "cube", "owed", team) == "ProviderSuspended", timeout=30, what="suspended")
    time.sleep(3)  # a few passes: none of them tries to start it
    assert cp.count("POST", "/api/v1/vps/{id}/start") == starts
    with cp.admin() as admin:  # lifted: CyberPanel leaves it stopped, the spec says Running
        admin.post(f"/vps/{vps_id}/status", json={"status": "unsuspend"}).raise_for_status()
    wait_for(lambda: reason(cluster, "cube", "owed", team) == "Running", timeout=30, what="running again")
    assert cp.count("POST", "/api/v1/vps/{id}/start") == starts + 1


def test_a_rejected_create_is_not_sent_again_until_something_changes(cluster: Cluster, cp: CyberPanel,
                                                                     team: str) -> None:
    with cp.admin() as admin:
        admin.put("/account", json={"balance": "0.00"}).raise_for_status()
    try:
        creates = cp.count("POST", "/api/v1/vps/create")
        cluster.apply(cube("broke", team))
        wait_for(lambda: reason(cluster, "cube", "broke", team) == "ProviderRejected", timeout=30,
                 what="ProviderRejected")
        message = condition(cluster.get("cube", "broke", team), "Ready")["message"]
        assert "INSUFFICIENT_BALANCE" in message and "not sent again" in message
        time.sleep(6)  # several passes: none sends the create again
        assert cp.count("POST", "/api/v1/vps/create") == creates + 1
    finally:
        with cp.admin() as admin:
            admin.put("/account", json={"balance": "150.00"}).raise_for_status()
    # Topped up at the provider (nothing Kubernetes sees): any change to the Cube retries.
    cluster.kubectl("annotate", "cube", "broke", "-n", team, "example.com/retry=1")
    ready(cluster, "broke", team)
    assert cp.count("POST", "/api/v1/vps/create") == creates + 2
