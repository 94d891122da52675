"""The Helm chart, linted and rendered by the real helm v4 binary."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_helpers import CHART, KINDS, NAMESPACE, PLURALS, RELEASE, Obj, by_kind, key, one

OWN_RESOURCES = sorted(PLURALS.values())
SA = {"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}


def rules_of(role: Obj) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples a Role/ClusterRole grants."""
    out = set()
    for rule in role["rules"]:
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs")
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), f"wildcard in {rule}"
                    out.add((group, resource, verb))
    return out


def grants(group: str, resources: list[str], verbs: list[str]) -> set[tuple[str, str, str]]:
    return {(group, r, v) for r in resources for v in verbs}


NAMESPACED_GRANTS = (
    grants("cube-operator.io", OWN_RESOURCES, ["get", "list", "watch", "patch"])
    | grants("cube-operator.io", [f"{r}/status" for r in OWN_RESOURCES], ["patch"])
    | grants("", ["secrets"], ["get", "watch", "create", "patch"])
    | grants("", ["events"], ["create", "patch"])
)
CLUSTER_GRANTS = (
    grants("", ["namespaces"], ["list", "watch"])
    | grants("apiextensions.k8s.io", ["customresourcedefinitions"], ["list", "watch"])
)


def container(objs: list[Obj]) -> dict[str, Any]:
    deployment = one(objs, "Deployment", RELEASE)
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c


def test_chart_metadata():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "cube-operator"
    assert chart["type"] == "application"
    assert chart["appVersion"]
    json.loads((CHART / "values.schema.json").read_text())


def test_helm_lint_is_clean(helm):
    for extra in ([], ["--set", "replicas=2", "--set", "watchNamespaces={team-a,team-b}",
                       "--set", "webhookReceiver.ingress.enabled=true",
                       "--set", "metrics.serviceMonitor.enabled=true"]):
        result = subprocess.run([str(helm), "lint", str(CHART), "--strict", *extra],
                                capture_output=True, text=True, timeout=120, check=False)
        out = result.stdout + result.stderr
        assert result.returncode == 0, out
        assert "0 chart(s) failed" in out
        assert "[WARNING]" not in out and "[ERROR]" not in out, out


def test_defaults_render_the_cluster_wide_operator(render):
    objs = render()
    assert sorted(key(o) for o in objs) == sorted([
        ("ServiceAccount", NAMESPACE, RELEASE),
        ("ClusterRole", "", RELEASE),
        ("ClusterRoleBinding", "", RELEASE),
        ("Service", NAMESPACE, f"{RELEASE}-metrics"),
        ("Service", NAMESPACE, f"{RELEASE}-webhooks"),
        ("Deployment", NAMESPACE, RELEASE),
        ("ClusterKopfPeering", "", "cube-operator"),
    ])
    for obj in objs:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "cube-operator"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["helm.sh/chart"] == "cube-operator-0.1.0"


def test_default_rbac_is_least_privilege(render):
    objs = render()
    role = one(objs, "ClusterRole", RELEASE)
    peering = grants("kopf.dev", ["clusterkopfpeerings"], ["get", "list", "watch", "patch"])
    assert rules_of(role) == NAMESPACED_GRANTS | CLUSTER_GRANTS | peering
    binding = one(objs, "ClusterRoleBinding", RELEASE)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": RELEASE}
    assert binding["subjects"] == [SA]
    # Never delete anything (a deleted Cube's dependents go by the garbage collector, through
    # their ownerReferences), never touch pods or workloads.
    verbs = {v for _, _, v in rules_of(role)}
    assert "delete" not in verbs and "deletecollection" not in verbs


def test_default_deployment(render):
    objs = render()
    deployment = one(objs, "Deployment", RELEASE)
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    pod = spec["template"]["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert pod["serviceAccountName"] == RELEASE
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    c = container(objs)
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert c["image"] == f"ghcr.io/cube-operator/cube-operator:{chart['appVersion']}"
    assert c["imagePullPolicy"] == "IfNotPresent"
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["args"] == [
        "--liveness-port=8080", "--metrics-port=9090", "--webhook-port=8443",
        "--log-format=text", "--log-level=info", "--poll-interval=30",
        "--peering=cube-operator",
    ]
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"healthz": 8080, "metrics": 9090, "webhooks": 8443}
    for probe in ("livenessProbe", "readinessProbe"):
        get = c[probe]["httpGet"]
        assert get["path"] == "/healthz"
        assert ports[get["port"]] == 8080
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    assert c["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"][0]["name"] == "tmp" and "emptyDir" in pod["volumes"][0]
    for absent in ("nodeSelector", "tolerations", "affinity", "imagePullSecrets"):
        assert absent not in pod


def test_services_select_the_operator_pods(render):
    objs = render()
    pod_labels = one(objs, "Deployment", RELEASE)["spec"]["template"]["metadata"]["labels"]
    c = container(objs)
    named_ports = {p["name"] for p in c["ports"]}
    for name, port in ((f"{RELEASE}-metrics", 9090), (f"{RELEASE}-webhooks", 8443)):
        svc = one(objs, "Service", name)
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        (p,) = svc["spec"]["ports"]
        assert p["port"] == port and p["targetPort"] in named_ports


def test_no_optional_objects_by_default(render):
    objs = render()
    for kind in ("PodDisruptionBudget", "Ingress", "ServiceMonitor", "Role", "RoleBinding",
                 "KopfPeering"):
        assert not by_kind(objs, kind), kind


NON_DEFAULT = {
    "replicas": 2,
    "watchNamespaces": ["team-a", "team-b"],
    "logFormat": "json",
    "logLevel": "debug",
    "pollInterval": 15,
    "image": {"tag": "1.2.3", "pullPolicy": "Always"},
    "webhookReceiver": {"ingress": {
        "enabled": True,
        "className": "nginx",
        "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
        "hosts": [{"host": "hooks.example.org", "paths": [{"path": "/webhooks"}]}],
        "tls": [{"secretName": "hooks-tls", "hosts": ["hooks.example.org"]}],
    }},
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                            "labelSelector": {"matchLabels": {
                                                "app.kubernetes.io/name": "cube-operator"}}}}]}},
}


@pytest.fixture(scope="module")
def non_default(render, tmp_path_factory) -> list[Obj]:
    return render(values=NON_DEFAULT, tmp_path=tmp_path_factory.mktemp("values"))


def test_non_default_objects(non_default):
    assert sorted(key(o) for o in non_default) == sorted([
        ("ServiceAccount", NAMESPACE, RELEASE),
        ("ClusterRole", "", f"{RELEASE}-cluster"),
        ("ClusterRoleBinding", "", f"{RELEASE}-cluster"),
        ("Role", "team-a", RELEASE),
        ("Role", "team-b", RELEASE),
        ("RoleBinding", "team-a", RELEASE),
        ("RoleBinding", "team-b", RELEASE),
        ("KopfPeering", "team-a", "cube-operator"),
        ("KopfPeering", "team-b", "cube-operator"),
        ("Service", NAMESPACE, f"{RELEASE}-metrics"),
        ("Service", NAMESPACE, f"{RELEASE}-webhooks"),
        ("Deployment", NAMESPACE, RELEASE),
        ("PodDisruptionBudget", NAMESPACE, RELEASE),
        ("Ingress", NAMESPACE, f"{RELEASE}-webhooks"),
        ("ServiceMonitor", NAMESPACE, RELEASE),
    ])


def test_watch_namespaces_get_one_role_each(non_default):
    cluster_role = one(non_default, "ClusterRole", f"{RELEASE}-cluster")
    assert rules_of(cluster_role) == CLUSTER_GRANTS
    peering = grants("kopf.dev", ["kopfpeerings"], ["get", "list", "watch", "patch"])
    for ns in ("team-a", "team-b"):
        role = next(o for o in by_kind(non_default, "Role") if o["metadata"]["namespace"] == ns)
        assert rules_of(role) == NAMESPACED_GRANTS | peering
        binding = next(o for o in by_kind(non_default, "RoleBinding")
                       if o["metadata"]["namespace"] == ns)
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert binding["subjects"] == [SA]


def test_non_default_deployment(non_default):
    deployment = one(non_default, "Deployment", RELEASE)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    c = container(non_default)
    assert c["image"] == "ghcr.io/cube-operator/cube-operator:1.2.3"
    assert c["imagePullPolicy"] == "Always"
    assert c["args"] == [
        "--namespace=team-a", "--namespace=team-b",
        "--liveness-port=8080", "--metrics-port=9090", "--webhook-port=8443",
        "--log-format=json", "--log-level=debug", "--poll-interval=15",
        "--webhook-public-url=https://hooks.example.org",
        "--peering=cube-operator",
    ]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == NON_DEFAULT["nodeSelector"]
    assert pod["tolerations"] == NON_DEFAULT["tolerations"]
    assert pod["affinity"] == NON_DEFAULT["affinity"]


def test_pdb_when_replicated(non_default):
    pdb = one(non_default, "PodDisruptionBudget", RELEASE)
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    pod_labels = one(non_default, "Deployment", RELEASE)["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_ingress_routes_to_the_webhook_receiver(non_default):
    ingress = one(non_default, "Ingress", f"{RELEASE}-webhooks")
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"secretName": "hooks-tls", "hosts": ["hooks.example.org"]}]
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    (rule,) = spec["rules"]
    assert rule["host"] == "hooks.example.org"
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/webhooks" and path["pathType"] == "Prefix"
    svc = one(non_default, "Service", f"{RELEASE}-webhooks")
    assert path["backend"]["service"] == {"name": svc["metadata"]["name"],
                                          "port": {"number": svc["spec"]["ports"][0]["port"]}}


def test_service_monitor_scrapes_the_metrics_service(non_default):
    sm = one(non_default, "ServiceMonitor", RELEASE)
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prom"
    svc = one(non_default, "Service", f"{RELEASE}-metrics")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    # ...and only it: the webhook Service does not match.
    webhooks = one(non_default, "Service", f"{RELEASE}-webhooks")
    assert not sm["spec"]["selector"]["matchLabels"].items() <= webhooks["metadata"]["labels"].items()
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == svc["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def test_standalone_without_ha(render, tmp_path):
    objs = render(values={"ha": {"enabled": False}}, tmp_path=tmp_path)
    assert "--standalone" in container(objs)["args"]
    assert not any(a.startswith("--peering") for a in container(objs)["args"])
    assert one(objs, "Deployment", RELEASE)["spec"]["strategy"]["type"] == "Recreate"
    assert not by_kind(objs, "ClusterKopfPeering") and not by_kind(objs, "KopfPeering")
    role = one(objs, "ClusterRole", RELEASE)
    assert rules_of(role) == NAMESPACED_GRANTS | CLUSTER_GRANTS


def test_image_digest_and_release_name(render, tmp_path, helm):
    digest = "sha256:" + "ab" * 32
    objs = render(values={"image": {"digest": digest}}, tmp_path=tmp_path)
    assert container(objs)["image"] == f"ghcr.io/cube-operator/cube-operator@{digest}"
    out = subprocess.run([str(helm), "template", "ops", str(CHART), "-n", "ops"],
                         capture_output=True, text=True, check=True).stdout
    names = {o["metadata"]["name"] for o in yaml.safe_load_all(out) if o}
    assert "ops-cube-operator" in names and "ops-cube-operator-metrics" in names


def test_replicas_without_ha_are_refused(render, tmp_path):
    result = render.run(values={"replicas": 2, "ha": {"enabled": False}}, tmp_path=tmp_path,
                        check=False)
    assert result.returncode != 0
    assert "replicas > 1 needs ha.enabled=true" in result.stderr


@pytest.mark.parametrize("values, complaint", [
    ({"logFormat": "xml"}, "/logFormat"),
    ({"logLevel": "verbose"}, "/logLevel"),
    ({"pollInterval": 0}, "/pollInterval"),
    ({"replicas": "two"}, "/replicas"),
    ({"watchNamespaces": ["Team_A"]}, "/watchNamespaces/0"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"metrics": {"serviceMonitor": {"interval": "often"}}}, "/metrics/serviceMonitor/interval"),
    ({"replica": 2}, "replica"),
])
def test_schema_rejects_bad_values(render, tmp_path, values, complaint):
    result = render.run(values=values, tmp_path=tmp_path, check=False)
    assert result.returncode != 0
    assert "schema" in result.stderr and complaint in result.stderr, result.stderr


def test_crds_are_in_the_chart(render):
    """`helm template --include-crds` carries every kind's CRD and kopf's peering CRDs."""
    crds = {o["metadata"]["name"]: o for o in render("--include-crds")
            if o["kind"] == "CustomResourceDefinition"}
    assert {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"} <= crds.keys()
    assert crds["clusterkopfpeerings.kopf.dev"]["spec"]["scope"] == "Cluster"
    assert crds["kopfpeerings.kopf.dev"]["spec"]["scope"] == "Namespaced"
    own = {n for n in crds if n.endswith(".cube-operator.io")}
    assert own == {f"{PLURALS[k]}.cube-operator.io" for k in KINDS}


@pytest.mark.parametrize("values, expected", [
    ({"webhookReceiver": {"publicURL": "https://hooks.example.net/"}},
     "--webhook-public-url=https://hooks.example.net"),
    ({"webhookReceiver": {"ingress": {"enabled": True, "hosts": [
        {"host": "h.example.org", "paths": [{"path": "/webhooks"}]}]}}},
     "--webhook-public-url=http://h.example.org"),
    ({}, None),
])
def test_webhook_public_url(render, tmp_path, values, expected):
    args = container(render(values=values, tmp_path=tmp_path))["args"]
    found = [a for a in args if a.startswith("--webhook-public-url")]
    assert found == ([expected] if expected else [])


@pytest.mark.parametrize("values", [{}, NON_DEFAULT, {"ha": {"enabled": False}}],
                         ids=["defaults", "non-default", "standalone"])
def test_rendered_args_are_accepted_by_the_operator_cli(render, tmp_path, values):
    """The Deployment's args, given to the real `cube-operator run` entry point: every flag
    is one it lists, and argparse checks each value before it reaches the trailing --help
    (which it would not do for unknown flags, hence the first check)."""
    args = container(render(values=values, tmp_path=tmp_path))["args"]
    exe = Path(sys.executable).with_name("cube-operator")
    assert exe.exists(), f"{exe}: the project is not installed in this venv"
    usage = subprocess.run([str(exe), "run", "--help"], capture_output=True, text=True,
                           timeout=60, check=True).stdout
    known = set(re.findall(r"(--[a-z][a-z-]*)", usage))
    for arg in args:
        assert arg.split("=", 1)[0] in known, f"{arg}: not an option of cube-operator run"
    result = subprocess.run([str(exe), "run", *args, "--help"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_webhook_tls_mounts_the_secret_and_passes_both_files(render, tmp_path):
    objs = render(values={"webhookReceiver": {"tls": {"secretName": "receiver-tls"}}}, tmp_path=tmp_path)
    c = container(objs)
    assert "--webhook-tls-cert=/etc/cube-operator/webhook-tls/tls.crt" in c["args"]
    assert "--webhook-tls-key=/etc/cube-operator/webhook-tls/tls.key" in c["args"]
    mount = next(m for m in c["volumeMounts"] if m["name"] == "webhook-tls")
    assert mount["mountPath"] == "/etc/cube-operator/webhook-tls" and mount["readOnly"] is True
    volumes = one(objs, "Deployment", RELEASE)["spec"]["template"]["spec"]["volumes"]
    assert next(v for v in volumes if v["name"] == "webhook-tls")["secret"]["secretName"] == "receiver-tls"
    plain = container(render(values={}, tmp_path=tmp_path))
    assert not any(a.startswith("--webhook-tls") for a in plain["args"])
    exe = Path(sys.executable).with_name("cube-operator")
    lone = subprocess.run([str(exe), "run", "--webhook-tls-cert", "/x.crt"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert lone.returncode == 2 and "go together" in lone.stderr
