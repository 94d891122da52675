"""High availability as the chart sets it up: two replicas of the real operator, started
with the chart's args (`--peering cube-operator`) and distinct POD_IDs, share the chart's
ClusterKopfPeering. Exactly one of them must reconcile; when it stops, the other takes over.

kopf pauses *every* operator that sees a live peer of the same priority ("Pausing all
operators, including self"), so this holds only if the replicas end up with different
priorities."""
from __future__ import annotations

from typing import Any

import yaml
from deploy_helpers import NAMESPACE, Obj, OperatorProcess, by_kind, wait_for

from cloudsim.testing import running_simulator
from kubeapi.testing import kubectl, running_emulator

API_KEY = "kro_ha_0123456789abcdef"
SPACE_ID = "sp_ha"
TEAM = "team-ha"
HANDLED = "Handler 'providerconfig_changed' succeeded"


def provider_config(name: str, endpoint: str) -> Obj:
    return {"apiVersion": "cube-operator.io/v1alpha1", "kind": "ProviderConfig",
            "metadata": {"name": name, "namespace": TEAM},
            "spec": {"provider": "krova", "endpoint": endpoint,
                     "credentialsSecretRef": {"name": "krova-credentials", "key": "apiKey"},
                     "krova": {"spaceId": SPACE_ID}, "pollIntervalSeconds": 1}}


def test_two_replicas_one_active_then_failover(render, tmp_path):
    objs = render("--include-crds", values={"replicas": 2, "pollInterval": 2,
                                                      "allowedEndpoints": ["http://127.0.0.1"]}, tmp_path=tmp_path)
    assert by_kind(objs, "ClusterKopfPeering")
    with running_emulator(tmp_path / "kube") as emulator, \
            running_simulator("krova", api_key=API_KEY, space_id=SPACE_ID, time_scale=20.0,
                              rate_limit=0) as krova:
        store = emulator.server.cluster.store

        def apply(docs: list[Obj]) -> None:
            kubectl(emulator.kubeconfig, "apply", "-f", "-", input=yaml.safe_dump_all(docs))

        def ready(name: str) -> bool:
            found: dict[str, Any] = emulator.call(
                store.get, ("cube-operator.io", "providerconfigs"), TEAM, name) or {}
            conditions = (found.get("status") or {}).get("conditions") or []
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        crds = by_kind(objs, "CustomResourceDefinition")
        apply(crds)
        kubectl(emulator.kubeconfig, "wait", "--for=condition=Established", "--timeout=30s",
                *[f"crd/{c['metadata']['name']}" for c in crds])
        apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
               for ns in (NAMESPACE, TEAM)])
        apply(by_kind(objs, "ClusterKopfPeering"))
        apply([{"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "krova-credentials", "namespace": TEAM},
                "stringData": {"apiKey": API_KEY}}])

        replicas = [OperatorProcess(objs, emulator.kubeconfig, tmp_path / f"op-{i}.log",
                                    pod=f"cube-operator-6f7d9c8b5-{suffix}")
                    for i, suffix in enumerate(("k2x9p", "q7m4w"))]
        try:
            for replica in replicas:
                replica.start()
            apply([provider_config("first", krova.url)])
            wait_for(lambda: ready("first"), "a replica to reconcile ProviderConfig first",
                     timeout=30)
            active = [r for r in replicas if HANDLED in r.log()]
            assert len(active) == 1, [r.log()[-2000:] for r in replicas]
            (leader,) = active
            (standby,) = [r for r in replicas if r is not leader]

            leader.stop()  # a clean exit takes it out of the peering object
            apply([provider_config("second", krova.url)])
            wait_for(lambda: ready("second"), "the standby to take over", timeout=60)
            assert HANDLED in standby.log()
        finally:
            for replica in replicas:
                replica.stop()
