"""The operator's own Kubernetes client authenticates as the kubeconfig (or the pod's
ServiceAccount) says: a token kubeconfig must send its token, or every status write is
system:anonymous on a real API server (the emulator does not check)."""
from __future__ import annotations

from pathlib import Path

import yaml

from cube_operator.controllers._kube import Kube, load_connection


async def test_a_token_kubeconfig_sends_its_bearer_token(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "sa", "user": {"token": "eyJ.sa-token"}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa"}}],
    }))
    kube = Kube(load_connection(str(kubeconfig)))
    try:
        assert kube._headers()["Authorization"] == "Bearer eyJ.sa-token"
    finally:
        await kube.aclose()
