"""Create manifests through the API (the sandbox must not depend on kubectl)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from ..api import GROUP, KINDS

_CORE = {"Namespace": ("namespaces", False), "Secret": ("secrets", True), "ConfigMap": ("configmaps", True)}
_CUSTOM = {info.kind: info.plural for info in KINDS}


def collection_path(manifest: dict[str, Any]) -> str:
    kind, api_version = manifest["kind"], manifest["apiVersion"]
    namespace = manifest.get("metadata", {}).get("namespace", "default")
    if kind == "CustomResourceDefinition":
        return "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    if api_version == "v1" and kind in _CORE:
        plural, namespaced = _CORE[kind]
        return f"/api/v1/namespaces/{namespace}/{plural}" if namespaced else f"/api/v1/{plural}"
    if api_version.startswith(GROUP + "/") and kind in _CUSTOM:
        return f"/apis/{api_version}/namespaces/{namespace}/{_CUSTOM[kind]}"
    raise ValueError(f"the sandbox cannot apply {api_version} {kind}")


def load_manifests(*paths: Path) -> list[dict[str, Any]]:
    manifests: list[dict[str, Any]] = []
    for path in paths:
        files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
        for file in files:
            manifests.extend(doc for doc in yaml.safe_load_all(file.read_text()) if doc)
    return manifests


async def create_all(client: httpx.AsyncClient, manifests: list[dict[str, Any]]) -> None:
    for manifest in manifests:
        response = await client.post(collection_path(manifest), json=manifest)
        if response.status_code not in (200, 201, 409):
            raise RuntimeError(f"creating {manifest['kind']} {manifest['metadata'].get('name')}: "
                               f"{response.status_code} {response.text[:300]}")
