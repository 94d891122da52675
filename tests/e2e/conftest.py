"""End-to-end harness: a real kube-apiserver (or the API emulator), the Krova simulator,
the real operator process, and real /usr/bin/kubectl. Nothing of ours is mocked."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloudsim.testing import running_simulator
from support.e2e import (
    API_KEY,
    SPACE_ID,
    TIME_SCALE,
    Cluster,
    Krova,
    Operator,
    cluster_with_crds,
    namespace_with_credentials,
    provider_config,
)


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A real kube-apiserver when .tools/bin/realkube is built (CUBE_E2E_APISERVER=emulator
    for the emulator), shared by the Krova modules of the package."""
    with cluster_with_crds(tmp_path_factory.mktemp("kube")) as c:
        yield c


@pytest.fixture(scope="package")
def krova() -> Iterator[Krova]:
    with running_simulator("krova", api_key=API_KEY, space_id=SPACE_ID, time_scale=TIME_SCALE) as sim:
        yield Krova(url=sim.url, admin_url=sim.admin_url)


@pytest.fixture(scope="package")
def operator(cluster: Cluster, krova: Krova, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    op = Operator(kubeconfig=cluster.kubeconfig, log_path=tmp_path_factory.mktemp("op") / "operator.log")
    op.start()
    yield op
    op.stop()
    log = op.log()
    assert API_KEY not in log, "the API key leaked into the operator log"
    # Deletions waited on Krova here: routine waits are INFO, never ERROR.
    waits = [line for line in log.splitlines() if "waiting for krova to delete" in line]
    assert not [line for line in waits if " ERROR " in line], waits[:3]


@pytest.fixture()
def team(cluster: Cluster, krova: Krova, operator: Operator) -> str:
    """A fresh namespace with credentials and a Ready ProviderConfig."""
    namespace = namespace_with_credentials(cluster, krova)
    cluster.apply(provider_config(namespace, krova))
    cluster.kubectl("wait", "--for=condition=Ready", "providerconfig/krova", "-n", namespace, "--timeout=30s")
    return namespace


