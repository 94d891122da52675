"""A small async Kubernetes client for what kopf's handler kwargs don't cover.

Daemons and the webhook receiver write status outside kopf's handler cycle, and
handlers read Secrets and ProviderConfigs. The connection is the one kopf logs in with
(the pod's ServiceAccount, else the kubeconfig's current context), the I/O is httpx.

It does not use the official ``kubernetes`` package: importing its generated models costs
every replica about 10 MiB of memory (cli.py keeps kopf from importing them too).
"""
from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from ..api import GROUP, VERSION

USER_AGENT = "cube-operator"
#: On every Secret the operator creates (with an ownerReference to the object it is for).
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "cube-operator"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
#: A token file is read again after this long: the kubelet rotates a pod's bound token
#: (valid an hour by default) well before it expires.
TOKEN_FILE_REREAD_SECONDS = 60.0


class KubeError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason


class NotFoundError(KubeError):
    pass


class KubeConfigError(ValueError):
    """The kubeconfig names no usable server or credentials; the message says what to fix."""


@dataclass(frozen=True)
class Connection:
    """Where the API server is and who the operator is there."""

    server: str
    ca_file: str | None = None
    ca_pem: str | None = None
    insecure: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    token: str | None = None
    # Read again every TOKEN_FILE_REREAD_SECONDS (a ServiceAccount's projected token).
    token_file: str | None = None
    username: str | None = None
    password: str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """The CA and client certificate as one context. (httpx ignores ``cert=`` next to
        ``verify=<CA file>``: a client-certificate kubeconfig was system:anonymous.)"""
        context = ssl.create_default_context(cafile=self.ca_file, cadata=self.ca_pem)
        if self.cert_file and self.key_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        elif self.cert_pem and self.key_pem:
            # ssl loads a certificate chain from files only: these live for the call.
            with tempfile.TemporaryDirectory() as tmp:
                cert, key = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
                cert.write_bytes(self.cert_pem)
                key.touch(mode=0o600)
                key.write_bytes(self.key_pem)
                context.load_cert_chain(cert, key)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def load_connection(kubeconfig: str | os.PathLike[str] | None = None) -> Connection:
    """The pod's ServiceAccount (as kopf logs in: first), else the current context of
    ``kubeconfig`` or $KUBECONFIG (paths separated by ``os.pathsep``) or ~/.kube/config."""
    token_file = SERVICE_ACCOUNT_DIR / "token"
    if kubeconfig is None and token_file.exists():
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        server = (f"https://[{host}]:{port}" if host and ":" in host else f"https://{host}:{port}") if host \
            else "https://kubernetes.default.svc"
        ca = SERVICE_ACCOUNT_DIR / "ca.crt"
        return Connection(server=server, ca_file=str(ca) if ca.exists() else None, token_file=str(token_file))
    if kubeconfig is not None:
        paths = [Path(kubeconfig)]
    elif os.environ.get("KUBECONFIG"):
        paths = [Path(p).expanduser() for p in os.environ["KUBECONFIG"].split(os.pathsep) if p.strip()]
    else:
        paths = [Path("~/.kube/config").expanduser()]
    return _from_kubeconfig(paths)


def _from_kubeconfig(paths: list[Path]) -> Connection:
    # kubectl's merge: the first file to set a name wins; relative paths are relative to
    # the file that names them.
    current: str | None = None
    entries: dict[str, dict[str, tuple[dict[str, Any], Path]]] = {"contexts": {}, "clusters": {}, "users": {}}
    for path in paths:
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as error:
            raise KubeConfigError(f"cannot read kubeconfig {path}: {error}") from error
        current = current or config.get("current-context")
        for section, key in (("contexts", "context"), ("clusters", "cluster"), ("users", "user")):
            for item in config.get(section) or []:
                entries[section].setdefault(str(item.get("name")), (item.get(key) or {}, path.parent))
    where = ", ".join(str(p) for p in paths)
    if not current or current not in entries["contexts"]:
        raise KubeConfigError(f"kubeconfig {where}: no current context (set one with kubectl config use-context)")
    context, _ = entries["contexts"][current]
    if context.get("cluster") not in entries["clusters"]:
        raise KubeConfigError(f"kubeconfig {where}: context {current!r} names no known cluster")
    cluster, cluster_dir = entries["clusters"][context["cluster"]]
    user, user_dir = entries["users"].get(context.get("user") or "", ({}, cluster_dir))
    if not cluster.get("server"):
        raise KubeConfigError(f"kubeconfig {where}: cluster {context['cluster']!r} has no server")
    if "exec" in user and not user.get("token"):
        raise KubeConfigError(
            f"kubeconfig {where}: user {context.get('user')!r} authenticates with an exec plugin, which "
            "cube-operator does not run (nor does kopf); give it a token or a client certificate")

    def resolved(value: Any, base: Path) -> str | None:
        return str((base / os.path.expanduser(str(value))).resolve()) if value else None

    def decoded(value: Any) -> bytes | None:
        return base64.b64decode(value) if value else None

    ca_pem = decoded(cluster.get("certificate-authority-data"))
    return Connection(
        server=str(cluster["server"]).rstrip("/"),
        ca_file=resolved(cluster.get("certificate-authority"), cluster_dir),
        ca_pem=ca_pem.decode("ascii") if ca_pem else None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        cert_file=resolved(user.get("client-certificate"), user_dir),
        key_file=resolved(user.get("client-key"), user_dir),
        cert_pem=decoded(user.get("client-certificate-data")),
        key_pem=decoded(user.get("client-key-data")),
        # An auth-provider's cached access token, as kopf's login takes it.
        token=user.get("token") or ((user.get("auth-provider") or {}).get("config") or {}).get("access-token"),
        token_file=resolved(user.get("tokenFile"), user_dir),
        username=user.get("username"),
        password=user.get("password"),
    )


class Kube:
    """Just the calls the controllers make; every one is a real API request."""

    def __init__(self, connection: Connection | None = None) -> None:
        self._connection = connection = connection or load_connection()
        self._http = httpx.AsyncClient(base_url=connection.server, verify=connection.ssl_context(),
                                       timeout=httpx.Timeout(30.0))
        self._token: str | None = connection.token
        self._token_read_at = float("-inf")

    def _authorization(self) -> str | None:
        connection = self._connection
        if connection.token_file and time.monotonic() - self._token_read_at >= TOKEN_FILE_REREAD_SECONDS:
            try:
                self._token = Path(connection.token_file).read_text(encoding="utf-8").strip() or None
                self._token_read_at = time.monotonic()
            except OSError:
                pass  # mid-rotation: the last token read still holds for a while
        if self._token:
            return f"Bearer {self._token}"
        if connection.username is not None and connection.password is not None:
            pair = f"{connection.username}:{connection.password}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        return None

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        authorization = self._authorization()
        if authorization:
            headers["Authorization"] = authorization
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
