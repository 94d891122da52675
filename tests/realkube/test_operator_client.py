"""The operator's own Kubernetes client (controllers/_kube.py) against a real API server:
it must authenticate as its kubeconfig says, by client certificate or by token. (The
emulator accepts anyone, so only a real server catches a client that sends neither.)"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from cube_operator.controllers._kube import Kube, KubeError, load_connection
from support.realkube import REALKUBE, running_realkube

KUBECTL = "/usr/bin/kubectl"


def client_for(kubeconfig: Path) -> Kube:
    return Kube(load_connection(str(kubeconfig)))


@pytest.mark.timeout(120)
async def test_the_operator_client_authenticates_by_certificate_and_by_token(tmp_path: Path) -> None:
    if not REALKUBE.exists():
        pytest.fail(f"{REALKUBE} is missing: run `make tools` (needs Go on PATH)")
    with running_realkube(tmp_path) as kube:
        def kubectl(*args: str) -> str:
            return subprocess.run([KUBECTL, "--kubeconfig", str(kube.kubeconfig), *args], capture_output=True,
                                  text=True, check=True, timeout=30).stdout

        kubectl("create", "secret", "generic", "creds", "--from-literal=apiKey=x")
        admin = client_for(kube.kubeconfig)  # the admin user: a client certificate
        try:
            assert (await admin.get_secret("default", "creds"))["metadata"]["name"] == "creds"
        finally:
            await admin.aclose()

        kubectl("create", "serviceaccount", "reader")
        token = kubectl("create", "token", "reader", "--duration", "10m").strip()
        config = yaml.safe_load(kube.kubeconfig.read_text())
        config["users"] = [{"name": config["users"][0]["name"], "user": {"token": token}}]
        token_kubeconfig = tmp_path / "token-kubeconfig"
        token_kubeconfig.write_text(yaml.safe_dump(config))
        reader = client_for(token_kubeconfig)
        try:
            with pytest.raises(KubeError) as refused:
                await reader.get_secret("default", "creds")
            # Refused as the ServiceAccount it is, not as system:anonymous.
            assert refused.value.status == 403
            assert "system:serviceaccount:default:reader" in str(refused.value), str(refused.value)
        finally:
            await reader.aclose()
