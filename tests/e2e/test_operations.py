"""Operating the operator: metrics on /metrics, and two replicas that act once."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
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
    cluster_with_crds,
    condition,
    cube_manifest,
    namespace_with_credentials,
    provider_config,
    wait_for,
)

MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "manifests"


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total, found = 0.0, False
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if not match:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
            found = True
    if not found:
        raise AssertionError(f"no sample of {name} {labels}")
    return total


def test_metrics_show_reconciles_requests_readiness(cluster: Cluster, krova: Krova, operator: Operator,
                                                    team: str) -> None:
    cluster.apply(cube_manifest("measured", team))
    cluster.kubectl("wait", "--for=condition=Ready", "cube/measured", "-n", team, "--timeout=60s", timeout=70)
    text = httpx.get(operator.metrics_url, timeout=5).text
    assert metric(text, "cube_operator_reconciles_total", kind="Cube", result="success") >= 1
    assert metric(text, "cube_operator_reconciles_total", kind="ProviderConfig", result="success") >= 1
    lists = metric(text, "cube_operator_provider_requests_total", provider="krova", method="GET",
                   endpoint="/spaces/{spaceId}/cubes", status="200")
    creates = metric(text, "cube_operator_provider_requests_total", provider="krova", method="POST",
                     endpoint="/spaces/{spaceId}/cubes", status="201")
    assert lists >= 1 and creates >= 1
    assert metric(text, "cube_operator_time_to_first_ready_seconds_count", kind="Cube") >= 1
    first_ready_sum = metric(text, "cube_operator_time_to_first_ready_seconds_sum", kind="Cube")
    assert 0 < first_ready_sum < 3600 * 10
    assert metric(text, "cube_operator_objects", kind="Cube", ready="True") >= 1
    metric(text, "cube_operator_rate_limit_waits_total")  # the series exists
    assert API_KEY not in text


@pytest.fixture()
def ha_cluster(tmp_path: Path) -> Iterator[Cluster]:
    with cluster_with_crds(tmp_path / "kube") as cluster:
        crds = []
        for path in sorted((MANIFESTS / "crds").glob("kopf.dev_*.yaml")):
            crds.extend(yaml.safe_load_all(path.read_text()))
        cluster.apply(crds)
        cluster.kubectl("wait", "--for=condition=Established", "crd/clusterkopfpeerings.kopf.dev", "--timeout=30s")
        cluster.apply((MANIFESTS / "peering.yaml").read_text())
        yield cluster


def test_event_sent_to_the_standby_replica_reaches_the_cube(ha_cluster: Cluster, tmp_path: Path) -> None:
    """Behind one Service, a provider delivery may land on the paused standby replica."""
    cluster = ha_cluster
    with running_simulator("krova", api_key=API_KEY, space_id=SPACE_ID, time_scale=TIME_SCALE) as sim:
        krova = Krova(url=sim.url, admin_url=sim.admin_url)
        standby, active = (Operator(kubeconfig=cluster.kubeconfig, log_path=tmp_path / f"replica-{i}.log",
                                    args=["--peering", "cube-operator", "--priority", str(100 + i)])
                           for i in (1, 2))
        for replica in (standby, active):
            replica.start()
        try:
            wait_for(lambda: "Pausing operations in favour of" in standby.log(), timeout=30,
                     what="the lower-priority replica to stand by")
            namespace = namespace_with_credentials(cluster, krova)
            names = [f"ha-{i}" for i in range(3)]
            cluster.apply(provider_config(namespace, krova) + [cube_manifest(n, namespace) for n in names])
            wait_for(lambda: all(condition(cluster.get("cube", n, namespace), "Ready").get("status") == "True"
                                 for n in names), timeout=90, interval=0.5, what="all Cubes Ready")
            assert sorted(c["name"] for c in krova.cubes()) == sorted(names), "a Cube was created twice"
            # Subscribed to cube.error only, so Krova's own deliveries don't reach the active replica.
            cluster.apply([{"apiVersion": "cube-operator.io/v1alpha1", "kind": "Webhook",
                            "metadata": {"name": "hook", "namespace": namespace},
                            "spec": {"providerConfigRef": {"name": "krova"}, "receiver": "operator",
                                     "events": ["cube.error"], "secretRef": {"name": "hook-secret"}}}])
            cluster.kubectl("wait", "--for=condition=Ready", "webhook/hook", "-n", namespace, "--timeout=30s")
            cluster.kubectl("patch", "providerconfig", "krova", "-n", namespace, "--type", "merge",
                            "-p", '{"spec":{"pollIntervalSeconds":300}}')
            time.sleep(3)  # the Cubes settle on the long interval
            secret = base64.b64decode(cluster.get("secret", "hook-secret", namespace)["data"]["secret"]).decode()
            cube_id = cluster.get("cube", "ha-0", namespace)["status"]["id"]
            with krova.api() as api:
                assert api.post(f"/spaces/{SPACE_ID}/cubes/{cube_id}/sleep").status_code == 200
            # Krova sends cube.sleeping once the Cube has stopped; so do we.
            wait_for(lambda: (krova.cube(cube_id) or {}).get("state") == "stopped", what="sim asleep")
            body = json.dumps({"id": "evt_standby", "event": "cube.sleeping", "spaceId": SPACE_ID,
                               "createdAt": "2026-11-23T00:00:00.000Z",
                               "data": {"id": cube_id, "name": "ha-0", "state": "stopped"}}).encode()
            signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            started = time.monotonic()
            response = httpx.post(f"{standby.receiver_url}/webhooks/krova/{namespace}/hook", content=body,
                                  headers={"X-Krova-Signature": signature, "X-Krova-Event": "cube.sleeping",
                                           "X-Krova-Delivery": "dlv_standby"}, timeout=10)
            assert response.status_code == 200, response.text
            wait_for(lambda: (cluster.get("cube", "ha-0", namespace) or {}).get("status", {}).get("state")
                     == "stopped", timeout=30, interval=0.1, what="the active replica to see the sleep")
            print(f"\nstandby receiver → active replica → Cube status: {time.monotonic() - started:.2f}s "
                  "(poll interval 300s)")
            standby_log = standby.log().split("Pausing operations in favour of", 1)[1]
            assert "krova POST /spaces/{spaceId}/cubes ->" not in standby_log, "the standby created Cubes"
        finally:
            for replica in (standby, active):
                replica.stop()


def test_steady_state_costs_one_list_call_per_interval(ha_cluster: Cluster, tmp_path: Path) -> None:
    """Observed state comes from one list per ProviderConfig per interval, not a GET per Cube."""
    cluster = ha_cluster
    with running_simulator("krova", api_key=API_KEY, space_id=SPACE_ID, time_scale=TIME_SCALE) as sim:
        krova = Krova(url=sim.url, admin_url=sim.admin_url)
        operator = Operator(kubeconfig=cluster.kubeconfig, log_path=tmp_path / "operator.log")
        operator.start()
        try:
            namespace = namespace_with_credentials(cluster, krova)
            names = [f"steady-{i}" for i in range(8)]
            cluster.apply(provider_config(namespace, krova) + [cube_manifest(n, namespace) for n in names])
            wait_for(lambda: all(condition(cluster.get("cube", n, namespace), "Ready").get("status") == "True"
                                 for n in names), timeout=90, interval=0.5, what="all Cubes Ready")
            time.sleep(3)
            with krova.admin() as admin:
                admin.delete("/stats")
                time.sleep(6)  # six poll intervals of 1 s
                stats = admin.get("/stats").json()["requests"]
        finally:
            operator.stop()
    lists = sum(r["count"] for r in stats if r["method"] == "GET" and r["route"] == "/api/v1/spaces/{spaceId}/cubes")
    others = [r for r in stats if not (r["method"] == "GET" and r["route"] == "/api/v1/spaces/{spaceId}/cubes")]
    assert 4 <= lists <= 8, stats  # about one per interval, for 8 Cubes
    assert others == [], f"steady state made other provider calls: {others}"
