"""A small kopf operator runs against the emulator (kopf.testing.KopfRunner)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from kopf.testing import KopfRunner

from kubeapi.testing import RunningEmulator

OPERATOR = '''
import kopf

@kopf.on.login()
def login(**kwargs):
    # Reads $KUBECONFIG at call time (the kubernetes client reads it at import time).
    return kopf.login_with_kubeconfig(**kwargs)

@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    settings.persistence.finalizer = "example.test/kopf-finalizer"
    settings.watching.server_timeout = 30

@kopf.on.create("example.test", "v1", "widgets")
def created(body, spec, patch, **_):
    kopf.info(body, reason="Created", message=f"size {spec['size']}")
    patch.status["phase"] = "Created"

@kopf.on.update("example.test", "v1", "widgets")
def updated(spec, patch, **_):
    patch.status["phase"] = f"Updated-{spec['size']}"

@kopf.timer("example.test", "v1", "widgets", interval=0.3)
def tick(patch, **_):
    patch.status["ticked"] = True

@kopf.on.delete("example.test", "v1", "widgets")
def deleted(body, **_):
    kopf.info(body, reason="Deleting", message="delete handler ran")
'''

MERGE = {"Content-Type": "application/merge-patch+json"}


def until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def test_kopf_operator_against_emulator(emulator: RunningEmulator, api: httpx.Client,
                                        widgets: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    operator_py = tmp_path / "operator.py"
    operator_py.write_text(OPERATOR)
    monkeypatch.setenv("KUBECONFIG", str(emulator.kubeconfig))
    api.post("/api/v1/namespaces", json={"metadata": {"name": "kopf"}})
    obj_url = "/apis/example.test/v1/namespaces/kopf/widgets/k1"

    def status() -> dict[str, Any]:
        r = api.get(obj_url)
        return r.json().get("status", {}) if r.status_code == 200 else {}

    with KopfRunner(["run", "-A", "--standalone", "--verbose", str(operator_py)],
                    timeout=30) as runner:
        r = api.post("/apis/example.test/v1/namespaces/kopf/widgets", json={
            "apiVersion": "example.test/v1", "kind": "Widget", "metadata": {"name": "k1"},
            "spec": {"size": 2}})
        assert r.status_code == 201
        until(lambda: status().get("phase") == "Created")
        obj = api.get(obj_url).json()
        assert "example.test/kopf-finalizer" in obj["metadata"]["finalizers"]
        api.patch(obj_url, headers=MERGE, json={"spec": {"size": 3}})
        until(lambda: status().get("phase") == "Updated-3")
        until(lambda: status().get("ticked") is True)
        api.delete(obj_url)
        until(lambda: api.get(obj_url).status_code == 404)

    assert runner.exit_code == 0, runner.output
    assert runner.exception is None
    output = runner.output
    for fragment in ("Handler 'created' succeeded", "Handler 'updated' succeeded",
                     "Timer 'tick' succeeded", "Handler 'deleted' succeeded",
                     "Removing the finalizer"):
        assert fragment in output, output
    for forbidden in ("APIError", "Traceback", "[ERROR", "inconsistencies"):
        assert forbidden not in output, output

    log = [r for r in emulator.request_log if r.namespace == "kopf"]
    status_patches = [r for r in log if r.verb == "patch" and r.subresource == "status"]
    assert status_patches and all(r.status == 200 for r in status_patches)
    posted = [r for r in log if r.resource == "events" and r.verb == "create"]
    assert posted and all(r.status == 201 for r in posted)
    assert not [r for r in log if r.status >= 500]
    watches = [r for r in emulator.request_log if r.verb == "watch" and r.resource == "widgets"]
    assert watches and watches[0].namespace == ""  # cluster-wide watch with -A
    events = api.get("/api/v1/namespaces/kopf/events").json()["items"]
    assert {"Created", "Deleting"} <= {e["reason"] for e in events}
    assert all(e["involvedObject"]["name"] == "k1" for e in events)
