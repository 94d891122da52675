"""The provider seam seen from kubectl: another provider's key and an endpoint the operator
does not allow are reported, not a crash, and the endpoint gets nothing; Krova webhooks signed in Krova's current `t=,v1=` format reach the receiver and refresh
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


def test_another_providers_key_is_refused_offline_without_a_traceback(
        cluster: Cluster, krova: Krova, operator: Operator) -> None:
    # A Krova key in a CyberPanel ProviderConfig: refused by the key's format, before any
    # call (the endpoint points nowhere), and its Cubes wait saying why.
    log_before = len(operator.log())
    namespace = namespace_with_credentials(cluster, krova)
    cluster.apply([
        {"apiVersion": API, "kind": "ProviderConfig", "metadata": {"name": "cyberpanel", "namespace": namespace},
         "spec": {"provider": "cyberpanel", "credentialsSecretRef": {"name": "krova-credentials"},
                  "endpoint": "http://127.0.0.1:9/api/v1", "cyberpanel": {"hostnameDomain": "vms.example.com"}}},
        cube_manifest("elsewhere", namespace, providerConfigRef={"name": "cyberpanel"}),
    ])
    config = wait_for(lambda: (pc := cluster.get("providerconfig", "cyberpanel", namespace))
                      and condition(pc, "Ready").get("reason") == "InvalidCredentials" and pc,
                      timeout=30, what="the ProviderConfig to say InvalidCredentials")
    ready = condition(config, "Ready")
    assert ready["status"] == "False" and "cyp_live_" in ready["message"] and "apiKey" in ready["message"]
    cube = wait_for(lambda: (c := cluster.get("cube", "elsewhere", namespace))
                    and "InvalidCredentials" in condition(c, "Ready").get("message", "") and c,
                    timeout=30, what="the Cube to say why it waits")
    cube_ready = condition(cube, "Ready")
    assert cube_ready["status"] == "False" and cube_ready["reason"] == "ProviderConfigNotReady"
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
        assert other.status_code == 401  # answered like any unknown route: nothing is said about what exists
        cluster.kubectl("delete", "cube/watched", "webhook/events", "-n", namespace, "--timeout=60s", timeout=70)


def test_the_receiver_reads_split_bodies_and_survives_deep_json(cluster: Cluster, krova: Krova,
                                                               operator: Operator) -> None:
    import asyncio

    from cube_operator.providers.krova import sign_seed

    namespace = namespace_with_credentials(cluster, krova)
    cluster.apply(provider_config(namespace, krova) + [
        {"apiVersion": API, "kind": "Webhook", "metadata": {"name": "split", "namespace": namespace},
         "spec": {"providerConfigRef": {"name": "krova"}, "receiver": "operator", "events": ["cube.error"],
                  "secretRef": {"name": "split-secret"}}}])
    cluster.kubectl("wait", "--for=condition=Ready", "webhook/split", "-n", namespace, "--timeout=30s")
    secret = base64.b64decode(cluster.get("secret", "split-secret", namespace)["data"]["secret"]).decode()
    url = f"{operator.receiver_url}/webhooks/krova/{namespace}/split"
    body = json.dumps({"id": "evt_split", "event": "cube.error", "data": {"id": "cube_none"}}).encode()

    async def send_in_two_parts() -> int:
        async def parts():  # type: ignore[no-untyped-def]
            yield body[:20]
            await asyncio.sleep(0.5)  # a second TCP segment, well after the first
            yield body[20:]

        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(url, content=parts(), headers={
                "X-Krova-Signature": sign_seed(secret, body), "X-Krova-Delivery": "dlv_" + uuid.uuid4().hex})
            return response.status_code

    assert asyncio.run(send_in_two_parts()) == 200
    deep = b"[" * 20000 + b"]" * 20000
    response = httpx.post(url, content=deep, timeout=10, headers={
        "X-Krova-Signature": sign_seed(secret, deep), "X-Krova-Delivery": "dlv_" + uuid.uuid4().hex})
    assert response.status_code == 400, response.text
    assert operator.running()


def test_inline_user_data_stays_out_of_the_debug_log(cluster: Cluster, krova: Krova, operator: Operator,
                                                     team: str) -> None:
    marker = "marker-" + uuid.uuid4().hex
    cluster.apply(cube_manifest("with-init", team, userData=f"#cloud-config\n# {marker}\n"))
    cluster.kubectl("wait", "--for=condition=Ready", "cube/with-init", "-n", team, "--timeout=60s", timeout=70)
    assert "userData" in operator.log(), "the log never showed the body: the check proves nothing"
    assert marker not in operator.log()
    result = cluster.apply(cube_manifest("two-keys", team, sshPublicKey=(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2eTestKey e2e@test\nssh-rsa AAAAB3NzaC1yc2E attacker@evil")),
        check=False)
    assert result.returncode != 0 and "sshPublicKey" in result.stderr


def test_an_immutable_field_cannot_be_removed_and_set_anew(cluster: Cluster, krova: Krova, operator: Operator,
                                                          team: str) -> None:
    cluster.apply(cube_manifest("fixed", team))
    has_vm = lambda name: ((cluster.get("cube", name, team) or {}).get("status") or {}).get("id")
    wait_for(lambda: has_vm("fixed"), timeout=30, what="the VM exists")
    removed = cluster.kubectl("patch", "cube", "fixed", "-n", team, "--type", "json",
                              "-p", '[{"op": "remove", "path": "/spec/region"}]', check=False)
    assert removed.returncode != 0 and "region is immutable" in removed.stderr, removed.stderr
    without = cube_manifest("no-region", team)
    del without["spec"]["region"]
    cluster.apply(without)
    wait_for(lambda: has_vm("no-region"), timeout=30, what="the VM exists")
    added = cluster.kubectl("patch", "cube", "no-region", "-n", team, "--type", "merge",
                            "-p", '{"spec":{"region":"us-east"}}', check=False)
    assert added.returncode != 0 and "region is immutable" in added.stderr, added.stderr
    assert cluster.get("cube", "fixed", team)["spec"]["region"] == "eu-nuremberg"


def test_an_endpoint_the_operator_does_not_allow_receives_nothing(cluster: Cluster, krova: Krova,
                                                                  operator: Operator) -> None:
    # The operator allows http://127.0.0.1 (the simulators); "localhost" is another host. A
    # tenant naming it (or a cluster-internal address) would get the credentials sent there.
    import http.server
    import threading

    hits: list[str] = []

    class Trap(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    trap = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trap)
    threading.Thread(target=trap.serve_forever, daemon=True).start()
    try:
        namespace = namespace_with_credentials(cluster, krova)
        config = provider_config(namespace, krova)
        config[0]["spec"]["endpoint"] = f"http://localhost:{trap.server_address[1]}/api/v1"
        cluster.apply(config)
        found = wait_for(lambda: (pc := cluster.get("providerconfig", "krova", namespace))
                         and condition(pc, "Ready").get("reason") == "EndpointNotAllowed" and pc,
                         timeout=30, what="EndpointNotAllowed")
        assert "--allow-endpoint" in condition(found, "Ready")["message"]
        time.sleep(1)
        assert hits == [], hits
    finally:
        trap.shutdown()


def test_a_rate_limit_above_the_providers_is_refused(cluster: Cluster, krova: Krova, operator: Operator) -> None:
    # One tenant raising its budget would spend the limit Krova counts per client address,
    # which every tenant of this operator shares: only lowering is allowed.
    namespace = namespace_with_credentials(cluster, krova)
    config = provider_config(namespace, krova)
    config[0]["spec"]["rateLimit"] = {"requests": 100, "periodSeconds": 1}
    cluster.apply(config)
    found = wait_for(lambda: (pc := cluster.get("providerconfig", "krova", namespace))
                     and condition(pc, "Ready").get("reason") == "InvalidSpec" and pc, timeout=30, what="InvalidSpec")
    assert "can only lower the limit" in condition(found, "Ready")["message"]
    config[0]["spec"]["rateLimit"] = {"requests": 1, "periodSeconds": 1}
    cluster.apply(config)
    wait_for(lambda: condition(cluster.get("providerconfig", "krova", namespace), "Ready").get("status") == "True",
             timeout=30, what="a lower limit accepted")
