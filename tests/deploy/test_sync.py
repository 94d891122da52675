"""The generated deploy artifacts match their sources (regenerate them with
`.venv/bin/python deploy/sync.py`)."""
from __future__ import annotations

import yaml
from deploy_helpers import ARGOCD, CHART, KINDS, MANIFESTS, NAMESPACE, ROOT, key, load_all, one

FIX = "run `.venv/bin/python deploy/sync.py` and commit the result"


def test_chart_crds_match_the_repo_crds(sync_module):
    """deploy/helm/cube-operator/crds/ = crds/ (byte for byte) + kopf's peering CRDs."""
    repo = {p.name: p.read_text() for p in sorted((ROOT / "crds").glob("*.yaml"))}
    chart = {p.name: p.read_text() for p in sorted((CHART / "crds").glob("*"))}
    for name, content in repo.items():
        assert chart.get(name) == content, f"chart crds/{name} differs from crds/{name}: {FIX}"
    extra = set(chart) - set(repo)
    assert extra == {"kopf.dev_clusterkopfpeerings.yaml", "kopf.dev_kopfpeerings.yaml"}, (
        f"chart crds/ has files crds/ does not: {sorted(extra)}: {FIX}")
    assert sync_module.diff(sync_module.expected_chart_crds(), CHART / "crds", "*.yaml") == []


def test_kopf_peering_crds_are_kopfs(sync_module):
    docs = {d["metadata"]["name"]: d for name in ("clusterkopfpeerings", "kopfpeerings")
            for d in load_all((CHART / "crds" / f"kopf.dev_{name}.yaml").read_text())}
    for name, scope, kind in (("clusterkopfpeerings.kopf.dev", "Cluster", "ClusterKopfPeering"),
                              ("kopfpeerings.kopf.dev", "Namespaced", "KopfPeering")):
        spec = docs[name]["spec"]
        assert spec["group"] == "kopf.dev" and spec["scope"] == scope
        assert spec["names"]["kind"] == kind
        (version,) = spec["versions"]
        assert version["name"] == "v1" and version["served"] and version["storage"]
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def test_generated_files_are_up_to_date(sync_module, capsys):
    assert sync_module.main(["--check"]) == 0, capsys.readouterr().out + FIX


def test_manifests_match_the_chart(render, kustomize):
    """`kubectl kustomize deploy/manifests` = the chart rendered with its defaults (same
    kinds, names and namespaces), its CRDs, and the Namespace."""
    chart = render("--include-crds")
    manifests = kustomize(MANIFESTS)
    expected = {key(o) for o in chart} | {("Namespace", "", NAMESPACE)}
    assert {key(o) for o in manifests} == expected
    assert len(manifests) == len(expected), "duplicate objects in deploy/manifests"


def test_manifests_carry_the_same_objects_without_helm_labels(render, kustomize):
    chart = {key(o): o for o in render("--include-crds")}
    for obj in kustomize(MANIFESTS):
        k = key(obj)
        if k[0] == "Namespace":
            continue
        expected = chart[k]
        labels = dict(expected["metadata"].get("labels", {}))
        labels.pop("helm.sh/chart", None)
        labels.pop("app.kubernetes.io/managed-by", None)
        expected = {**expected, "metadata": {**expected["metadata"], "labels": labels}}
        if not labels:
            del expected["metadata"]["labels"]
        assert yaml.safe_dump(obj, sort_keys=True) == yaml.safe_dump(expected, sort_keys=True), k


def test_cluster_scoped_objects_have_no_namespace(kustomize):
    objs = kustomize(MANIFESTS)
    for kind in ("ClusterKopfPeering", "ClusterRole", "ClusterRoleBinding",
                 "CustomResourceDefinition", "Namespace"):
        for obj in objs:
            if obj["kind"] == kind:
                assert "namespace" not in obj["metadata"], key(obj)
    binding = one(objs, "ClusterRoleBinding")
    assert binding["subjects"][0]["namespace"] == NAMESPACE


def test_crds_kustomization_has_only_crds(kustomize):
    objs = kustomize(MANIFESTS / "crds")
    assert {o["kind"] for o in objs} == {"CustomResourceDefinition"}
    names = {o["metadata"]["name"] for o in objs}
    assert {f"{k.lower()}s.cube-operator.io" for k in KINDS} <= names


def test_argocd_cm_embeds_every_health_script():
    cm = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "argocd-cm"
    keys = {f"resource.customizations.health.cube-operator.io_{k}" for k in KINDS}
    assert set(cm["data"]) == keys
    for kind in KINDS:
        script = (ARGOCD / "cube-operator.io" / kind / "health.lua").read_text()
        assert cm["data"][f"resource.customizations.health.cube-operator.io_{kind}"] == script
