"""Operating the operator: metrics on /metrics, and two replicas that act once."""
from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import yaml

from cloudsim.testing import running_simulator
from cube_operator.api import KINDS
from cube_operator.api.crds import crd_for
from cube_operator.testing import (
    API_KEY,
    SPACE_ID,
    TIME_SCALE,
    Cluster,
    Krova,
    Operator,
    condition,
    cube_manifest,
    namespace_with_credentials,
    provider_config,
    wait_for,
)
from kubeapi.testing import running_emulator

MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "manifests"


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total, found = 0.0, False
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if not match:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
            found = True
    if not found:
        raise AssertionError(f"no sample of {name} {labels}")
    return total


def test_metrics_show_reconciles_requests_readiness(cluster: Cluster, krova: Krova, operator: Operator,
                                                    team: str) -> None:
    cluster.apply(cube_manifest("measured", team))
    cluster.kubectl("wait", "--for=condition=Ready", "cube/measured", "-n", team, "--timeout=60s", timeout=70)
    text = httpx.get(operator.metrics_url, timeout=5).text
    assert metric(text, "cube_operator_reconciles_total", kind="Cube", result="success") >= 1
    assert metric(text, "cube_operator_reconciles_total", kind="ProviderConfig", result="success") >= 1
    lists = metric(text, "cube_operator_provider_requests_total", provider="krova", method="GET",
                   endpoint="/spaces/{spaceId}/cubes", status="200")
    creates = metric(text, "cube_operator_provider_requests_total", provider="krova", method="POST",
                     endpoint="/spaces/{spaceId}/cubes", status="201")
    assert lists >= 1 and creates >= 1
    assert metric(text, "cube_operator_time_to_first_ready_seconds_count", kind="Cube") >= 1
    first_ready_sum = metric(text, "cube_operator_time_to_first_ready_seconds_sum", kind="Cube")
    assert 0 < first_ready_sum < 3600 * 10
    assert metric(text, "cube_operator_objects", kind="Cube", ready="True") >= 1
    metric(text, "cube_operator_rate_limit_waits_total")  # the series exists
    assert API_KEY not in text


@pytest.fixture()
def ha_cluster(tmp_path: Path) -> Cluster:
    with running_emulator(tmp_path / "kube") as emulator:
        cluster = Cluster(kubeconfig=Path(emulator.kubeconfig), url=emulator.url)
        crds = [crd_for(info) for info in KINDS]
        for path in sorted((MANIFESTS / "crds").glob("kopf.dev_*.yaml")):
            crds.extend(yaml.safe_load_all(path.read_text()))
        cluster.apply(crds)
        cluster.kubectl("wait", "--for=condition=Established", "crd/clusterkopfpeerings.kopf.dev", "--timeout=30s")
        cluster.apply((MANIFESTS / "peering.yaml").read_text())
        yield cluster


def test_two_replicas_create_each_cube_once(ha_cluster: Cluster, tmp_path: Path) -> None:
    cluster = ha_cluster
    with running_simulator("krova", api_key=API_KEY, space_id=SPACE_ID, time_scale=TIME_SCALE) as sim:
        krova = Krova(url=sim.url, admin_url=sim.admin_url)
        replicas = [Operator(kubeconfig=cluster.kubeconfig, log_path=tmp_path / f"replica-{i}.log",
                             args=["--peering", "cube-operator", "--priority", str(100 + i)]) for i in (1, 2)]
        for replica in replicas:
            replica.start()
        try:
            wait_for(lambda: "Pausing operations in favour of" in replicas[0].log(), timeout=30,
                     what="the lower-priority replica to stand by")
            namespace = namespace_with_credentials(cluster, krova)
            names = [f"ha-{i}" for i in range(6)]
            cluster.apply(provider_config(namespace, krova) + [cube_manifest(n, namespace) for n in names])
            wait_for(lambda: all(condition(cluster.get("cube", n, namespace), "Ready").get("status") == "True"
                                 for n in names), timeout=90, interval=0.5, what="all Cubes Ready")
            remote = [c for c in krova.cubes() if c["name"] in names]
            assert sorted(c["name"] for c in remote) == sorted(names), "a Cube was created twice"
            standby = replicas[0].log().split("Pausing operations in favour of", 1)[1]
            assert "krova POST /spaces/{spaceId}/cubes ->" not in standby, "the standby replica created Cubes"
            assert "krova POST /spaces/{spaceId}/cubes ->" in replicas[1].log()
        finally:
            for replica in replicas:
                replica.stop()
