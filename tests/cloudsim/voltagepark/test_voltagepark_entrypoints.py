"""``python -m cloudsim voltagepark`` as a subprocess, running_simulator("voltagepark"),
the package exports and the common admin API (stats routes, faults, rate limit knob)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx
import pytest

import cloudsim
from cloudsim.testing import VOLTAGEPARK_API_KEY, running_simulator, simulator_process
from cloudsim.voltagepark import PRESETS

from .conftest import MakeVm, vm_body


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cloudsim", "voltagepark", *args],
                          check=False, capture_output=True, text=True, timeout=30)


def test_cli_help() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for flag in ("--api-key", "--port", "--time-scale", "--latency-ms", "--rate-limit",
                 "--public-url", "--set", "--host"):
        assert flag in result.stdout
    top = subprocess.run([sys.executable, "-m", "cloudsim", "--help"], check=False,
                         capture_output=True, text=True, timeout=30)
    assert "voltagepark" in top.stdout
    assert _run().returncode == 2  # --api-key is required
    knob = _run("--api-key", "k", "--set", "nope=1")
    assert knob.returncode == 2 and "nope" in knob.stderr


def test_cli_subprocess_starts_and_stops() -> None:
    args = ["--time-scale", "50", "--set", "provision_delay=1", "--api-key", "second:org-2"]
    with simulator_process("voltagepark", args=args) as proc, \
            httpx.Client(timeout=5.0) as client:
        assert proc.url.endswith("/api/v1") and proc.admin_url.endswith("/_sim")
        auth = {"Authorization": f"Bearer {VOLTAGEPARK_API_KEY}"}
        created = client.post(f"{proc.url}/virtual-machines/instant", headers=auth,
                              json={"config_id": PRESETS[0].id, "name": "cli"})
        assert created.status_code == 201
        vm_id = created.json()["vm_id"]
        other = client.get(f"{proc.url}/virtual-machines/",
                           headers={"Authorization": "Bearer second"}).json()
        assert other["total_result_count"] == 0
        config = client.get(f"{proc.admin_url}/config").json()
        assert config["provider"] == "voltagepark" and config["time_scale"] == 50
        assert config["provision_delay"] == 1 and config["rate_limit"] == 0
        deadline = time.monotonic() + 5
        status = ""
        while time.monotonic() < deadline:
            status = client.get(f"{proc.url}/virtual-machines/{vm_id}", headers=auth
                                ).json()["status"]
            if status == "Running":
                break
            time.sleep(0.02)
        assert status == "Running"
        proc.process.send_signal(signal.SIGTERM)
        assert proc.process.wait(timeout=10) == 0


def test_running_simulator_in_a_thread() -> None:
    with running_simulator("voltagepark", time_scale=100.0,
                           settings={"provision_delay": 0.5}) as running, \
            httpx.Client(timeout=5.0) as client:
        assert running.url.endswith("/api/v1")
        auth = {"Authorization": f"Bearer {VOLTAGEPARK_API_KEY}"}
        created = client.post(f"{running.url}/virtual-machines/instant", headers=auth,
                              json={"config_id": PRESETS[0].id, "name": "t", "tags": ["a"]})
        assert created.status_code == 201
        assert running.call(lambda: len(running.simulator.engine.vms)) == 1  # type: ignore[attr-defined]
        assert client.get(f"{running.admin_url}/config").json()["provision_delay"] == 0.5
        tokened = client.get(f"{running.url}/organization/ssh-keys",
                             headers={"x-api-token": VOLTAGEPARK_API_KEY})
        assert tokened.status_code == 200
    with pytest.raises(httpx.ConnectError), httpx.Client(timeout=2.0) as client:
        client.get(f"{running.url}/instant-deploy-presets/")
    with running_simulator("voltagepark", api_key="custom") as running, \
            httpx.Client(timeout=5.0) as client:
        ok = client.get(f"{running.url}/virtual-machines/",
                        headers={"Authorization": "Bearer custom"})
        assert ok.status_code == 200
    with pytest.raises(ValueError), running_simulator("voltagepark",
                                                      settings={"stop_delay": -1}):
        pass


def test_package_exports() -> None:
    assert cloudsim.PROVIDERS["voltagepark"] is cloudsim.VoltageParkSimulator
    assert cloudsim.VoltageParkSimulator.provider == "voltagepark"
    assert "VoltageParkSimulator" in cloudsim.__all__
    assert "VoltageParkSettings" in cloudsim.__all__
    for name in ("krova", "nokyc", "lunanode"):
        assert name in cloudsim.PROVIDERS
    with pytest.raises(ValueError):
        cloudsim.VoltageParkSimulator({})


async def test_stats_routes(api: httpx.AsyncClient, admin: httpx.AsyncClient,
                            make_vm: MakeVm) -> None:
    vm_id = await make_vm(wait=None)
    await admin.delete("/stats")
    await api.get(f"/virtual-machines/{vm_id}")
    await api.get("/virtual-machines/")
    await api.get("/virtual-machines")
    await api.put(f"/virtual-machines/{vm_id}/power-status", json={"status": "bogus"})
    stats = (await admin.get("/stats")).json()
    counts = {(r["method"], r["route"], r["status"]): r["count"] for r in stats["requests"]}
    assert counts[("GET", "/api/v1/virtual-machines/{virtual_machine_id}", 200)] == 1
    assert counts[("GET", "/api/v1/virtual-machines/", 200)] == 2
    assert counts[("PUT", "/api/v1/virtual-machines/{virtual_machine_id}/power-status",
                   422)] == 1


async def test_faults_and_rate_limit_knob(api: httpx.AsyncClient,
                                          admin: httpx.AsyncClient) -> None:
    rule = await admin.post("/faults", json={"route": "/virtual-machines/instant",
                                             "status": 503, "count": 1})
    assert rule.status_code == 201
    failed = await api.post("/virtual-machines/instant", json=vm_body())
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "1"
    assert failed.json() == {"detail": "Injected fault (503)"}
    assert (await api.post("/virtual-machines/instant", json=vm_body())).status_code == 201
    # Off by default: no rate-limit headers, no 429.
    free = await api.get("/virtual-machines/")
    assert "X-RateLimit-Limit" not in free.headers
    await admin.put("/config", json={"rate_limit": 2, "time_scale": 1.0})
    assert (await api.get("/virtual-machines/")).status_code == 200
    assert (await api.get("/virtual-machines/")).status_code == 200
    limited = await api.get("/virtual-machines/")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.json() == {"detail": "Too Many Requests"}
    await admin.put("/config", json={"rate_limit": 0})
    await admin.delete("/ratelimit")
    assert (await api.get("/virtual-machines/")).status_code == 200
    config = (await admin.get("/config")).json()
    for knob in ("provision_delay", "start_delay", "stop_delay", "relocate_delay",
                 "terminate_delay", "outbid_after", "relocate_on_start"):
        assert knob in config
    assert (await admin.put("/config", json={"start_delay": -1})).status_code == 400
    assert (await admin.put("/locations/nope/capacity", json={"gpus": 1})).status_code == 404
