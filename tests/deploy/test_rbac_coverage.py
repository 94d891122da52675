"""The chart's RBAC is enough for what the operator really does.

The real operator process runs with the args the chart renders (ports aside) against the
API emulator and the Krova simulator, and handles a ProviderConfig, a Cube, a Snapshot and a
Webhook (whose signing secret it writes into a Secret) through to the Cube's deletion. Every
request it sent is then checked against the rules of the chart's ClusterRole, or of the
Role of that namespace when the chart restricts it to watchNamespaces: a request no rule
grants is a 403 on a real cluster."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from deploy_helpers import NAMESPACE, Obj, OperatorProcess, by_kind, wait_for

from cloudsim.testing import running_simulator
from kubeapi.testing import kubectl, running_emulator

API_KEY = "kro_rbac_0123456789abcdef"
SPACE_ID = "sp_rbac"
TEAM = "team-a"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2eRbacTestKey rbac@test"


@dataclass(frozen=True)
class Rule:
    groups: frozenset[str]
    resources: frozenset[str]
    verbs: frozenset[str]

    def allows(self, group: str, resource: str, verb: str) -> bool:
        return group in self.groups and resource in self.resources and verb in self.verbs


def rules(role: Obj) -> list[Rule]:
    return [Rule(frozenset(r["apiGroups"]), frozenset(r["resources"]), frozenset(r["verbs"]))
            for r in role["rules"]]


class Policy:
    """Who may do what, from the rendered ClusterRoles/Roles bound to the operator."""

    def __init__(self, objs: list[Obj]) -> None:
        self.cluster = [r for role in by_kind(objs, "ClusterRole") for r in rules(role)]
        self.namespaced: dict[str, list[Rule]] = {}
        for role in by_kind(objs, "Role"):
            self.namespaced.setdefault(role["metadata"]["namespace"], []).extend(rules(role))
        assert by_kind(objs, "ClusterRoleBinding"), "no ClusterRoleBinding"

    def allows(self, group: str, resource: str, verb: str, namespace: str) -> bool:
        if any(r.allows(group, resource, verb) for r in self.cluster):
            return True
        return bool(namespace) and any(r.allows(group, resource, verb)
                                       for r in self.namespaced.get(namespace, []))


def obj(kind: str, name: str, **spec: Any) -> Obj:
    return {"apiVersion": "cube-operator.io/v1alpha1", "kind": kind,
            "metadata": {"name": name, "namespace": TEAM}, "spec": spec}


# The simulators listen on loopback: allowed through the chart value (tenants' endpoints).
LOOPBACK = ["http://127.0.0.1"]


@pytest.mark.parametrize("values", [
    {"pollInterval": 2, "allowedEndpoints": LOOPBACK},
    {"pollInterval": 2, "watchNamespaces": [TEAM], "allowedEndpoints": LOOPBACK},
], ids=["cluster-wide", "watch-namespaces"])
def test_operator_requests_are_granted_by_the_chart(render, tmp_path, values):
    objs = render("--include-crds", values=values, tmp_path=tmp_path)
    policy = Policy(objs)
    with running_emulator(tmp_path / "kube") as emulator, \
            running_simulator("krova", api_key=API_KEY, space_id=SPACE_ID, time_scale=20.0,
                              rate_limit=0) as krova:
        store = emulator.server.cluster.store
        # Requests of this test's own kubectl runs after the operator started: the
        # creations and the deletion it makes, and its look at the target namespace.
        own: list[tuple[int, int]] = []

        def ctl(*argv: str, input: str | None = None) -> str:
            start = len(emulator.request_log)
            try:
                return kubectl(emulator.kubeconfig, *argv, input=input).stdout
            finally:
                own.append((start, len(emulator.request_log)))

        def apply(docs: list[Obj]) -> None:
            ctl("apply", "-f", "-", input=yaml.safe_dump_all(docs))

        def get(group: str, plural: str, name: str) -> Obj | None:
            """Straight from the emulator's store: no request, nothing in the log."""
            return emulator.call(store.get, (group, plural), TEAM, name)

        def ready(plural: str, name: str) -> bool:
            found = get("cube-operator.io", plural, name) or {}
            conditions = (found.get("status") or {}).get("conditions") or []
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        # What `helm install` puts in place: CRDs, namespaces, the peering object(s).
        crds = by_kind(objs, "CustomResourceDefinition")
        apply(crds)
        ctl("wait", "--for=condition=Established", "--timeout=30s",
            *[f"crd/{c['metadata']['name']}" for c in crds])
        apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
               for ns in (NAMESPACE, TEAM)])
        apply(by_kind(objs, "ClusterKopfPeering") + by_kind(objs, "KopfPeering"))
        apply([{"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "krova-credentials", "namespace": TEAM},
                "stringData": {"apiKey": API_KEY}},
               obj("ProviderConfig", "krova", provider="krova", endpoint=krova.url,
                   credentialsSecretRef={"name": "krova-credentials", "key": "apiKey"},
                   krova={"spaceId": SPACE_ID}, pollIntervalSeconds=1)])

        started = len(emulator.request_log)
        operator = OperatorProcess(objs, emulator.kubeconfig, tmp_path / "operator.log",
                                   pod="cube-operator-5d9c7b8f6-x2x7q")
        try:
            operator.start()
            wait_for(lambda: ready("providerconfigs", "krova"), "ProviderConfig Ready")
            apply([
                obj("Cube", "web-1", providerConfigRef={"name": "krova"}, image="ubuntu-24.04",
                    region="eu-nuremberg", resources={"vcpu": 1, "ramGb": 2, "diskGb": 20},
                    sshPublicKey=SSH_KEY),
                obj("Webhook", "events", providerConfigRef={"name": "krova"}, receiver="operator",
                    events=["cube.running", "cube.deleted"], secretRef={"name": "krova-webhook"}),
            ])
            wait_for(lambda: ready("cubes", "web-1"), "Cube Ready")
            wait_for(lambda: ready("webhooks", "events"), "Webhook Ready")
            apply([obj("Snapshot", "nightly", cubeRef={"name": "web-1"})])
            wait_for(lambda: ready("snapshots", "nightly"), "Snapshot Ready")
            assert get("", "secrets", "krova-webhook"), "the operator wrote no signing secret"
            ctl("delete", "cube", "web-1", "-n", TEAM, "--wait=false")
            wait_for(lambda: get("cube-operator.io", "cubes", "web-1") is None,
                     "Cube deleted (finalizer released)")
        finally:
            operator.stop()

        def from_this_test(i: int, verb: str, resource: str) -> bool:
            return any(a <= i < b for a, b in own) and (
                (verb == "create" and resource in ("cubes", "webhooks", "snapshots"))
                or (verb == "delete" and resource == "cubes")
                or (verb == "get" and resource == "namespaces"))

        operator_requests = [r for i, r in enumerate(emulator.request_log)
                             if i >= started and r.resource
                             and not from_this_test(i, r.verb, r.resource)]
    resources = {(r.group, r.resource) for r in operator_requests}
    assert ("cube-operator.io", "cubes") in resources and ("", "secrets") in resources, resources
    denied = sorted({
        (r.verb, r.group or "core", r.resource + (f"/{r.subresource}" if r.subresource else ""),
         r.namespace or "(cluster)")
        for r in operator_requests
        if not policy.allows(r.group, r.resource + (f"/{r.subresource}" if r.subresource else ""),
                             r.verb, r.namespace)
    })
    assert not denied, (f"the chart's RBAC does not grant these operator requests: {denied}\n"
                        f"operator log tail:\n{operator.log()[-3000:]}")
