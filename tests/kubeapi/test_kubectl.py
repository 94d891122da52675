"""Real /usr/bin/kubectl against the emulator: the workflows users run."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeapi.testing import RunningEmulator, kubectl, kubectl_popen, widget_crd

WIDGET = """\
apiVersion: example.test/v1
kind: Widget
metadata:
  name: w1
  labels: {team: a}
spec:
  size: {size}
  shape: round
"""


def until(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def line_reader(proc: subprocess.Popen[str]) -> Callable[[], str]:
    """readline() with a timeout, so a silent kubectl cannot hang the test."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lambda: lines.get(timeout=15)


@pytest.fixture(scope="module")
def kc(emulator: RunningEmulator) -> Path:
    """kubeconfig of an emulator with the Widget CRD applied by kubectl itself."""
    out = kubectl(emulator.kubeconfig, "apply", "-f", "-", input=yaml.safe_dump(widget_crd()))
    assert "customresourcedefinition.apiextensions.k8s.io/widgets.example.test created" \
        in out.stdout
    return emulator.kubeconfig


@pytest.fixture(scope="module")
def applied(kc: Path) -> Path:
    out = kubectl(kc, "apply", "-f", "-", input=WIDGET.replace("{size}", "3"))
    assert out.stdout.strip() == "widget.example.test/w1 created"
    return kc


def get(kc: Path, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(kubectl(kc, "get", *args, "-o", "json").stdout)
    return result


def test_apply_update_and_server_side(applied: Path) -> None:
    kc = applied
    out = kubectl(kc, "apply", "-f", "-", input=WIDGET.replace("{size}", "4"))
    assert out.stdout.strip() == "widget.example.test/w1 configured"
    obj = get(kc, "widget", "w1")
    assert obj["spec"]["size"] == 4 and obj["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in obj["metadata"]["annotations"]
    out = kubectl(kc, "apply", "--server-side", "-f", "-", input=WIDGET.replace("{size}", "5"))
    assert out.stdout.strip() == "widget.example.test/w1 serverside-applied"
    assert get(kc, "widgets.example.test", "w1")["spec"]["size"] == 5


def test_get_prints_columns_and_yaml(applied: Path) -> None:
    out = kubectl(applied, "get", "widgets").stdout.splitlines()
    assert out[0].split() == ["NAME", "SIZE", "COLOR", "READY", "AGE"]
    assert out[1].split()[:3] == ["w1", out[1].split()[1], "red"]
    wide = kubectl(applied, "get", "wid", "-o", "wide", "--show-labels").stdout
    assert "team=a" in wide
    doc = yaml.safe_load(kubectl(applied, "get", "widget/w1", "-o", "yaml").stdout)
    assert doc["kind"] == "Widget" and doc["spec"]["color"] == "red"
    cat = kubectl(applied, "get", "examples", "-o", "name").stdout  # the CRD's category
    assert cat.split() == ["widget.example.test/w1"]
    assert "widgets" in kubectl(applied, "api-resources", "--api-group=example.test").stdout


def test_patch_label_annotate(applied: Path) -> None:
    kc = applied
    kubectl(kc, "patch", "widget", "w1", "--type", "merge", "-p", '{"spec":{"color":"blue"}}')
    kubectl(kc, "patch", "widget", "w1", "--type", "json",
            "-p", '[{"op":"add","path":"/spec/tags","value":["x"]}]')
    kubectl(kc, "label", "widget", "w1", "tier=gold")
    kubectl(kc, "annotate", "widget", "w1", "note=hi")
    obj = get(kc, "widget", "w1")
    assert obj["spec"]["color"] == "blue" and obj["spec"]["tags"] == ["x"]
    assert obj["metadata"]["labels"] == {"team": "a", "tier": "gold"}
    assert obj["metadata"]["annotations"]["note"] == "hi"
    names = kubectl(kc, "get", "widgets", "-l", "tier=gold", "-o", "name").stdout.split()
    assert names == ["widget.example.test/w1"]


def test_rejected_objects(applied: Path) -> None:
    bad = kubectl(applied, "apply", "-f", "-", check=False,
                  input=WIDGET.replace("{size}", "0").replace("w1", "w-bad"))
    assert bad.returncode != 0
    assert 'The Widget "w-bad" is invalid: spec.size: Invalid value: 0: spec.size in body ' \
           "should be greater than or equal to 1" in bad.stderr
    immutable = kubectl(applied, "apply", "-f", "-", check=False,
                        input=WIDGET.replace("{size}", "5").replace("round", "square"))
    assert immutable.returncode != 0
    assert "spec.shape: Invalid value: \"string\": shape is immutable" in immutable.stderr
    unknown = kubectl(applied, "apply", "-f", "-", check=False,
                      input=WIDGET.replace("{size}", "5").replace("shape: round",
                                                                  "shape: round\n  bogus: 1"))
    assert unknown.returncode != 0
    assert 'strict decoding error: unknown field "spec.bogus"' in unknown.stderr


def test_explain(kc: Path) -> None:
    out = kubectl(kc, "explain", "widget.spec").stdout
    assert "KIND:       Widget" in out and "VERSION:    v1" in out
    assert "size\t<integer> -required-" in out and "How big the widget is." in out
    assert "enum: red, green, blue" in out
    deep = kubectl(kc, "explain", "widgets.spec.options.verbose").stdout
    assert "<boolean>" in deep


def test_describe_shows_events(applied: Path) -> None:
    kc = applied
    uid = get(kc, "widget", "w1")["metadata"]["uid"]
    event = {"apiVersion": "v1", "kind": "Event",
             "metadata": {"generateName": "w1-", "namespace": "default"},
             "involvedObject": {"apiVersion": "example.test/v1", "kind": "Widget",
                                "name": "w1", "namespace": "default", "uid": uid},
             "reason": "Provisioned", "message": "widget provisioned", "type": "Normal",
             "source": {"component": "tests"}, "count": 1,
             "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:00:00Z"}
    kubectl(kc, "create", "-f", "-", input=json.dumps(event))
    out = kubectl(kc, "describe", "widget", "w1").stdout
    assert "Name:         w1" in out
    events = out.split("Events:")[1]
    assert "Provisioned" in events and "widget provisioned" in events and "tests" in events
    listed = kubectl(kc, "get", "events").stdout
    assert "widget/w1" in listed and "Provisioned" in listed


def test_get_watch_receives_updates(applied: Path) -> None:
    kc = applied
    proc = kubectl_popen(kc, "get", "widget", "w1", "-w")
    readline = line_reader(proc)
    try:
        first = readline()
        second = readline()
        assert first.split() == ["NAME", "SIZE", "COLOR", "READY", "AGE"]
        size = second.split()[1]
        kubectl(kc, "patch", "widget", "w1", "--type", "merge",
                "-p", json.dumps({"spec": {"size": 7 if size != "7" else 8}}))
        update = readline().split()
        assert update[0] == "w1" and update[1] in ("7", "8")
    finally:
        proc.terminate()
        proc.wait(10)


def test_wait_for_ready_condition(applied: Path) -> None:
    kc = applied
    proc = kubectl_popen(kc, "wait", "--for=condition=Ready", "widget/w1", "--timeout=20s")
    try:
        time.sleep(0.5)
        assert proc.poll() is None  # still waiting
        generation = get(kc, "widget", "w1")["metadata"]["generation"]
        kubectl(kc, "patch", "widget", "w1", "--subresource=status", "--type", "merge", "-p",
                json.dumps({"status": {"conditions": [{
                    "type": "Ready", "status": "True", "reason": "Done", "message": "ok",
                    "observedGeneration": generation,
                    "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}))
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert out.strip() == "widget.example.test/w1 condition met"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    table = kubectl(kc, "get", "widget", "w1", "--no-headers").stdout.split()
    assert table[3] == "True"  # the READY printer column


def test_delete_waits_for_finalizer(kc: Path) -> None:
    kubectl(kc, "apply", "-f", "-", input="apiVersion: example.test/v1\nkind: Widget\n"
            "metadata:\n  name: doomed\n  finalizers: [example.test/hold]\nspec:\n  size: 1\n")
    proc = kubectl_popen(kc, "delete", "widget", "doomed", "--timeout=30s")
    try:
        until(lambda: get(kc, "widget", "doomed")["metadata"].get("deletionTimestamp"))
        assert proc.poll() is None  # kubectl waits for the object to go away
        kubectl(kc, "patch", "widget", "doomed", "--type", "json",
                "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert 'widget.example.test "doomed" deleted' in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    gone = kubectl(kc, "get", "widget", "doomed", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_builtins_apply_and_namespaces(kc: Path) -> None:
    manifests = """\
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: team-a}
stringData: {apiKey: kro_abc}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: op, namespace: team-a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "cube-operator:manager"}
rules: [{apiGroups: [""], resources: [events], verbs: [create]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: op, namespace: team-a}
spec:
  selector: {matchLabels: {app: op}}
  template:
    metadata: {labels: {app: op}}
    spec: {containers: [{name: op, image: "op:1", env: [{name: A, value: "1"}]}]}
"""
    out = kubectl(kc, "apply", "-f", "-", input=manifests).stdout
    assert "namespace/team-a created" in out and "deployment.apps/op created" in out
    updated = manifests.replace('image: "op:1"', 'image: "op:2"')
    out = kubectl(kc, "apply", "-f", "-", input=updated).stdout
    assert "deployment.apps/op configured" in out and "serviceaccount/op unchanged" in out
    dep = get(kc, "deployment", "op", "-n", "team-a")
    assert dep["spec"]["template"]["spec"]["containers"] == [
        {"name": "op", "image": "op:2", "env": [{"name": "A", "value": "1"}]}]
    secret = get(kc, "secret", "creds", "-n", "team-a")
    assert "stringData" not in secret and secret["data"]["apiKey"] == "a3JvX2FiYw=="
    out = kubectl(kc, "delete", "namespace", "team-a", "--timeout=20s").stdout
    assert 'namespace "team-a" deleted' in out
    assert kubectl(kc, "get", "ns", "team-a", check=False).returncode != 0


def test_imperative_create_with_protobuf_bodies(kc: Path) -> None:
    # kubectl's typed clients send application/vnd.kubernetes.protobuf request bodies.
    kubectl(kc, "create", "namespace", "imperative")
    kubectl(kc, "create", "secret", "generic", "creds", "-n", "imperative",
            "--from-literal=apiKey=kro_123")
    kubectl(kc, "create", "configmap", "cfg", "-n", "imperative", "--from-literal=a=b")
    kubectl(kc, "create", "serviceaccount", "op", "-n", "imperative")
    kubectl(kc, "create", "role", "reader", "-n", "imperative", "--verb=get,list",
            "--resource=configmaps")
    kubectl(kc, "create", "rolebinding", "reader", "-n", "imperative", "--role=reader",
            "--serviceaccount=imperative:op")
    secret = get(kc, "secret", "creds", "-n", "imperative")
    assert secret["type"] == "Opaque" and secret["data"] == {"apiKey": "a3JvXzEyMw=="}
    assert "generateName" not in secret["metadata"]
    assert get(kc, "configmap", "cfg", "-n", "imperative")["data"] == {"a": "b"}
    role = get(kc, "role", "reader", "-n", "imperative")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"],
                              "verbs": ["get", "list"]}]
    binding = get(kc, "rolebinding", "reader", "-n", "imperative")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "reader"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "op",
                                    "namespace": "imperative"}]
    ns = get(kc, "namespace", "imperative")
    assert ns["status"]["phase"] == "Active"


def test_kubectl_cache_dir_and_server_version(kc: Path) -> None:
    # kubectl uses its own cache dir next to the kubeconfig, never the user's home.
    assert (kc.parent / ".kube-cache").is_dir()
    done = subprocess.run(["/usr/bin/kubectl", "version", f"--kubeconfig={kc}", "-o", "json"],
                          capture_output=True, text=True, check=True, timeout=30)
    assert json.loads(done.stdout)["serverVersion"]["gitVersion"] == "v1.32.0"
