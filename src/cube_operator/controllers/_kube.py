"""A small async Kubernetes client for what kopf's handler kwargs don't cover.

Daemons and the webhook receiver write status outside kopf's handler cycle, and
handlers read Secrets and ProviderConfigs.  The connection settings come from the
official `kubernetes` package (kubeconfig or in-cluster), the I/O is httpx.
"""
from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from ..api import GROUP, VERSION

USER_AGENT = "cube-operator"
#: On every Secret the operator creates (with an ownerReference to the object it is for).
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "cube-operator"


class KubeError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason


class NotFoundError(KubeError):
    pass


def _load_configuration() -> k8s_client.Configuration:
    configuration = k8s_client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        k8s_config.load_incluster_config(client_configuration=configuration)
    else:
        k8s_config.load_kube_config(client_configuration=configuration)
    return configuration


def tls_context(cfg: k8s_client.Configuration) -> ssl.SSLContext:
    """The kubeconfig's CA and client certificate as one context. (httpx ignores ``cert=``
    next to ``verify=<CA file>``: a client-certificate kubeconfig was system:anonymous.)"""
    context = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
    if cfg.cert_file and cfg.key_file:
        context.load_cert_chain(cfg.cert_file, cfg.key_file)
    if not cfg.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Kube:
    """Just the calls the controllers make; every one is a real API request."""

    def __init__(self, configuration: k8s_client.Configuration | None = None) -> None:
        self._configuration = configuration or _load_configuration()
        cfg = self._configuration
        self._http = httpx.AsyncClient(base_url=cfg.host, verify=tls_context(cfg), timeout=httpx.Timeout(30.0))
        self._lock = asyncio.Lock()

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        cfg = self._configuration
        if cfg.refresh_api_key_hook is not None:
            cfg.refresh_api_key_hook(cfg)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        # The kubernetes client keeps a kubeconfig's or a ServiceAccount's token under
        # "BearerToken" (older releases: "authorization"), already prefixed "Bearer ".
        token = cfg.get_api_key_with_prefix("BearerToken", alias="authorization")
        if token:
            headers["Authorization"] = token
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, *, json: Any = None,
                       content_type: str | None = None,
                       params: dict[str, str] | None = None) -> dict[str, Any]:
        response = await self._http.request(
            method, path, json=json, params=params, headers=self._headers(content_type)
        )
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            cls = NotFoundError if response.status_code == 404 else KubeError
            raise cls(response.status_code, str(body.get("reason", "")), str(body.get("message", "")))
        result: dict[str, Any] = response.json()
        return result

    @staticmethod
    def custom_path(plural: str, namespace: str, name: str | None = None,
                    subresource: str | None = None) -> str:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}"
        if name:
            path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
        return path

    async def get_custom(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        return await self._request("GET", self.custom_path(plural, namespace, name))

    async def list_custom(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        body = await self._request("GET", self.custom_path(plural, namespace))
        items: list[dict[str, Any]] = body.get("items", [])
        return items

    async def list_custom_all(self, plural: str) -> list[dict[str, Any]]:
        """Every object of ``plural`` in the cluster (the operator watches them all anyway)."""
        body = await self._request("GET", f"/apis/{GROUP}/{VERSION}/{plural}")
        items: list[dict[str, Any]] = body.get("items", [])
        return items

    async def patch_status(self, plural: str, namespace: str, name: str,
                           status: dict[str, Any]) -> dict[str, Any]:
        return await self._request(
            "PATCH", self.custom_path(plural, namespace, name, "status"),
            json={"status": status}, content_type="application/merge-patch+json",
        )

    async def patch_metadata(self, plural: str, namespace: str, name: str,
                             metadata: dict[str, Any]) -> dict[str, Any]:
        return await self._request(
            "PATCH", self.custom_path(plural, namespace, name),
            json={"metadata": metadata}, content_type="application/merge-patch+json",
        )

    async def delete_custom(self, plural: str, namespace: str, name: str) -> None:
        await self._request("DELETE", self.custom_path(plural, namespace, name))

    async def watch_secret(self, namespace: str, name: str, resource_version: str | None,
                           seconds: int) -> AsyncIterator[tuple[str, dict[str, Any] | None]]:
        """Watch one Secret by name; yields (its resourceVersion, the Secret) at each change,
        ("absent", None) once deleted. Ends when the API server closes the watch; an ERROR
        event (410: too old) raises KubeError."""
        params = {"watch": "1", "fieldSelector": f"metadata.name={name}", "timeoutSeconds": str(seconds)}
        if resource_version and resource_version != "absent":
            params["resourceVersion"] = resource_version
        timeout = httpx.Timeout(30.0, read=seconds + 30.0)
        async with self._http.stream("GET", f"/api/v1/namespaces/{namespace}/secrets", params=params,
                                     headers=self._headers(), timeout=timeout) as response:
            if response.status_code >= 400:
                await response.aread()
                raise KubeError(response.status_code, response.reason_phrase, "watch refused")
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise KubeError(int(obj.get("code") or 500), str(obj.get("reason", "")), str(obj.get("message", "")))
                if kind == "DELETED":
                    yield "absent", None
                elif kind in ("ADDED", "MODIFIED"):
                    yield str((obj.get("metadata") or {}).get("resourceVersion")), obj

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        return await self._request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")

    async def create_secret(self, namespace: str, name: str, data: dict[str, str],
                            owner: dict[str, Any]) -> dict[str, Any]:
        """Create a Secret owned by ``owner`` and labelled as the operator's; KubeError 409
        if one by that name exists."""
        return await self._request(
            "POST", f"/api/v1/namespaces/{namespace}/secrets",
            json={"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": data,
                  "metadata": {"name": name, "namespace": namespace, "ownerReferences": [owner],
                               "labels": {MANAGED_BY_LABEL: MANAGED_BY}}},
        )

    async def apply_secret_data(self, namespace: str, name: str, data: dict[str, str],
                                owner: dict[str, Any] | None = None) -> None:
        """Create the Secret or merge `data` (base64 values) into it."""
        path = f"/api/v1/namespaces/{namespace}/secrets"
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if owner:
            metadata["ownerReferences"] = [owner]
        try:
            await self._request(
                "PATCH", f"{path}/{name}", json={"data": data},
                content_type="application/merge-patch+json",
            )
        except NotFoundError:
            await self._request(
                "POST", path,
                json={"apiVersion": "v1", "kind": "Secret", "metadata": metadata,
                      "type": "Opaque", "data": data},
            )
