"""The rendered chart and deploy/manifests, applied with the real /usr/bin/kubectl to the
Kubernetes API emulator (src/kubeapi): what a user's first `kubectl apply` does."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_helpers import MANIFESTS, NAMESPACE, Obj, key

from kubeapi.testing import RunningEmulator, kubectl, running_emulator

# A ServiceMonitor CRD as the Prometheus Operator serves it (trimmed to a preserving
# schema): on a real cluster it comes with the Prometheus Operator, not with this chart.
SERVICE_MONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {"kind": "ServiceMonitor", "listKind": "ServiceMonitorList",
                  "plural": "servicemonitors", "singular": "servicemonitor", "shortNames": ["smon"]},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {"type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True}},
            }},
        }],
    },
}


class Cluster:
    def __init__(self, emulator: RunningEmulator) -> None:
        self.emulator = emulator
        self.kubeconfig = emulator.kubeconfig

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return kubectl(self.kubeconfig, *args, input=input).stdout

    def apply(self, objs: list[Obj] | None = None, *args: str) -> str:
        text = yaml.safe_dump_all(objs) if objs is not None else None
        return self.kubectl("apply", "--server-side", *(args or ("-f", "-")), input=text)

    def install(self, objs: list[Obj], namespaces: list[str]) -> None:
        """CRDs first (and wait until they are served), then namespaces, then the rest,
        as `helm install` orders them."""
        crds = [o for o in objs if o["kind"] == "CustomResourceDefinition"]
        self.apply(crds)
        self.kubectl("wait", "--for", "condition=Established", "--timeout", "30s",
                     *[f"crd/{c['metadata']['name']}" for c in crds])
        self.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                    for ns in namespaces])
        out = self.apply([o for o in objs if o["kind"] != "CustomResourceDefinition"])
        assert "serverside-applied" in out

    def live(self, objs: list[Obj]) -> dict[tuple[str, str, str], Obj]:
        """The server's copies of `objs`, by key."""
        out = yaml.safe_load(self.kubectl("get", "-f", "-", "-o", "yaml",
                                          input=yaml.safe_dump_all(objs)))
        items = out["items"] if out.get("kind") == "List" else [out]
        return {key(o): o for o in items}

    def failed_requests(self) -> list[Any]:
        """Requests the emulator answered with 5xx (4xx are kubectl's normal probing:
        a GET before a create answers 404)."""
        return [r for r in self.emulator.request_log if r.status >= 500]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_emulator(tmp_path / "emulator") as emulator:
        c = Cluster(emulator)
        yield c
        assert not c.failed_requests(), c.failed_requests()


def assert_contained(expected: Any, actual: Any, where: str = "") -> None:
    """Every field of `expected` is in `actual` with the same value (the server may add
    defaults and metadata, but must keep everything that was applied)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not a mapping"
        for k, v in expected.items():
            assert k in actual, f"{where}.{k} missing on the server"
            assert_contained(v, actual[k], f"{where}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (
            f"{where}: {actual!r} != {expected!r}")
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_contained(e, a, f"{where}[{i}]")
    else:
        assert actual == expected, f"{where}: server has {actual!r}, applied {expected!r}"


def assert_served(cluster: Cluster, objs: list[Obj]) -> None:
    workload = [o for o in objs if o["kind"] not in ("CustomResourceDefinition",)]
    live = cluster.live(workload)
    assert set(live) == {key(o) for o in workload}
    for obj in workload:
        served = live[key(obj)]
        assert served["metadata"].get("uid") and served["metadata"].get("resourceVersion")
        for field in ("spec", "rules", "roleRef", "subjects"):
            if field in obj:
                assert_contained(obj[field], served[field], f"{obj['kind']}/{field}")
        assert_contained(obj["metadata"].get("labels", {}), served["metadata"].get("labels", {}),
                         f"{obj['kind']}/labels")


def test_chart_defaults_apply(cluster, render):
    objs = render("--include-crds")
    cluster.install(objs, [NAMESPACE])
    assert_served(cluster, objs)
    # The peering object is cluster-scoped on the server too.
    peering = yaml.safe_load(cluster.kubectl("get", "clusterkopfpeering", "cube-operator",
                                             "-o", "yaml"))
    assert "namespace" not in peering["metadata"]
    # Applying the same again is accepted and changes nothing the chart set.
    cluster.apply([o for o in objs if o["kind"] != "CustomResourceDefinition"])
    assert_served(cluster, objs)


def test_chart_non_default_values_apply(cluster, render, tmp_path):
    values = {
        "replicas": 2,
        "watchNamespaces": ["team-a", "team-b"],
        "logFormat": "json",
        "webhookReceiver": {"ingress": {"enabled": True, "className": "nginx",
                                        "tls": [{"secretName": "hooks-tls",
                                                 "hosts": ["cube-operator-webhooks.example.com"]}]}},
        "metrics": {"serviceMonitor": {"enabled": True}},
    }
    objs = render("--include-crds", values=values, tmp_path=tmp_path)
    kinds = {o["kind"] for o in objs}
    assert {"PodDisruptionBudget", "Ingress", "ServiceMonitor", "Role", "KopfPeering"} <= kinds
    cluster.install([SERVICE_MONITOR_CRD, *objs], [NAMESPACE, "team-a", "team-b"])
    assert_served(cluster, objs)
    roles = cluster.kubectl("get", "roles,rolebindings,kopfpeerings", "-A", "-o", "name")
    assert roles.count("role.rbac.authorization.k8s.io/cube-operator") == 2
    assert roles.count("kopfpeering.kopf.dev/cube-operator") == 2


def test_manifests_apply_with_kustomize(cluster, kustomize):
    cluster.apply(None, "-k", str(MANIFESTS / "crds"))
    crds = kustomize(MANIFESTS / "crds")
    cluster.kubectl("wait", "--for", "condition=Established", "--timeout", "30s",
                    *[f"crd/{c['metadata']['name']}" for c in crds])
    out = cluster.apply(None, "-k", str(MANIFESTS))
    assert "namespace/cube-operator-system serverside-applied" in out
    objs = kustomize(MANIFESTS)
    assert_served(cluster, [o for o in objs if o["kind"] != "Namespace"])
    namespaces = cluster.kubectl("get", "namespaces", "-o", "name").split()
    assert f"namespace/{NAMESPACE}" in namespaces
    deployment = yaml.safe_load(cluster.kubectl("get", "deployment", "cube-operator", "-n",
                                                NAMESPACE, "-o", "yaml"))
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "cube-operator"


def test_manifests_and_chart_produce_the_same_cluster(tmp_path, render, kustomize):
    """Installing either way gives the same objects, fields and all, Helm's own labels aside."""
    served: list[dict[tuple[str, str, str], Obj]] = []
    for how in ("chart", "manifests"):
        with running_emulator(tmp_path / how) as emulator:
            cluster = Cluster(emulator)
            if how == "chart":
                objs = render("--include-crds")
                cluster.install(objs, [NAMESPACE])
            else:
                objs = kustomize(MANIFESTS)
                cluster.apply(None, "-k", str(MANIFESTS / "crds"))
                cluster.kubectl("wait", "--for", "condition=Established", "--timeout", "30s",
                                "crd", "--all")
                cluster.apply(None, "-k", str(MANIFESTS))
            objs = [o for o in objs if o["kind"] not in ("CustomResourceDefinition", "Namespace")]
            served.append({k: _comparable(v) for k, v in cluster.live(objs).items()})
    chart, manifests = served
    assert chart.keys() == manifests.keys()
    for k in chart:
        assert chart[k] == manifests[k], k


def _comparable(obj: Obj) -> Obj:
    obj = dict(obj)
    meta = {k: v for k, v in obj["metadata"].items()
            if k not in ("uid", "resourceVersion", "creationTimestamp", "managedFields",
                         "generation", "annotations")}
    meta["labels"] = {k: v for k, v in meta.get("labels", {}).items()
                      if k not in ("helm.sh/chart", "app.kubernetes.io/managed-by")}
    obj["metadata"] = meta
    obj.pop("status", None)
    if obj["kind"] == "Service":  # addresses are allocated per cluster
        obj["spec"] = {k: v for k, v in obj["spec"].items() if k not in ("clusterIP", "clusterIPs")}
    return obj

