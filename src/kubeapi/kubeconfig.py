"""Kubeconfig files pointing kubectl, kopf and the kubernetes client at the emulator."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

CONTEXT = "kubeapi-emulator"
# Any bearer token is accepted; one is set because some clients insist on credentials.
DUMMY_TOKEN = "kubeapi-emulator-token"


def kubeconfig(url: str, namespace: str = "default") -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": url}}],
        "users": [{"name": CONTEXT, "user": {"token": DUMMY_TOKEN}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT,
                                                   "namespace": namespace}}],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write_kubeconfig(path: str | Path, url: str, namespace: str = "default") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(kubeconfig(url, namespace), sort_keys=False))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path
