"""The provider seam seen from kubectl: an unimplemented provider is reported, not a crash;
Krova webhooks signed in Krova's current `t=,v1=` format reach the receiver and refresh
the Cube, and a delivery signed 301 s ago is refused."""
from __future__ import annotations

import base64
import json
import time
import uuid

import httpx

from cloudsim.krova import sign_v1
from cloudsim.testing import running_simulator
from support.e2e import (
    API_KEY,
    SPACE_ID,
    TIME_SCALE,
    Cluster,
    Krova,
    Operator,
    condition,
    cube_manifest,
    namespace_with_credentials,
    provider_config,
    wait_for,
)

API = "cube-operator.io/v1alpha1"


def test_an_unimplemented_provider_is_unsupported_without_a_traceback(
        cluster: Cluster, krova: Krova, operator: Operator) -> None:
    log_before = len(operator.log())
    namespace = namespace_with_credentials(cluster, krova)
    cluster.apply([
        {"apiVersion": API, "kind": "ProviderConfig", "metadata": {"name": "cyberpanel", "namespace": namespace},
         "spec": {"provider": "cyberpanel", "credentialsSecretRef": {"name": "krova-credentials"},
                  "cyberpanel": {}}},
        cube_manifest("elsewhere", namespace, providerConfigRef={"name": "cyberpanel"}),
    ])
    config = wait_for(lambda: (pc := cluster.get("providerconfig", "cyberpanel", namespace))
                      and condition(pc, "Ready").get("reason") == "Unsupported" and pc,
                      timeout=30, what="the ProviderConfig to say Unsupported")
    ready = condition(config, "Ready")
    assert ready["status"] == "False"
    assert "cyberpanel" in ready["message"] and "implemented: krova" in ready["message"]
    cube = wait_for(lambda: (c := cluster.get("cube", "elsewhere", namespace))
                    and "Unsupported" in condition(c, "Ready").get("message", "") and c,
                    timeout=30, what="the Cube to say why it waits")
    cube_ready = condition(cube, "Ready")
    assert cube_ready["status"] == "False" and cube_ready["reason"] == "ProviderConfigNotReady"
    assert "cyberpanel" in cube_ready["message"]
    assert not (cube.get("status") or {}).get("id")
    new_log = operator.log()[log_before:]
    assert "Traceback" not in new_log, new_log[-3000:]


def test_a_settings_block_for_another_provider_is_refused_by_the_api(cluster: Cluster, krova: Krova,
                                                                     operator: Operator) -> None:
    namespace = namespace_with_credentials(cluster, krova)
    result = cluster.apply({"apiVersion": API, "kind": "ProviderConfig",
                            "metadata": {"name": "mixed", "namespace": namespace},
                            "spec": {"provider": "krova", "credentialsSecretRef": {"name": "krova-credentials"},
                                     "krova": {"spaceId": SPACE_ID}, "lunanode": {}}}, check=False)
    assert result.returncode != 0 and "spec.lunanode is for provider lunanode" in result.stderr
    result = cluster.apply({"apiVersion": API, "kind": "ProviderConfig",
                            "metadata": {"name": "nospace", "namespace": namespace},
                            "spec": {"provider": "krova", "credentialsSecretRef": {"name": "krova-credentials"}}},
                           check=False)
    assert result.returncode != 0 and "spec.krova.spaceId is required" in result.stderr


def test_v1_signed_krova_webhooks_are_accepted_and_stale_ones_refused(cluster: Cluster, operator: Operator) -> None:
    with running_simulator("krova", api_key=API_KEY, space_id=SPACE_ID, time_scale=TIME_SCALE,
                           settings={"webhook_signature": "v1"}) as sim:
        krova = Krova(url=sim.url, admin_url=sim.admin_url)
        namespace = namespace_with_credentials(cluster, krova)
        config = provider_config(namespace, krova)
        config[0]["spec"]["pollIntervalSeconds"] = 120  # only a delivery can explain a fast update
        cluster.apply(config)
        cluster.kubectl("wait", "--for=condition=Ready", "providerconfig/krova", "-n", namespace, "--timeout=30s")
        cluster.apply([
            {"apiVersion": API, "kind": "Webhook", "metadata": {"name": "events", "namespace": namespace},
             "spec": {"providerConfigRef": {"name": "krova"}, "receiver": "operator",
                      "events": ["cube.running", "cube.sleeping", "cube.stopped"],
                      "secretRef": {"name": "krova-webhook"}}},
            cube_manifest("watched", namespace),
        ])
        cluster.kubectl("wait", "--for=condition=Ready", "webhook/events", "cube/watched", "-n", namespace,
                        "--timeout=60s", timeout=70)
        cube_id = cluster.get("cube", "watched", namespace)["status"]["id"]
        with krova.api() as api:
            assert api.post(f"/spaces/{SPACE_ID}/cubes/{cube_id}/sleep").status_code == 200
        started = time.monotonic()

        def woken_after_the_delivery() -> bool:
            # With a 120 s poll, only the delivery explains the operator noticing this fast;
            # it sees the out-of-band sleep and wakes the Cube (spec says Running).
            events = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
            return any(e.get("reason") == "PowerStateChanged" and "outside Kubernetes" in e.get("message", "")
                       and e["involvedObject"]["name"] == "watched" for e in events)

        wait_for(woken_after_the_delivery, timeout=20, interval=0.2, what="the v1-signed delivery to refresh the Cube")
        assert time.monotonic() - started < 20
        hook_id = cluster.get("webhook", "events", namespace)["status"]["id"]
        with krova.api() as api:
            deliveries = api.get(f"/spaces/{SPACE_ID}/webhooks/{hook_id}/deliveries").json()["deliveries"]
        assert any(d["status"] == "delivered" and d["responseStatus"] == 200 for d in deliveries), deliveries

        secret_data = cluster.get("secret", "krova-webhook", namespace)["data"]["secret"]
        secret = base64.b64decode(secret_data).decode()
        url = f"{operator.receiver_url}/webhooks/krova/{namespace}/events"
        body = json.dumps({"id": "evt_manual", "event": "cube.running", "spaceId": SPACE_ID,
                           "data": {"id": cube_id, "name": "watched", "state": "running"}}).encode()

        def post(signature: str) -> httpx.Response:
            return httpx.post(url, content=body, timeout=10, headers={
                "Content-Type": "application/json", "X-Krova-Event": "cube.running",
                "X-Krova-Delivery": "dlv_" + uuid.uuid4().hex, "X-Krova-Signature": signature})

        stale = post(sign_v1(secret, body, int(time.time()) - 301))
        assert stale.status_code == 401 and "tolerance" in stale.json()["error"]
        assert post(sign_v1(secret, body, int(time.time()))).status_code == 200
        # A Krova delivery sent to another provider's route is not accepted.
        other = httpx.post(f"{operator.receiver_url}/webhooks/lunanode/{namespace}/events", content=body,
                           timeout=10, headers={"X-Krova-Signature": sign_v1(secret, body, int(time.time()))})
        assert other.status_code == 404
        cluster.kubectl("delete", "cube/watched", "webhook/events", "-n", namespace, "--timeout=60s", timeout=70)
