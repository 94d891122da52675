"""The kubernetes python client against the emulator, and ``python -m kubeapi``."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import kubernetes
import pytest
import yaml

from kubeapi.testing import RunningEmulator, widget_crd


def test_kubernetes_python_client(emulator: RunningEmulator) -> None:
    client = kubernetes.config.new_client_from_config(config_file=str(emulator.kubeconfig))
    with client:
        core = kubernetes.client.CoreV1Api(client)
        names = {ns.metadata.name for ns in core.list_namespace().items}
        assert {"default", "kube-system"} <= names
        core.create_namespaced_config_map("default", kubernetes.client.V1ConfigMap(
            metadata=kubernetes.client.V1ObjectMeta(name="pyclient", labels={"a": "b"}),
            data={"k": "v"}))
        cm = core.patch_namespaced_config_map("pyclient", "default", {"data": {"k": "v2"}})
        assert cm.data == {"k": "v2"}
        listed = core.list_namespaced_config_map("default", label_selector="a=b")
        assert [c.metadata.name for c in listed.items] == ["pyclient"]
        with pytest.raises(kubernetes.client.ApiException) as exc:
            core.read_namespaced_config_map("missing", "default")
        assert exc.value.status == 404
        assert json.loads(exc.value.body)["reason"] == "NotFound"

        ext = kubernetes.client.ApiextensionsV1Api(client)
        ext.create_custom_resource_definition(widget_crd(group="pyclient.test"))
        custom = kubernetes.client.CustomObjectsApi(client)
        created = custom.create_namespaced_custom_object(
            "pyclient.test", "v1", "default", "widgets",
            {"apiVersion": "pyclient.test/v1", "kind": "Widget", "metadata": {"name": "p1"},
             "spec": {"size": 2}})
        assert created["spec"]["color"] == "red"
        patched = custom.patch_namespaced_custom_object(
            "pyclient.test", "v1", "default", "widgets", "p1", {"spec": {"size": 4}})
        assert patched["spec"]["size"] == 4 and patched["metadata"]["generation"] == 2
        status = custom.patch_namespaced_custom_object_status(
            "pyclient.test", "v1", "default", "widgets", "p1", {"status": {"phase": "Ok"}})
        assert status["status"] == {"phase": "Ok"}
        items = custom.list_cluster_custom_object("pyclient.test", "v1", "widgets")["items"]
        assert [i["metadata"]["name"] for i in items] == ["p1"]
        custom.delete_namespaced_custom_object("pyclient.test", "v1", "default", "widgets", "p1")
        with pytest.raises(kubernetes.client.ApiException) as exc:
            custom.get_namespaced_custom_object("pyclient.test", "v1", "default", "widgets", "p1")
        assert exc.value.status == 404


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_python_m_kubeapi_serves_and_shuts_down_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "kc" / "config"
    proc = subprocess.Popen([sys.executable, "-m", "kubeapi", "--port", str(port),
                             "--kubeconfig", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner
        doc = yaml.safe_load(config.read_text())
        assert doc["clusters"][0]["cluster"]["server"] == f"http://127.0.0.1:{port}"
        assert doc["contexts"][0]["context"]["namespace"] == "default"
        assert doc["current-context"] == doc["contexts"][0]["name"]
        assert doc["users"][0]["user"]["token"]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert client.get("/readyz").text == "ok"
            # An open watch must end cleanly (terminating chunk) when the server stops.
            with client.stream("GET", "/api/v1/namespaces", params={"watch": "1"}) as r:
                lines = r.iter_lines()
                assert json.loads(next(lines))["type"] == "ADDED"
                started = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                rest = list(lines)  # returns once the stream is closed by the server
                assert time.monotonic() - started < 5
        assert all(json.loads(x)["type"] == "ADDED" for x in rest if x.strip())
        assert proc.wait(10) == 0
        assert "shutting down" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


async def test_async_context_manager_and_kubeconfig(tmp_path: Path) -> None:
    from kubeapi import KubeAPIServer

    async with KubeAPIServer(host="127.0.0.1", port=0) as srv:
        assert srv.url == f"http://127.0.0.1:{srv.port}"
        path = srv.write_kubeconfig(tmp_path / "kubeconfig")
        assert yaml.safe_load(path.read_text())["clusters"][0]["cluster"]["server"] == srv.url
        async with httpx.AsyncClient(base_url=srv.url) as client:
            r = await client.post("/api/v1/namespaces/default/configmaps",
                                  json={"metadata": {"name": "a"}})
            assert r.status_code == 201
        assert [(r.verb, r.resource, r.status) for r in srv.request_log] == [
            ("create", "configmaps", 201)]
