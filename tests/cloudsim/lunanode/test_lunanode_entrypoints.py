"""``python -m cloudsim lunanode ...`` as a subprocess, running_simulator("lunanode"), the
package exports and the common admin API (stats per action, faults, latency, knobs)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

import cloudsim
from cloudsim.testing import (
    LUNANODE_API_ID,
    LUNANODE_API_KEY,
    lunanode_form,
    running_simulator,
    simulator_process,
)

OTHER_ID = "abcdefghijklmnop"
OTHER_KEY = "Z" * 64 + "y" * 64

Call = Any


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cloudsim", "lunanode", *args], check=False,
                          capture_output=True, text=True, timeout=30)


def test_cli_help() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for flag in ("--api-id", "--api-key", "--port", "--time-scale", "--latency-ms",
                 "--rate-limit", "--public-url", "--set"):
        assert flag in result.stdout
    top = subprocess.run([sys.executable, "-m", "cloudsim", "--help"], check=False,
                         capture_output=True, text=True, timeout=30)
    assert "lunanode" in top.stdout


def test_cli_rejects_bad_credentials_and_knobs() -> None:
    short = _run("--api-id", "short", "--api-key", LUNANODE_API_KEY)
    assert short.returncode == 2 and "api_id" in short.stderr
    key = _run("--api-id", LUNANODE_API_ID, "--api-key", "k" * 64)
    assert key.returncode == 2 and "api_key" in key.stderr
    knob = _run("--api-id", LUNANODE_API_ID, "--api-key", LUNANODE_API_KEY, "--set", "nope=1")
    assert knob.returncode == 2 and "nope" in knob.stderr
    missing = _run("--api-key", LUNANODE_API_KEY)
    assert missing.returncode == 2 and "--api-id" in missing.stderr


def test_cli_subprocess_starts_and_answers() -> None:
    args = ["--time-scale", "40", "--set", "build_delay=1", "--latency-ms", "1"]
    with simulator_process("lunanode", api_id=OTHER_ID, api_key=OTHER_KEY, args=args) as proc, \
            httpx.Client(timeout=5.0) as client:
        assert proc.url.endswith("/api") and proc.admin_url.endswith("/_sim")
        form = lunanode_form("vm", "create", {"hostname": "cli", "plan_id": "87",
                                              "image_id": "630902"},
                             api_id=OTHER_ID, api_key=OTHER_KEY)
        created = client.post(f"{proc.url}/vm/create/", data=form).json()
        assert created["success"] == "yes"
        default = client.post(f"{proc.url}/plan/list/", data=lunanode_form("plan", "list"))
        assert default.json() == {"success": "no", "error": "invalid api_id"}
        config = client.get(f"{proc.admin_url}/config").json()
        assert config["provider"] == "lunanode" and config["time_scale"] == 40
        assert config["build_delay"] == 1 and config["rate_limit"] == 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            info = client.post(f"{proc.url}/vm/info/", data=lunanode_form(
                "vm", "info", {"vm_id": created["vm_id"]}, api_id=OTHER_ID,
                api_key=OTHER_KEY)).json()
            if info["info"]["status_nohtml"] == "Online":
                break
            time.sleep(0.02)
        assert info["info"]["status_nohtml"] == "Online"
        proc.process.send_signal(signal.SIGTERM)
        assert proc.process.wait(timeout=10) == 0


def test_running_simulator_in_a_thread() -> None:
    with running_simulator("lunanode", time_scale=100.0, settings={"build_delay": 0.5}
                           ) as running, httpx.Client(timeout=5.0) as client:
        assert running.url.endswith("/api")
        form = lunanode_form("vm", "create", {"hostname": "t", "plan_id": 87,
                                              "image_id": 630902})
        assert client.post(f"{running.url}/vm/create/", data=form).json()["success"] == "yes"
        assert running.call(lambda: len(running.simulator.engine.vms)) == 1  # type: ignore[attr-defined]
        assert client.get(f"{running.admin_url}/config").json()["build_delay"] == 0.5
    with pytest.raises(httpx.ConnectError), httpx.Client(timeout=2.0) as client:
        client.post(f"{running.url}/plan/list/", data=lunanode_form("plan", "list"))
    with running_simulator("lunanode", api_id=OTHER_ID, api_key=OTHER_KEY) as running, \
            httpx.Client(timeout=5.0) as client:
        form = lunanode_form("plan", "list", api_id=OTHER_ID, api_key=OTHER_KEY)
        assert client.post(f"{running.url}/plan/list/", data=form).json()["success"] == "yes"
    with pytest.raises(ValueError), running_simulator("lunanode", api_id="short"):
        pass


def test_package_exports() -> None:
    assert cloudsim.PROVIDERS["lunanode"] is cloudsim.LunaNodeSimulator
    assert cloudsim.LunaNodeSimulator.provider == "lunanode"
    assert "LunaNodeSimulator" in cloudsim.__all__ and "LunaNodeSettings" in cloudsim.__all__
    # Krova and NoKYC are still there, unchanged.
    assert cloudsim.PROVIDERS["krova"] is cloudsim.KrovaSimulator
    assert cloudsim.PROVIDERS["nokyc"] is cloudsim.NoKycSimulator


async def test_stats_count_each_action(
    call: Call, api: httpx.AsyncClient, admin: httpx.AsyncClient,
) -> None:
    await admin.delete("/stats")
    for _ in range(2):
        await call("vm", "create", {"hostname": "s", "plan_id": "87", "image_id": "630902"})
    await call("vm", "create", {"plan_id": "87"})
    await call("vm", "list")
    await call("vm", "securitygroup-add", {"vm_id": "1", "group_id": "1"})
    await api.post("/vm/list", data=lunanode_form("vm", "list"))
    await call("vm", "frobnicate")
    stats = (await admin.get("/stats")).json()
    counts = {(r["route"], r["status"]): r["count"] for r in stats["requests"]}
    assert counts[("/api/vm/create/", 200)] == 3
    assert counts[("/api/vm/list/", 200)] == 2
    assert counts[("/api/vm/securitygroup_add/", 200)] == 1
    assert counts[("/api/{category}/{action}/", 200)] == 1
    assert stats["counters"]["success=no /api/vm/create/"] == 1
    assert stats["counters"]["success=no /api/vm/securitygroup_add/"] == 1
    recent = (await admin.get("/requests", params={"limit": 1})).json()["requests"]
    assert recent[0]["path"] == "/api/vm/frobnicate/"


async def test_faults_latency_and_config(
    call: Call, api: httpx.AsyncClient, admin: httpx.AsyncClient,
) -> None:
    rule = await admin.post("/faults", json={"route": "vm/create", "status": 503, "count": 1})
    assert rule.status_code == 201
    response = await api.post("/vm/create/", data=lunanode_form(
        "vm", "create", {"hostname": "f", "plan_id": "87", "image_id": "630902"}))
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.json() == {"success": "no", "error": "Injected fault (503)"}
    # Only vm/create was targeted, and only once.
    assert (await call("vm", "list"))["success"] == "yes"
    assert (await call("vm", "create", {"hostname": "f", "plan_id": "87",
                                        "image_id": "630902"}))["success"] == "yes"
    await admin.post("/faults", json={"path": "/api/plan/*", "kind": "drop", "count": 1})
    with pytest.raises(httpx.RemoteProtocolError):
        await api.post("/plan/list/", data=lunanode_form("plan", "list"))
    await admin.post("/faults", json={"route": "/api/region/list/", "status": 500,
                                      "body": "<html>oops</html>", "content_type": "text/html"})
    html = await api.post("/region/list/", data=lunanode_form("region", "list"))
    assert html.status_code == 500 and html.text == "<html>oops</html>"
    await admin.delete("/faults")
    await admin.put("/config", json={"latency_ms": 150})
    started = time.monotonic()
    assert (await call("plan", "list"))["success"] == "yes"
    assert time.monotonic() - started >= 0.14
    bad = await admin.put("/config", json={"build_delay": -1})
    assert bad.status_code == 400
    assert (await admin.put("/config", json={"no_such_knob": 1})).status_code == 400
    config = (await admin.get("/config")).json()
    for knob in ("build_delay", "boot_delay", "stop_delay", "reboot_delay", "reimage_delay",
                 "resize_delay", "rescue_delay", "shelve_delay", "delete_delay",
                 "snapshot_delay", "fail_next_builds", "fail_next_snapshots", "vm_limit",
                 "nonce_tolerance", "nonce_must_increase"):
        assert knob in config


async def test_rate_limit_when_enabled(call: Call, admin: httpx.AsyncClient,
                                       api: httpx.AsyncClient) -> None:
    await admin.put("/config", json={"rate_limit": 2, "time_scale": 1.0})
    assert (await call("plan", "list"))["success"] == "yes"
    assert (await call("plan", "list"))["success"] == "yes"
    limited = await api.post("/plan/list/", data=lunanode_form("plan", "list"))
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    assert limited.json()["success"] == "no"
