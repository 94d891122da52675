"""Snapshot, Restore, TcpMapping, Domain and Webhook end to end, and the verified receiver."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import httpx

from support.e2e import (
    SPACE_ID,
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


def obj(kind: str, object_name: str, namespace: str, **spec: object) -> dict:
    return {"apiVersion": API, "kind": kind, "metadata": {"name": object_name, "namespace": namespace},
            "spec": spec}


def running_cube(cluster: Cluster, namespace: str, name: str = "host") -> str:
    cluster.apply(cube_manifest(name, namespace))
    cluster.kubectl("wait", "--for=condition=Ready", f"cube/{name}", "-n", namespace, "--timeout=60s", timeout=70)
    return cluster.get("cube", name, namespace)["status"]["id"]


def ready_obj(cluster: Cluster, kind: str, name: str, namespace: str, timeout: int = 60) -> dict:
    cluster.kubectl("wait", "--for=condition=Ready", f"{kind}/{name}", "-n", namespace, f"--timeout={timeout}s",
                    timeout=timeout + 10)
    return cluster.get(kind, name, namespace)


def sim_list(krova: Krova, cube_id: str, what: str) -> list[dict]:
    key = {"snapshots": "snapshots", "tcp-mappings": "tcpMappings", "domains": "domains"}[what]
    with krova.api() as api:
        response = api.get(f"/spaces/{SPACE_ID}/cubes/{cube_id}/{what}")
        return response.json()[key] if response.status_code == 200 else []


def test_snapshots_second_waits_then_both_complete_and_delete(cluster: Cluster, krova: Krova, team: str) -> None:
    cube_id = running_cube(cluster, team)
    cluster.apply([obj("Snapshot", "snap-a", team, cubeRef={"name": "host"}),
                   obj("Snapshot", "snap-b", team, cubeRef={"name": "host"}, name="second")])
    reasons: set[str] = set()

    def both_ready() -> bool:
        items = [cluster.get("snapshot", n, team) for n in ("snap-a", "snap-b")]
        reasons.update(condition(i, "Ready").get("reason", "") for i in items)
        return all(condition(i, "Ready").get("status") == "True" for i in items)

    wait_for(both_ready, timeout=60, interval=0.1, what="both snapshots complete")
    assert "WaitingForTurn" in reasons, reasons
    a = cluster.get("snapshot", "snap-a", team)["status"]
    assert a["state"] == "complete" and a["sizeBytes"] > 0 and a["completedAt"] and a["id"]
    remote = {s["id"]: s for s in sim_list(krova, cube_id, "snapshots")}
    assert len(remote) == 2 and all(s["status"] == "complete" for s in remote.values())
    assert remote[cluster.get("snapshot", "snap-b", team)["status"]["id"]]["name"] == "second"
    cluster.kubectl("delete", "snapshot", "snap-a", "-n", team, "--timeout=30s", timeout=40)
    assert a["id"] not in {s["id"] for s in sim_list(krova, cube_id, "snapshots")}


def test_restore_of_completed_snapshot_and_refusals(cluster: Cluster, krova: Krova, team: str) -> None:
    running_cube(cluster, team, "db")
    running_cube(cluster, team, "other")
    cluster.apply(obj("Snapshot", "db-snap", team, cubeRef={"name": "db"}))
    ready_obj(cluster, "snapshot", "db-snap", team)
    cluster.apply([obj("Restore", "db-restore", team, cubeRef={"name": "db"}, snapshotRef={"name": "db-snap"}),
                   obj("Restore", "wrong-cube", team, cubeRef={"name": "other"}, snapshotRef={"name": "db-snap"})])
    done = wait_for(lambda: (r := cluster.get("restore", "db-restore", team)) and
                    r.get("status", {}).get("phase") in ("Succeeded", "Failed") and r, timeout=60, what="restore done")
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["startedAt"] and done["status"]["completedAt"]
    wrong = wait_for(lambda: (r := cluster.get("restore", "wrong-cube", team)) and
                     r.get("status", {}).get("phase") == "Failed" and r, what="refused")
    assert condition(wrong, "Ready")["reason"] == "SnapshotOfAnotherCube"
    cube = ready_obj(cluster, "cube", "db", team)
    assert cube["status"]["state"] == "running"


def test_tcp_mapping_change_replaces_it(cluster: Cluster, krova: Krova, team: str) -> None:
    cluster.apply(obj("TcpMapping", "early", team, cubeRef={"name": "host"}, cubePort=8080))
    waiting = wait_for(lambda: (m := cluster.get("tcpmapping", "early", team)) and
                       condition(m, "Ready").get("reason") == "CubeNotFound" and m, what="waits for its Cube")
    assert f"Cube {team}/host does not exist" in condition(waiting, "Ready")["message"]
    cube_id = running_cube(cluster, team)
    ready_obj(cluster, "tcpmapping", "early", team)  # and goes ahead once the Cube runs
    cluster.apply(obj("TcpMapping", "pg", team, cubeRef={"name": "host"}, cubePort=5432, label="postgres",
                      whitelistedIps=["1.2.3.4/32"]))
    first = ready_obj(cluster, "tcpmapping", "pg", team)["status"]
    assert first["hostPort"] and first["host"] and first["whitelistedIps"] == ["1.2.3.4/32"]
    cluster.kubectl("patch", "tcpmapping", "pg", "-n", team, "--type", "merge", "-p",
                    '{"spec":{"whitelistedIps":["10.0.0.0/8","1.2.3.4/32"]}}')
    second = wait_for(lambda: (m := cluster.get("tcpmapping", "pg", team)) and m["status"].get("id") not in
                      (None, first["id"]) and condition(m, "Ready").get("status") == "True" and m["status"],
                      what="replaced mapping")
    rows = {r["id"]: r for r in sim_list(krova, cube_id, "tcp-mappings")}
    assert first["id"] not in rows
    assert sorted(w["cidr"] for w in rows[second["id"]]["whitelistedIps"]) == ["1.2.3.4/32", "10.0.0.0/8"]
    assert second["hostPort"] == rows[second["id"]]["hostPort"]
    events = cluster.kubectl("get", "events", "-n", team, "--field-selector", "reason=Replacing").stdout
    assert "whitelistedIps changed" in events
    cluster.kubectl("delete", "tcpmapping", "pg", "-n", team, "--timeout=30s", timeout=40)
    assert second["id"] not in {r["id"] for r in sim_list(krova, cube_id, "tcp-mappings")}
    ssh_rows = [r for r in sim_list(krova, cube_id, "tcp-mappings") if r["isSsh"]]
    assert len(ssh_rows) == 1  # the Cube's SSH mapping is untouched


def test_domain_pending_then_active_and_deleted(cluster: Cluster, krova: Krova, team: str) -> None:
    cube_id = running_cube(cluster, team)
    cluster.apply(obj("Domain", "api", team, cubeRef={"name": "host"}, domain="api.example.com", port=8080))
    domain = ready_obj(cluster, "domain", "api", team)
    assert domain["status"]["state"] == "active"
    assert domain["status"]["dnsRecord"]["type"] == "CNAME"
    assert domain["status"]["dnsRecord"]["name"] == "api.example.com"
    assert domain["status"]["dnsRecord"]["value"]
    remote = sim_list(krova, cube_id, "domains")
    assert [d["domain"] for d in remote] == ["api.example.com"]
    cluster.kubectl("patch", "domain", "api", "-n", team, "--type", "merge", "-p", '{"spec":{"port":9090}}')
    moved = wait_for(lambda: (d := cluster.get("domain", "api", team)) and d["status"].get("port") == 9090 and
                     condition(d, "Ready").get("status") == "True" and d["status"], what="route on port 9090")
    assert moved["id"] != domain["status"]["id"]
    assert [(d["id"], d["port"]) for d in sim_list(krova, cube_id, "domains")] == [(moved["id"], 9090)]
    result = cluster.kubectl("patch", "domain", "api", "-n", team, "--type", "merge", "-p",
                             '{"spec":{"domain":"other.example.com"}}', check=False)
    assert result.returncode != 0 and "domain is immutable" in result.stderr
    cluster.kubectl("delete", "domain", "api", "-n", team, "--timeout=30s", timeout=40)
    assert sim_list(krova, cube_id, "domains") == []


def secret_of(cluster: Cluster, namespace: str, name: str, key: str = "secret") -> str | None:
    secret = cluster.get("secret", name, namespace)
    data = (secret or {}).get("data") or {}
    return base64.b64decode(data[key]).decode() if key in data else None


def test_webhook_secret_and_receiver_refresh_beats_the_poll(cluster: Cluster, krova: Krova, operator: Operator) -> None:
    namespace = namespace_with_credentials(cluster, krova)
    config = provider_config(namespace, krova)
    config[0]["spec"]["pollIntervalSeconds"] = 120  # only the webhook can explain a fast update
    cluster.apply(config)
    cluster.kubectl("wait", "--for=condition=Ready", "providerconfig/krova", "-n", namespace, "--timeout=30s")
    cluster.apply(obj("Webhook", "events", namespace, providerConfigRef={"name": "krova"}, receiver="operator",
                      events=["cube.running", "cube.sleeping", "cube.error", "cube.deleted"],
                      secretRef={"name": "krova-webhook"}))
    hook = ready_obj(cluster, "webhook", "events", namespace)
    assert secret_of(cluster, namespace, "krova-webhook"), "signing secret not written to the Secret"
    assert hook["status"]["url"].endswith(f"/webhooks/krova/{namespace}/events")
    cube_id = running_cube(cluster, namespace, "watched")
    with krova.api() as api:
        started = time.monotonic()
        assert api.post(f"/spaces/{SPACE_ID}/cubes/{cube_id}/sleep").status_code == 200
    def saw_the_sleep() -> bool:
        # The status shows it, or the operator already put it back (spec says Running):
        # on a slower API server the "stopped" status may last less than one kubectl get.
        if (cluster.get("cube", "watched", namespace) or {}).get("status", {}).get("state") == "stopped":
            return True
        events = cluster.kubectl("get", "events", "-n", namespace, "--field-selector",
                                 "reason=PowerStateChanged,involvedObject.name=watched", "-o", "name").stdout
        return bool(events.strip())

    wait_for(saw_the_sleep, timeout=30, interval=0.05, what="status reflects the out-of-band sleep")
    delay = time.monotonic() - started
    print(f"\nwebhook → Cube status delay: {delay:.2f}s (poll interval 120s)")
    assert delay < 20
    with krova.api() as api:
        deliveries = api.get(f"/spaces/{SPACE_ID}/webhooks/{hook['status']['id']}/deliveries").json()["deliveries"]
    assert any(d["status"] == "delivered" for d in deliveries)
    first_secret = secret_of(cluster, namespace, "krova-webhook")
    cluster.kubectl("patch", "webhook", "events", "-n", namespace, "--type", "merge", "-p",
                    '{"spec":{"events":["cube.running","cube.deleted"]}}')
    changed = wait_for(lambda: (h := cluster.get("webhook", "events", namespace)) and
                       h["status"].get("id") not in (None, hook["status"]["id"]) and
                       sorted(h["status"].get("events") or []) == ["cube.deleted", "cube.running"] and h,
                       what="endpoint recreated with the new events")
    assert secret_of(cluster, namespace, "krova-webhook") not in (None, first_secret)
    with krova.api() as api:
        assert api.get(f"/spaces/{SPACE_ID}/webhooks/{hook['status']['id']}").status_code == 404
    cluster.kubectl("delete", "webhook", "events", "-n", namespace, "--timeout=30s", timeout=40)
    with krova.api() as api:
        assert api.get(f"/spaces/{SPACE_ID}/webhooks/{changed['status']['id']}").status_code == 404


def test_receiver_rejects_forged_unsigned_oversized_and_replayed(cluster: Cluster, krova: Krova,
                                                                 operator: Operator, team: str) -> None:
    cluster.apply(obj("Webhook", "hook", team, providerConfigRef={"name": "krova"}, receiver="operator",
                      events=["cube.running", "cube.sleeping"], secretRef={"name": "hook-secret"}))
    ready_obj(cluster, "webhook", "hook", team)
    secret = secret_of(cluster, team, "hook-secret")
    assert secret
    cube_id = running_cube(cluster, team)
    before = cluster.get("cube", "host", team)["status"]
    url = f"{operator.receiver_url}/webhooks/krova/{team}/hook"
    payload = json.dumps({"id": "evt_x", "event": "cube.error", "createdAt": "2026-05-04T12:05:00.000Z",
                          "spaceId": SPACE_ID, "data": {"id": cube_id, "name": "host", "state": "error",
                                                        "publicIpv4": None}}).encode()

    def post(body: bytes, signature: str | None, delivery: str) -> int:
        headers = {"Content-Type": "application/json", "X-Krova-Event": "cube.error", "X-Krova-Delivery": delivery}
        if signature is not None:
            headers["X-Krova-Signature"] = signature
        return httpx.post(url, content=body, headers=headers, timeout=10).status_code

    def sign(body: bytes, key: str) -> str:
        return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()

    assert post(payload, None, "dlv_unsigned") == 401
    assert post(payload, sign(payload, "not-the-secret"), "dlv_forged") == 401
    assert post(payload, sign(payload, secret)[:-2] + "00", "dlv_tampered") == 401
    big = payload + b" " * (70 * 1024)
    assert post(big, sign(big, secret), "dlv_big") == 413
    delivery = "dlv_" + uuid.uuid4().hex
    assert post(payload, sign(payload, secret), delivery) == 200
    assert post(payload, sign(payload, secret), delivery) == 409
    time.sleep(2)
    after = cluster.get("cube", "host", team)["status"]
    assert after["state"] == before["state"] == "running"  # the forged "error" changed nothing
    metrics = httpx.get(operator.metrics_url, timeout=5).text
    assert 'cube_operator_webhook_deliveries_total{status="401"}' in metrics


def test_deleting_a_cube_with_children_leaves_nothing_stuck(cluster: Cluster, krova: Krova, team: str) -> None:
    cube_id = running_cube(cluster, team, "parent")
    cluster.apply([
        obj("TcpMapping", "child-port", team, cubeRef={"name": "parent"}, cubePort=8080),
        obj("Domain", "child-domain", team, cubeRef={"name": "parent"}, domain="child.example.com", port=8080),
        obj("Snapshot", "child-snap", team, cubeRef={"name": "parent"}),
    ])
    children = (("tcpmapping", "child-port"), ("domain", "child-domain"), ("snapshot", "child-snap"))
    uid = cluster.get("cube", "parent", team)["metadata"]["uid"]
    for kind, name in children:
        child = ready_obj(cluster, kind, name, team)
        assert child["metadata"]["ownerReferences"] == [
            {"apiVersion": API, "kind": "Cube", "name": "parent", "uid": uid}], child["metadata"]
    cluster.apply(obj("Restore", "child-restore", team, cubeRef={"name": "parent"}, snapshotRef={"name": "child-snap"}))
    wait_for(lambda: (r := cluster.get("restore", "child-restore", team)) and r["status"].get("phase") == "Succeeded"
             and r["metadata"].get("ownerReferences"), timeout=60, what="restore done and owned")
    cluster.kubectl("delete", "cube", "parent", "-n", team, "--timeout=60s", timeout=70)
    assert krova.cube(cube_id) is None
    # No garbage collector runs here: the operator deletes what the Cube owned itself.
    for kind, name in (*children, ("restore", "child-restore")):
        wait_for(lambda k=kind, n=name: cluster.get(k, n, team) is None, timeout=20, what=f"{kind} {name} deleted")
    events = cluster.kubectl("get", "events", "-n", team, "--field-selector", "reason=Deleted", "-o", "json").stdout
    assert "went with its VM at the provider" in events


def test_the_operator_writes_no_secret_it_does_not_own_and_ships_no_credentials(
        cluster: Cluster, krova: Krova, team: str) -> None:
    # A Webhook naming the credentials Secret as where its signing secret goes: refused,
    # before any endpoint exists, and the credentials are untouched.
    before = cluster.get("secret", "krova-credentials", team)
    assert before is not None
    with krova.api() as api:
        endpoints = len(api.get(f"/spaces/{SPACE_ID}/webhooks").json()["webhooks"])
    cluster.apply(obj("Webhook", "thief", team, providerConfigRef={"name": "krova"}, receiver="operator",
                      events=["cube.running"], secretRef={"name": "krova-credentials", "key": "apiKey"}))
    wait_for(lambda: condition(cluster.get("webhook", "thief", team), "Ready").get("reason") == "SecretConflict",
             timeout=30, what="SecretConflict")
    assert "krova-credentials" in condition(cluster.get("webhook", "thief", team), "Ready")["message"]
    after = cluster.get("secret", "krova-credentials", team)
    assert after is not None and after.get("data") == before.get("data")
    with krova.api() as api:
        assert len(api.get(f"/spaces/{SPACE_ID}/webhooks").json()["webhooks"]) == endpoints
    # The API key as cloud-init user data (shipped to a VM the tenant controls): refused.
    cluster.apply(cube_manifest("leaky", team, userDataSecretRef={"name": "krova-credentials", "key": "apiKey"}))
    wait_for(lambda: condition(cluster.get("cube", "leaky", team), "Ready").get("reason") == "SecretNotAllowed",
             timeout=30, what="SecretNotAllowed")
    message = condition(cluster.get("cube", "leaky", team), "Ready")["message"]
    assert "credentials" in message and "spec.userDataSecretRef" in message
    assert not (cluster.get("cube", "leaky", team) or {}).get("status", {}).get("id")
    assert not [c for c in krova.cubes() if c["name"].startswith("leaky")]


def test_another_namespace_cannot_adopt_and_then_delete_a_cube_it_does_not_own(
        cluster: Cluster, krova: Krova, team: str) -> None:
    victim_id = running_cube(cluster, team, "victim")
    other = namespace_with_credentials(cluster, krova)  # the same Krova key, another tenant
    cluster.apply(provider_config(other, krova))
    cluster.kubectl("wait", "--for=condition=Ready", "providerconfig/krova", "-n", other, "--timeout=30s")
    grab = cube_manifest("grab", other)
    grab["metadata"]["annotations"] = {"cube-operator.io/external-name": victim_id}
    cluster.apply(grab)
    wait_for(lambda: condition(cluster.get("cube", "grab", other), "Ready").get("reason") == "AdoptionRefused",
             timeout=30, what="AdoptionRefused")
    message = condition(cluster.get("cube", "grab", other), "Ready")["message"]
    assert "another namespace" in message and team not in message
    cluster.kubectl("delete", "cube", "grab", "-n", other, "--timeout=30s", timeout=40)
    assert (krova.cube(victim_id) or {}).get("state") == "running"


def test_a_url_webhook_made_just_before_a_crash_is_found_and_deleted_with_it(
        cluster: Cluster, krova: Krova, operator: Operator, team: str) -> None:
    def endpoints() -> list[dict]:
        with krova.api() as api:
            return list(api.get(f"/spaces/{SPACE_ID}/webhooks").json()["webhooks"])

    with krova.admin() as admin:
        admin.post("/faults", json={"method": "POST", "route": "create_webhook", "kind": "hold", "seconds": 5,
                                    "count": 1}).raise_for_status()
    try:
        cluster.apply(obj("Webhook", "external", team, providerConfigRef={"name": "krova"},
                          url="https://hooks.example.com/krova", events=["cube.running"],
                          secretRef={"name": "external-secret"}))
        uid = wait_for(lambda: (w := cluster.get("webhook", "external", team)) and w["metadata"]["uid"], what="uid")
        wait_for(lambda: [e for e in endpoints() if e["url"].endswith(uid)], timeout=30, interval=0.05,
                 what="the endpoint made at Krova")
        operator.kill()  # its answer (the id, the secret) never arrives
    finally:
        with krova.admin() as admin:
            admin.delete("/faults")
        operator.start()
    hook = ready_obj(cluster, "webhook", "external", team)
    mine = [e for e in endpoints() if e["url"].endswith(uid)]
    assert [e["id"] for e in mine] == [hook["status"]["id"]], mine  # the orphan was replaced, not kept
    assert mine[0]["url"] == f"https://hooks.example.com/krova#cube-operator={uid}"
    assert secret_of(cluster, team, "external-secret")
    cluster.kubectl("delete", "webhook", "external", "-n", team, "--timeout=30s", timeout=40)
    assert [e for e in endpoints() if e["url"].endswith(uid)] == []


def columns(cluster: Cluster, *args: str) -> list[dict[str, str]]:
    """`kubectl get` as a human reads it: one dict per row, keyed by the header."""
    lines = [line for line in cluster.kubectl("get", *args).stdout.splitlines() if line.strip()]
    header = lines[0].split()
    return [dict(zip(header, line.split(), strict=False)) for line in lines[1:]]


def test_kubectl_get_shows_cost_reason_size_address_and_paused(cluster: Cluster, krova: Krova, team: str) -> None:
    running_cube(cluster, team)
    cluster.apply([obj("Snapshot", "snap", team, cubeRef={"name": "host"}),
                   obj("TcpMapping", "web", team, cubeRef={"name": "host"}, cubePort=8080)])
    ready_obj(cluster, "snapshot", "snap", team)
    mapping = ready_obj(cluster, "tcpmapping", "web", team)["status"]
    cube = cluster.get("cube", "host", team)["status"]

    [row] = columns(cluster, "cubes", "-n", team)
    assert list(row) == ["NAME", "STATE", "IP", "COST/H", "READY", "REASON", "AGE"], row
    assert float(row["COST/H"]) == cube["hourlyCost"] == float(cube["costPerHour"]) > 0
    assert row["REASON"] == "Running"
    sorted_names = cluster.kubectl("get", "cubes", "-n", team, "--sort-by=.status.hourlyCost", "-o", "name").stdout
    assert sorted_names.split() == ["cube.cube-operator.io/host"]

    [pc] = columns(cluster, "providerconfigs", "-n", team)
    assert pc["REASON"] == "CredentialsValid", pc

    [snap] = columns(cluster, "snapshots", "-n", team)
    assert snap["SIZE"].endswith("iB") or snap["SIZE"].endswith("B"), snap
    assert not snap["SIZE"].isdigit()

    [web] = columns(cluster, "tcpmappings", "-n", team)
    assert "HOSTPORT" not in web and web["ADDRESS"] == f"{mapping['host']}" == (
        mapping["host"].rsplit(":", 1)[0] + f":{mapping['hostPort']}")

    cluster.kubectl("annotate", "cube", "host", "-n", team, "cube-operator.io/paused=true")
    paused = wait_for(lambda: (r := columns(cluster, "cubes", "-n", team)[0])["REASON"] == "Paused" and r,
                      what="the paused Cube shows Paused")
    assert paused["READY"] == "True"  # the VM still runs; nobody is looking after it
    ready = condition(cluster.get("cube", "host", team), "Ready")
    assert "last verdict before the pause: Running" in ready["message"]
    cluster.kubectl("annotate", "cube", "host", "-n", team, "cube-operator.io/paused-")
    wait_for(lambda: columns(cluster, "cubes", "-n", team)[0]["REASON"] == "Running", what="unpaused")
