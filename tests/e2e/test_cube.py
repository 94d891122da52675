"""Cube end to end: kubectl → emulator → operator → Krova simulator, and back."""
from __future__ import annotations

import json
import time

from support.e2e import (
    API_KEY,
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


def sim_cubes_named(krova: Krova, name: str) -> list[dict]:
    return [c for c in krova.cubes() if c["name"] == name]


def ready(cluster: Cluster, name: str, namespace: str, timeout: float = 60) -> dict:
    cluster.kubectl("wait", "--for=condition=Ready", f"cube/{name}", "-n", namespace, f"--timeout={int(timeout)}s",
                    timeout=timeout + 10)
    cube = cluster.get("cube", name, namespace)
    assert cube
    return cube


def test_apply_to_running_with_status_filled(cluster: Cluster, krova: Krova, team: str) -> None:
    cluster.apply(cube_manifest("web-1", team))
    cube = ready(cluster, "web-1", team)
    status = cube["status"]
    assert status["id"].startswith("cube_") or status["id"]
    assert status["state"] == "running"
    assert status["publicIpv4"]
    assert status["serverDomain"]
    assert isinstance(status["sshHostPort"], int)
    assert float(status["costPerHour"]) > 0
    assert status["observedGeneration"] == cube["metadata"]["generation"]
    assert condition(cube, "Ready")["status"] == "True"
    assert condition(cube, "Synced")["status"] == "True"
    remote = sim_cubes_named(krova, "web-1")
    assert len(remote) == 1 and remote[0]["id"] == status["id"]
    table = cluster.kubectl("get", "cubes", "-n", team).stdout
    header = table.splitlines()[0].split()
    assert header == ["NAME", "STATE", "IP", "COST/H", "READY", "REASON", "AGE"]
    assert "running" in table and status["publicIpv4"] in table and "True" in table
    events = cluster.kubectl("get", "events", "-n", team, "-o", "json").stdout
    assert "Created" in events


def test_power_state_drives_sleep_and_wake(cluster: Cluster, krova: Krova, team: str) -> None:
    cluster.apply(cube_manifest("sleeper", team))
    cube_id = ready(cluster, "sleeper", team)["status"]["id"]
    cluster.kubectl("patch", "cube", "sleeper", "-n", team, "--type", "merge", "-p",
                    '{"spec":{"powerState":"Stopped"}}')
    wait_for(lambda: (krova.cube(cube_id) or {}).get("state") == "stopped", what="sim cube stopped")
    cube = wait_for(lambda: (c := cluster.get("cube", "sleeper", team)) and
                    condition(c, "Ready").get("reason") == "Stopped" and c, what="Cube Ready/Stopped")
    assert cube["status"]["state"] == "stopped"
    assert condition(cube, "Ready")["status"] == "True"
    cluster.kubectl("patch", "cube", "sleeper", "-n", team, "--type", "merge", "-p",
                    '{"spec":{"powerState":"Running"}}')
    wait_for(lambda: (krova.cube(cube_id) or {}).get("state") == "running", what="sim cube running")
    wait_for(lambda: condition(cluster.get("cube", "sleeper", team), "Ready").get("reason") == "Running",
             what="Cube Ready/Running")


def test_out_of_band_sleep_is_corrected(cluster: Cluster, krova: Krova, team: str) -> None:
    cluster.apply(cube_manifest("insomniac", team))
    cube_id = ready(cluster, "insomniac", team)["status"]["id"]
    with krova.api() as api:  # what a user clicking "sleep" in the dashboard does
        assert api.post(f"/spaces/{SPACE_ID}/cubes/{cube_id}/sleep").status_code == 200
    wait_for(lambda: (krova.cube(cube_id) or {}).get("state") == "stopped", timeout=10, what="sim asleep")
    wait_for(lambda: (krova.cube(cube_id) or {}).get("state") == "running", timeout=30, what="woken again")
    events = json.loads(cluster.kubectl("get", "events", "-n", team, "-o", "json").stdout)["items"]
    assert any(e["reason"] == "PowerStateChanged" and "outside Kubernetes" in e["message"] for e in events)


def test_delete_removes_vm_and_orphan_keeps_it(cluster: Cluster, krova: Krova, team: str) -> None:
    cluster.apply([cube_manifest("doomed", team), cube_manifest("keeper", team, deletionPolicy="Orphan")])
    doomed = ready(cluster, "doomed", team)["status"]["id"]
    keeper = ready(cluster, "keeper", team)["status"]["id"]
    cluster.kubectl("delete", "cube", "doomed", "-n", team, "--timeout=60s", timeout=70)
    assert krova.cube(doomed) is None
    assert cluster.get("cube", "doomed", team) is None
    cluster.kubectl("delete", "cube", "keeper", "-n", team, "--timeout=60s", timeout=70)
    assert cluster.get("cube", "keeper", team) is None
    assert (krova.cube(keeper) or {}).get("state") == "running"


def test_invalid_specs_are_rejected_by_the_api(cluster: Cluster, team: str) -> None:
    cases = {
        "spec.resources.vcpu": cube_manifest("bad-vcpu", team, resources={"vcpu": 0, "ramGb": 1, "diskGb": 10}),
        "spec.powerState": cube_manifest("bad-power", team, powerState="Paused"),
        "spec.sshPublicKey": cube_manifest("bad-key", team, sshPublicKey="not-a-key"),
        "spec.sshPort": cube_manifest("bad-port", team, sshPort=70000),
    }
    for field, manifest in cases.items():
        result = cluster.apply(manifest, check=False)
        assert result.returncode != 0, field
        assert field in result.stderr, (field, result.stderr)
    both = cube_manifest("two-keys", team, sshPublicKeySecretRef={"name": "keys", "key": "id.pub"})
    result = cluster.apply(both, check=False)
    assert result.returncode != 0
    assert "spec.sshPublicKey and spec.sshPublicKeySecretRef are exclusive" in result.stderr, result.stderr
    result = cluster.apply(cube_manifest("two-inits", team, userData="#cloud-config\n",
                                         userDataSecretRef={"name": "init", "key": "user-data"}), check=False)
    assert result.returncode != 0 and "spec.userData and spec.userDataSecretRef are exclusive" in result.stderr
    missing = cube_manifest("no-image", team)
    del missing["spec"]["image"]
    result = cluster.apply(missing, check=False)
    assert result.returncode != 0 and "spec.image" in result.stderr


def test_immutable_fields_rejected_on_change(cluster: Cluster, team: str) -> None:
    cluster.apply(cube_manifest("fixed", team, powerState="Stopped"))
    wait_for(lambda: ((cluster.get("cube", "fixed", team) or {}).get("status") or {}).get("id"), timeout=30,
             what="the VM exists")
    result = cluster.kubectl("patch", "cube", "fixed", "-n", team, "--type", "merge", "-p",
                             '{"spec":{"image":"debian-12"}}', check=False)
    assert result.returncode != 0 and "image is immutable" in result.stderr
    result = cluster.kubectl("patch", "cube", "fixed", "-n", team, "--type", "merge", "-p",
                             '{"spec":{"resources":{"vcpu":4}}}', check=False)
    assert result.returncode != 0 and "resources is immutable" in result.stderr


def test_ssh_port_follows_spec(cluster: Cluster, krova: Krova, team: str) -> None:
    cluster.apply(cube_manifest("sshd", team))
    cube_id = ready(cluster, "sshd", team)["status"]["id"]
    cluster.kubectl("patch", "cube", "sshd", "-n", team, "--type", "merge", "-p", '{"spec":{"sshPort":2222}}')

    def ssh_row() -> dict:
        with krova.api() as api:
            rows = api.get(f"/spaces/{SPACE_ID}/cubes/{cube_id}/tcp-mappings").json()["tcpMappings"]
        return next(r for r in rows if r["isSsh"])

    wait_for(lambda: ssh_row()["cubePort"] == 2222, what="ssh port 2222 at Krova")
    wait_for(lambda: (cluster.get("cube", "sshd", team) or {}).get("status", {}).get("sshPort") == 2222,
             what="status.sshPort")
    assert cluster.get("cube", "sshd", team)["status"]["sshHostPort"] == ssh_row()["hostPort"]


def test_missing_or_foreign_provider_config_creates_nothing(cluster: Cluster, krova: Krova, team: str) -> None:
    cluster.apply([
        cube_manifest("orphan-ref", team, providerConfigRef={"name": "nope"}),
        cube_manifest("foreign-ref", team, providerConfigRef={"name": "krova", "namespace": "elsewhere"}),
    ])
    wait_for(lambda: condition(cluster.get("cube", "orphan-ref", team), "Ready").get("reason")
             == "ProviderConfigNotFound", what="ProviderConfigNotFound")
    wait_for(lambda: condition(cluster.get("cube", "foreign-ref", team), "Ready").get("reason")
             == "CrossNamespaceReference", what="CrossNamespaceReference")
    assert not sim_cubes_named(krova, "orphan-ref") and not sim_cubes_named(krova, "foreign-ref")


def test_wrong_api_key_is_reported_and_nothing_crashes(cluster: Cluster, krova: Krova, operator: Operator) -> None:
    namespace = namespace_with_credentials(cluster, krova, api_key="kro_wrong_key_000000000000")
    cluster.apply(provider_config(namespace, krova) + [cube_manifest("locked-out", namespace)])
    pc = wait_for(lambda: (p := cluster.get("providerconfig", "krova", namespace)) and
                  condition(p, "Ready").get("status") == "False" and p, what="PC not ready")
    assert condition(pc, "Ready")["reason"] == "InvalidCredentials"
    assert "401" in condition(pc, "Ready")["message"]
    wait_for(lambda: (c := cluster.get("cube", "locked-out", namespace)) and
             condition(c, "Ready").get("reason") == "ProviderConfigNotReady" and
             "InvalidCredentials" in condition(c, "Ready").get("message", ""), what="cube says why")
    assert not sim_cubes_named(krova, "locked-out")
    assert operator.process and operator.process.poll() is None
    assert "kro_wrong_key_000000000000" not in operator.log()

    # Fixing the Secret is seen at once (a watch on that one Secret), not at the next
    # periodic check minutes later: the ProviderConfig turns Ready and the Cube goes ahead.
    fixed_at = time.monotonic()
    cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "krova-credentials",
                                                                      "namespace": namespace},
                   "stringData": {"apiKey": API_KEY}})
    wait_for(lambda: condition(cluster.get("providerconfig", "krova", namespace), "Ready").get("status") == "True",
             timeout=10, interval=0.1, what="ProviderConfig Ready after the Secret was fixed")
    seen = time.monotonic() - fixed_at
    cluster.kubectl("wait", "--for=condition=Ready", "cube/locked-out", "-n", namespace, "--timeout=60s", timeout=70)
    print(f"\nfixed credentials took effect after {seen:.1f}s")
    assert seen < 3, seen


def test_wrong_space_is_reported(cluster: Cluster, krova: Krova, operator: Operator) -> None:
    namespace = namespace_with_credentials(cluster, krova)
    cluster.apply(provider_config(namespace, krova, space_id="sp_someone_else"))
    pc = wait_for(lambda: (p := cluster.get("providerconfig", "krova", namespace)) and
                  condition(p, "Ready").get("status") == "False" and p, what="PC not ready")
    assert condition(pc, "Ready")["reason"] == "WrongSpace"


def test_paused_cube_is_left_alone_and_adoption(cluster: Cluster, krova: Krova, team: str) -> None:
    with krova.api() as api:
        created = api.post(f"/spaces/{SPACE_ID}/cubes", json={
            "name": "handmade", "image": "ubuntu-24.04", "resources": {"vcpu": 1, "ramGb": 1, "diskGb": 10},
            "sshPublicKey": "ssh-ed25519 AAAAhandmade user@host"})
        assert created.status_code == 201, created.text
        cube_id = created.json()["cube"]["id"]
    manifest = cube_manifest("adopted", team, resources={"vcpu": 1, "ramGb": 1, "diskGb": 10})
    manifest["metadata"]["annotations"] = {"cube-operator.io/external-name": cube_id}
    cluster.apply(manifest)
    cube = ready(cluster, "adopted", team)
    assert cube["status"]["id"] == cube_id
    assert len(sim_cubes_named(krova, "adopted")) == 0  # adopted, not created
    cluster.kubectl("annotate", "cube", "adopted", "-n", team, "cube-operator.io/paused=true")
    wait_for(lambda: condition(cluster.get("cube", "adopted", team), "Synced").get("reason") == "ReconcilePaused",
             what="paused")
    cluster.kubectl("patch", "cube", "adopted", "-n", team, "--type", "merge", "-p",
                    '{"spec":{"powerState":"Stopped"}}')
    import time
    time.sleep(3)
    assert krova.cube(cube_id)["state"] == "running"
    cluster.kubectl("annotate", "cube", "adopted", "-n", team, "cube-operator.io/paused-")
    wait_for(lambda: (krova.cube(cube_id) or {}).get("state") == "stopped", what="slept after unpause")


def test_out_of_band_deletion_is_reported_and_replaced_once(cluster: Cluster, krova: Krova, team: str) -> None:
    cluster.apply(cube_manifest("phoenix", team))
    first = ready(cluster, "phoenix", team)["status"]["id"]
    with krova.api() as api:
        assert api.delete(f"/spaces/{SPACE_ID}/cubes/{first}").status_code == 200
    wait_for(lambda: (c := cluster.get("cube", "phoenix", team)) and c["status"].get("id") not in (None, first)
             and condition(c, "Ready")["status"] == "True", timeout=60, what="replacement ready")
    events = json.loads(cluster.kubectl("get", "events", "-n", team, "-o", "json").stdout)["items"]
    assert sum(1 for e in events if e["reason"] == "ExternallyDeleted") >= 1
    alive = [c for c in sim_cubes_named(krova, "phoenix") if c["state"] != "deleted"]
    assert len(alive) == 1


def test_provider_outage_keeps_finalizer_and_says_why(cluster: Cluster, krova: Krova, team: str) -> None:
    cluster.apply(cube_manifest("stubborn", team))
    cube_id = ready(cluster, "stubborn", team)["status"]["id"]
    with krova.admin() as admin:
        assert admin.post("/faults", json={"method": "DELETE", "route": "/spaces/{spaceId}/cubes/{cubeId}",
                                                "kind": "status", "status": 503, "count": 1000}).status_code < 300
    try:
        cluster.kubectl("delete", "cube", "stubborn", "-n", team, "--wait=false")
        cube = wait_for(lambda: (c := cluster.get("cube", "stubborn", team)) and
                        condition(c, "Ready").get("reason") == "DeletionBlocked" and c, what="DeletionBlocked")
        assert "unavailable" in condition(cube, "Ready")["message"]
        assert cube["metadata"]["finalizers"]
        assert krova.cube(cube_id) is not None
    finally:
        with krova.admin() as admin:
            admin.delete("/faults")
    wait_for(lambda: cluster.get("cube", "stubborn", team) is None, timeout=60, what="deleted after outage")
    assert krova.cube(cube_id) is None


def test_api_key_absent_from_logs(operator: Operator, cluster: Cluster) -> None:
    log = operator.log()
    assert log, "operator log is empty"
    assert API_KEY not in log
    events = cluster.kubectl("get", "events", "-A", "-o", "json").stdout
    assert API_KEY not in events
    statuses = cluster.kubectl("get", "cubes,providerconfigs", "-A", "-o", "json").stdout
    assert API_KEY not in statuses


def test_adopted_cube_whose_image_differs_is_reported(cluster: Cluster, krova: Krova, team: str) -> None:
    with krova.api() as api:
        created = api.post(f"/spaces/{SPACE_ID}/cubes", json={
            "name": "legacy", "image": "debian-12", "resources": {"vcpu": 2, "ramGb": 4, "diskGb": 30},
            "sshPublicKey": "ssh-ed25519 AAAAlegacy user@host"})
        assert created.status_code == 201, created.text
    manifest = cube_manifest("legacy", team)  # says ubuntu-24.04
    manifest["metadata"]["annotations"] = {"cube-operator.io/external-name": created.json()["cube"]["id"]}
    cluster.apply(manifest)
    cube = wait_for(lambda: (c := cluster.get("cube", "legacy", team)) and
                    condition(c, "Ready").get("reason") == "ImmutableFieldChanged" and c, what="drift reported")
    message = condition(cube, "Ready")["message"]
    assert "spec.image is 'ubuntu-24.04' but the Cube runs 'debian-12'" in message


def test_fields_are_editable_until_a_vm_exists(cluster: Cluster, krova: Krova, team: str) -> None:
    # A Cube whose create cannot happen yet (its ProviderConfig does not exist) has no VM:
    # its image and sizing can still be fixed by editing it.
    cluster.apply(cube_manifest("draft", team, providerConfigRef={"name": "not-yet"}))
    wait_for(lambda: condition(cluster.get("cube", "draft", team), "Ready").get("reason") == "ProviderConfigNotFound",
             timeout=30, what="waiting for its ProviderConfig")
    cluster.kubectl("patch", "cube", "draft", "-n", team, "--type", "merge", "-p",
                    '{"spec":{"image":"debian-12","resources":{"vcpu":1,"ramGb":1,"diskGb":10}}}')
    cluster.kubectl("patch", "cube", "draft", "-n", team, "--type", "json",
                    "-p", '[{"op": "remove", "path": "/spec/region"}]')
    cluster.kubectl("patch", "cube", "draft", "-n", team, "--type", "merge", "-p",
                    '{"spec":{"providerConfigRef":{"name":"krova"},"region":"eu-nuremberg"}}')
    found = ready(cluster, "draft", team)
    assert found["status"]["id"] and found["spec"]["image"] == "debian-12"
    result = cluster.kubectl("patch", "cube", "draft", "-n", team, "--type", "merge", "-p",
                             '{"spec":{"image":"ubuntu-24.04"}}', check=False)
    assert result.returncode != 0 and "image is immutable once the Cube has a VM" in result.stderr


def test_a_field_krova_does_not_read_is_refused_before_any_call(cluster: Cluster, krova: Krova, team: str) -> None:
    creates = krova.count("POST", "/cubes")
    cluster.apply(cube_manifest("planned", team, plan="vps-s2",
                                gpus={"model": "h100-sxm5-80gb", "count": 1}))
    refused = wait_for(lambda: (c := cluster.get("cube", "planned", team)) and
                       condition(c, "Ready").get("reason") == "InvalidSpec" and c, timeout=30, what="InvalidSpec")
    message = condition(refused, "Ready")["message"]
    assert "spec.plan does not apply to krova" in message and "spec.gpus does not apply to krova" in message
    assert "remove spec.plan" in message
    assert krova.count("POST", "/cubes") == creates
    # Editable, since no VM exists: removing them lets the create go ahead.
    cluster.kubectl("patch", "cube", "planned", "-n", team, "--type", "json", "-p",
                    '[{"op": "remove", "path": "/spec/plan"}, {"op": "remove", "path": "/spec/gpus"}]')
    assert ready(cluster, "planned", team)["status"]["id"]


def test_a_cube_waiting_for_its_ssh_key_secret_goes_ahead_once_it_is_created(
        cluster: Cluster, krova: Krova, team: str) -> None:
    manifest = cube_manifest("keyed", team, sshPublicKeySecretRef={"name": "late-key", "key": "id.pub"})
    del manifest["spec"]["sshPublicKey"]
    cluster.apply(manifest)
    waiting = wait_for(lambda: (c := cluster.get("cube", "keyed", team)) and
                       condition(c, "Ready").get("reason") == "SecretNotFound" and c, what="SecretNotFound")
    assert "looking again in 60s, or as soon as what it names changes" in condition(waiting, "Synced")["message"]
    created_at = time.monotonic()
    cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "late-key", "namespace": team},
                   "stringData": {"id.pub": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2eTestKey e2e@test"}})
    wait_for(lambda: (cluster.get("cube", "keyed", team) or {}).get("status", {}).get("id"), timeout=10,
             interval=0.1, what="created once its Secret exists")
    assert time.monotonic() - created_at < 3


def test_a_provider_config_change_reaches_its_cubes_within_a_second(
        cluster: Cluster, krova: Krova, operator: Operator) -> None:
    namespace = namespace_with_credentials(cluster, krova)
    cluster.apply(provider_config(namespace, krova) + [cube_manifest("follower", namespace)])
    cluster.kubectl("wait", "--for=condition=Ready", "cube/follower", "-n", namespace, "--timeout=60s", timeout=70)
    changed_at = time.monotonic()
    cluster.kubectl("patch", "providerconfig", "krova", "-n", namespace, "--type", "merge", "-p",
                    '{"spec":{"krova":{"spaceId":"sp_someone_else"}}}')
    wait_for(lambda: condition(cluster.get("cube", "follower", namespace), "Ready").get("reason")
             == "ProviderConfigNotReady", timeout=10, interval=0.05, what="the Cube sees the change")
    took = time.monotonic() - changed_at
    print(f"\nProviderConfig change seen by its Cube after {took:.2f}s")
    assert took < 1.5, took  # kubectl's own start-up is part of it
