"""Runs last in the e2e session: every Kubernetes API call the operator made during the
whole suite must be granted by the Helm chart's RBAC, or it would be a 403 on a real cluster."""
from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from cube_operator.api import KINDS
from support.e2e import Cluster, Operator, RbacPolicy

ROOT = Path(__file__).resolve().parents[2]
HELM = ROOT / ".tools" / "bin" / "helm"
DEPENDENTS = {"snapshots", "restores", "tcpmappings", "domains"}


def rendered_chart() -> list[dict]:
    if not HELM.exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "install-test-tools.sh")], check=True)
    out = subprocess.run([str(HELM), "template", "cube-operator", str(ROOT / "deploy/helm/cube-operator"),
                          "--namespace", "cube-operator-system"], capture_output=True, text=True, check=True)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def test_operator_calls_of_the_e2e_suite_are_granted_by_the_chart(cluster: Cluster, operator: Operator) -> None:
    policy = RbacPolicy(rendered_chart())
    # On the real API server every request was authorized as system:masters (the e2e
    # operator's admin identity), so a 403 could not show; the audit log says what was asked.
    calls = cluster.operator_calls()
    # --delete-dependents (the e2e operator's, for an API server without a garbage collector)
    # deletes a deleted Cube's dependents; on a cluster the garbage collector does that, so
    # the chart neither passes the flag nor grants the delete.
    dependents = [r for r in calls if r["verb"] == "delete" and r["resource"] in DEPENDENTS]
    assert dependents, "the suite deletes a Cube with dependents; --delete-dependents should have deleted them"
    calls = [r for r in calls if r not in dependents]
    touched = {r["resource"] for r in calls}
    expected = {info.plural for info in KINDS} | {"secrets", "events"}
    assert expected <= touched, (
        f"this test checks the calls the e2e suite made before it; these were never called: "
        f"{sorted(expected - touched)} (run it after the rest of tests/e2e)")
    denied = sorted({
        (r["verb"], r["group"] or "core", r["resource"] + (f"/{r['subresource']}" if r["subresource"] else ""),
         r["namespace"] or "(cluster)")
        for r in calls
        if not policy.allows(r["group"], r["resource"] + (f"/{r['subresource']}" if r["subresource"] else ""),
                             r["verb"], r["namespace"])
    })
    source = "the real API server's audit log" if cluster.real else "the emulator's request log"
    print(f"\n{len(calls)} operator API calls ({source}) checked against the chart's ClusterRole")
    assert not denied, f"the chart's RBAC does not grant: {denied}"
