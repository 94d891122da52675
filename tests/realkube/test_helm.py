"""The Helm chart's life cycle on a real kube-apiserver (.tools/bin/realkube, built by
`make tools`): `helm install`, `helm upgrade` with changed values, `helm rollback` and
`helm uninstall` of deploy/helm/cube-operator with the real helm v4 (.tools/bin/helm).

After every step the objects in the API server are compared with what `helm template`
renders for the same values: the Deployment (every rendered field, with the server's
defaults on top), the ServiceAccount, the ClusterRole/ClusterRoleBinding (and what they
really grant, through the API server's RBAC authorizer: `kubectl auth can-i --as`), the
ClusterKopfPeering, the Services, the PodDisruptionBudget (only with replicas > 1), the
CRDs of crds/ (installed and Established, left in place by uninstall) and the revisions
of `helm history`.

No kubelet or controller-manager runs: no pod ever starts, so nothing waits for a rollout."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.realkube import (
    HELM,
    REALKUBE,
    RealKube,
    helm,
    kubectl,
    kubectl_json,
    running_realkube,
    sa_username,
)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "cube-operator"
RELEASE = "cube-operator"
NAMESPACE = "cube-operator-system"
FULLNAME = "cube-operator"  # the release name contains the chart name
OPERATOR = sa_username(NAMESPACE, FULLNAME)
# The upgrade: values the chart exposes (values.yaml), each visible in the Deployment.
UPGRADE = ("--set", "logLevel=debug", "--set", "replicas=2",
           "--set", "resources.limits.memory=512Mi")

Obj = dict[str, Any]


def require_tools() -> None:
    for tool in (REALKUBE, HELM):
        if not tool.exists():
            pytest.fail(f"{tool} is missing: run `make tools` (scripts/install-test-tools.sh; "
                        "realkube needs Go on PATH and builds testbed/realkube)")


def render(kube: RealKube, home: Path, *args: str) -> list[Obj]:
    out = helm(kube, home, "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
               *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def rendered(docs: list[Obj], kind: str) -> Obj:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


def mismatches(want: Any, got: Any, path: str = "") -> list[str]:
    """Where ``got`` (the live object) differs from ``want`` (the rendered one): every
    rendered field must be there with the same value; fields the server defaulted on
    top (strategy parameters, dnsPolicy, apiVersion of a fieldRef...) are fine."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path or '.'}: {got!r} is not a mapping"]
        return [m for k, v in want.items()
                for m in (mismatches(v, got[k], f"{path}.{k}") if k in got
                          else [f"{path}.{k}: missing (rendered {v!r})"])]
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{path}: {got!r} != rendered {want!r}"]
        return [m for i, (w, g) in enumerate(zip(want, got, strict=True))
                for m in mismatches(w, g, f"{path}[{i}]")]
    return [] if want == got else [f"{path}: {got!r} != rendered {want!r}"]


def history(kube: RealKube, home: Path) -> list[tuple[int, str, str]]:
    out = helm(kube, home, "history", RELEASE, "-n", NAMESPACE, "-o", "json").stdout
    return [(r["revision"], r["status"], r["description"]) for r in json.loads(out)]


def deployed_values(kube: RealKube, home: Path) -> Obj:
    out = helm(kube, home, "get", "values", RELEASE, "-n", NAMESPACE, "-o", "json").stdout
    return json.loads(out) or {}


def can_i(kube: RealKube, verb: str, resource: str, namespace: str | None = None) -> bool:
    """The API server's own answer (a SubjectAccessReview as the operator's ServiceAccount)."""
    args = ["auth", "can-i", verb, resource, f"--as={OPERATOR}"]
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    result = kubectl(kube, *args, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl {' '.join(args)}: {answer!r} {result.stderr}"
    return answer == "yes"


def granted(kube: RealKube) -> set[tuple[str, str]]:
    """(resource.group, verb) the operator's ServiceAccount may do, as the authorizer says
    (`kubectl auth can-i --list`, a SelfSubjectRulesReview as the ServiceAccount)."""
    out = kubectl(kube, "auth", "can-i", "--list", f"--as={OPERATOR}", "-n", "team-a").stdout
    pairs: set[tuple[str, str]] = set()
    for line in out.splitlines()[1:]:
        if line.lstrip().startswith("["):
            continue  # a non-resource URL (system:discovery, system:public-info-viewer)
        match = re.match(r"^(\S+)\s+\[(.*?)\]\s+\[(.*?)\]\s+\[(.*)\]\s*$", line)
        assert match, f"unexpected line of kubectl auth can-i --list: {line!r}"
        resource, urls, names, verbs = match.groups()
        if urls or names:
            continue  # by-name grants (none in the chart)
        pairs |= {(resource, verb) for verb in verbs.split()}
    return pairs


def qualified(resource: str, group: str) -> str:
    """How kubectl names it: cubes/status in cube-operator.io -> cubes.cube-operator.io/status."""
    plural, slash, sub = resource.partition("/")
    return f"{plural}.{group}{slash}{sub}" if group else resource


def group_of(name: str) -> str:
    return name.partition("/")[0].partition(".")[2]


def rule_pairs(role: Obj) -> set[tuple[str, str]]:
    return {(qualified(res, group), verb)
            for rule in role["rules"] for group in rule["apiGroups"]
            for res in rule["resources"] for verb in rule["verbs"]}


def check_release(kube: RealKube, home: Path, docs: list[Obj], revision: int) -> Obj:
    """The objects of ``docs`` (helm template with this revision's values) are live and
    match; returns the live Deployment."""
    live = kubectl_json(kube, "deployment", FULLNAME, "-n", NAMESPACE)
    assert live, f"Deployment {FULLNAME} missing after revision {revision}"
    want = rendered(docs, "Deployment")
    diff = mismatches(want["spec"], live["spec"], ".spec")
    diff += mismatches(want["metadata"]["labels"], live["metadata"]["labels"], ".labels")
    assert not diff, f"revision {revision}: live Deployment differs from the chart:\n" + \
        "\n".join(diff)
    assert live["metadata"]["annotations"]["meta.helm.sh/release-name"] == RELEASE
    assert live["metadata"]["annotations"]["meta.helm.sh/release-namespace"] == NAMESPACE
    assert live["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    # No controller-manager: the Deployment is stored, never rolled out.
    assert not (live.get("status") or {}).get("readyReplicas")

    sa = kubectl_json(kube, "serviceaccount", FULLNAME, "-n", NAMESPACE)
    assert sa and sa["automountServiceAccountToken"] is True
    assert live["spec"]["template"]["spec"]["serviceAccountName"] == FULLNAME

    role = kubectl_json(kube, "clusterrole", FULLNAME)
    assert role, "ClusterRole missing"
    assert rule_pairs(role) == rule_pairs(rendered(docs, "ClusterRole"))
    binding = kubectl_json(kube, "clusterrolebinding", FULLNAME)
    assert binding and binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                              "kind": "ClusterRole", "name": FULLNAME}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME,
                                    "namespace": NAMESPACE}]
    assert kubectl_json(kube, "clusterkopfpeering", "cube-operator"), "peering object missing"
    for service in (f"{FULLNAME}-metrics", f"{FULLNAME}-webhooks"):
        want_svc = next(d for d in docs if d["kind"] == "Service"
                        and d["metadata"]["name"] == service)
        got_svc = kubectl_json(kube, "service", service, "-n", NAMESPACE)
        assert got_svc, f"Service {service} missing"
        assert not mismatches(want_svc["spec"], got_svc["spec"]), (service, got_svc["spec"])
        assert got_svc["spec"]["clusterIP"].startswith("10.0.0.")  # allocated by the server

    pdb = kubectl_json(kube, "poddisruptionbudget", FULLNAME, "-n", NAMESPACE)
    if live["spec"]["replicas"] > 1:
        assert pdb and pdb["spec"]["minAvailable"] == 1
    else:
        assert pdb is None, "a PodDisruptionBudget with one replica"

    # What every kind of the chart renders is there, and nothing of another release.
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(["ClusterKopfPeering", "ClusterRole", "ClusterRoleBinding",
                            "Deployment", "Service", "Service", "ServiceAccount"]
                           + (["PodDisruptionBudget"] if live["spec"]["replicas"] > 1 else []))
    manifest = helm(kube, home, "get", "manifest", RELEASE, "-n", NAMESPACE).stdout
    assert sorted(d["kind"] for d in yaml.safe_load_all(manifest) if d) == kinds
    return live


def crd_names() -> list[str]:
    return sorted(yaml.safe_load(p.read_text())["metadata"]["name"]
                  for p in (CHART / "crds").glob("*.yaml"))


def check_crds(kube: RealKube, created: dict[str, str] | None = None) -> dict[str, str]:
    """Every CRD of crds/ is there and Established; returns name -> uid (the same uids
    after an upgrade, a rollback and an uninstall: Helm never touches them again)."""
    listed = kubectl_json(kube, "crd")["items"]
    live = {c["metadata"]["name"]: c for c in listed}
    missing = sorted(set(crd_names()) - set(live))
    assert not missing, f"CRDs of crds/ not installed: {missing}"
    for name in crd_names():
        conditions = {c["type"]: c["status"] for c in live[name]["status"].get("conditions", [])}
        assert conditions.get("Established") == "True", (name, conditions)
        assert conditions.get("NamesAccepted") == "True", (name, conditions)
    uids = {name: live[name]["metadata"]["uid"] for name in crd_names()}
    if created is not None:
        assert uids == created, "a CRD was deleted and created again"
    return uids


@pytest.mark.timeout(150)
def test_install_upgrade_rollback_uninstall(tmp_path: Path) -> None:
    require_tools()
    began = time.monotonic()
    home = tmp_path / "helm"
    with running_realkube(tmp_path) as kube:
        defaults = render(kube, home)
        upgraded = render(kube, home, *UPGRADE)

        # 1. install: crds/ first, then the templates.
        helm(kube, home, "install", RELEASE, str(CHART), "--namespace", NAMESPACE,
             "--create-namespace")
        kubectl(kube, "wait", "--for=condition=Established", "--timeout=30s",
                *[f"crd/{name}" for name in crd_names()], timeout=40)
        crds = check_crds(kube)
        first = check_release(kube, home, defaults, 1)
        assert history(kube, home) == [(1, "deployed", "Install complete")]
        (container,) = first["spec"]["template"]["spec"]["containers"]
        assert "--log-level=info" in container["args"] and "--peering=cube-operator" in container["args"]
        assert first["spec"]["replicas"] == 1
        assert container["resources"]["limits"]["memory"] == "256Mi"

        # The RBAC, as the API server's authorizer applies it to the ServiceAccount.
        want = rule_pairs(rendered(defaults, "ClusterRole"))
        groups = {group_of(res) for res, _ in want}
        have = {(res, verb) for res, verb in granted(kube) if group_of(res) in groups}
        assert have == want, (f"granted but not in the chart: {sorted(have - want)}; "
                              f"in the chart but not granted: {sorted(want - have)}")
        assert can_i(kube, "patch", "cubes.cube-operator.io/status", "team-a")
        assert can_i(kube, "watch", "secrets", "team-a")
        assert can_i(kube, "patch", "clusterkopfpeerings.kopf.dev")
        for verb, resource in (("delete", "cubes.cube-operator.io"), ("list", "secrets"),
                               ("delete", "snapshots.cube-operator.io"), ("create", "pods"),
                               ("update", "cubes.cube-operator.io"), ("get", "configmaps")):
            assert not can_i(kube, verb, resource, "team-a"), f"{verb} {resource} is granted"

        # 2. upgrade with changed values: a new revision, a new Deployment generation.
        helm(kube, home, "upgrade", RELEASE, str(CHART), "--namespace", NAMESPACE,
             "--reuse-values", *UPGRADE)
        second = check_release(kube, home, upgraded, 2)
        assert history(kube, home) == [(1, "superseded", "Install complete"),
                                       (2, "deployed", "Upgrade complete")]
        assert deployed_values(kube, home) == {"logLevel": "debug", "replicas": 2,
                                               "resources": {"limits": {"memory": "512Mi"}}}
        (container,) = second["spec"]["template"]["spec"]["containers"]
        assert "--log-level=debug" in container["args"]
        assert "--log-level=info" not in container["args"]
        assert second["spec"]["replicas"] == 2
        assert container["resources"]["limits"]["memory"] == "512Mi"
        assert container["resources"]["requests"] == {"cpu": "50m", "memory": "128Mi"}
        assert second["metadata"]["generation"] == first["metadata"]["generation"] + 1
        assert second["metadata"]["uid"] == first["metadata"]["uid"]  # patched, not replaced
        check_crds(kube, crds)

        # 3. rollback to revision 1: revision 3 with revision 1's values; the PDB goes.
        helm(kube, home, "rollback", RELEASE, "1", "--namespace", NAMESPACE)
        third = check_release(kube, home, defaults, 3)
        assert history(kube, home) == [(1, "superseded", "Install complete"),
                                       (2, "superseded", "Upgrade complete"),
                                       (3, "deployed", "Rollback to 1")]
        assert deployed_values(kube, home) == {}
        (container,) = third["spec"]["template"]["spec"]["containers"]
        assert "--log-level=info" in container["args"]
        assert third["spec"]["replicas"] == 1
        assert container["resources"]["limits"]["memory"] == "256Mi"
        assert third["metadata"]["generation"] == second["metadata"]["generation"] + 1
        assert third["metadata"]["uid"] == first["metadata"]["uid"]
        releases = kubectl_json(kube, "secrets", "-n", NAMESPACE, "-l", f"owner=helm,name={RELEASE}")
        assert sorted(s["metadata"]["labels"]["version"] for s in releases["items"]) == ["1", "2", "3"]
        check_crds(kube, crds)

        # 4. uninstall: the release's objects go (cluster-scoped ones too), the CRDs stay.
        helm(kube, home, "uninstall", RELEASE, "--namespace", NAMESPACE)
        for kind, name in (("deployment", FULLNAME), ("serviceaccount", FULLNAME),
                           ("service", f"{FULLNAME}-metrics"), ("service", f"{FULLNAME}-webhooks"),
                           ("poddisruptionbudget", FULLNAME)):
            assert kubectl_json(kube, kind, name, "-n", NAMESPACE) is None, f"{kind}/{name} left"
        for kind, name in (("clusterrole", FULLNAME), ("clusterrolebinding", FULLNAME),
                           ("clusterkopfpeering", "cube-operator")):
            assert kubectl_json(kube, kind, name) is None, f"{kind}/{name} left"
        left = kubectl_json(kube, "secrets", "-n", NAMESPACE, "-l", f"owner=helm,name={RELEASE}")
        assert left["items"] == [], "release records left after uninstall"
        out = helm(kube, home, "list", "-n", NAMESPACE, "-o", "json").stdout
        assert json.loads(out) == []
        check_crds(kube, crds)
        assert not can_i(kube, "list", "cubes.cube-operator.io", "team-a")
        # Helm does not delete the namespace --create-namespace made.
        assert kubectl_json(kube, "namespace", NAMESPACE)

    elapsed = time.monotonic() - began
    print(f"\nrealkube READY in {kube.started_in:.1f}s; install/upgrade/rollback/uninstall "
          f"test {elapsed:.1f}s")
    assert elapsed < 90, f"the helm life-cycle test took {elapsed:.0f}s (budget ~90s)"
