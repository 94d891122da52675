"""``python -m cloudsim cyberpanel`` as a subprocess, running_simulator("cyberpanel"),
the package exports and the admin API's config and stats."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import pytest

import cloudsim
from cloudsim import cli
from cloudsim.testing import (
    CYBERPANEL_API_KEY,
    cyberpanel_key,
    running_simulator,
    sample_vps_request,
    simulator_process,
)

from .conftest import MakeVps


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cloudsim", "cyberpanel", *args],
                          check=False, capture_output=True, text=True, timeout=30)


def test_cli_help() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for flag in ("--api-key", "--balance", "--port", "--time-scale", "--latency-ms",
                 "--rate-limit", "--public-url", "--set", "--host"):
        assert flag in result.stdout
    top = subprocess.run([sys.executable, "-m", "cloudsim", "--help"], check=False,
                         capture_output=True, text=True, timeout=30)
    assert "cyberpanel" in top.stdout


@pytest.mark.parametrize("args, complaint", [
    ((), "--api-key"),  # required
    (("--api-key", "cyp_live_" + "A" * 64), "cyp_live_"),
    (("--api-key", "kro_test_key"), "cyp_live_"),
    (("--api-key", f"{CYBERPANEL_API_KEY}:vps:everything"), "scope"),
    (("--api-key", CYBERPANEL_API_KEY, "--set", "nope=1"), "nope"),
    (("--api-key", CYBERPANEL_API_KEY, "--balance", "lots"), "balance"),
])
def test_cli_refusals(args: tuple[str, ...], complaint: str,
                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["cyberpanel", *args])
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err


def test_cli_subprocess() -> None:
    reader = cyberpanel_key()
    args = ["--time-scale", "50", "--set", "deploy_delay=5", "--balance", "42.50",
            "--api-key", f"{reader}:vps:read,account:read", "--rate-limit", "30"]
    with simulator_process("cyberpanel", args=args) as proc, httpx.Client(timeout=5.0) as client:
        assert proc.url.endswith("/api/v1") and proc.admin_url.endswith("/_sim")
        health = client.get(f"{proc.url}/health")
        assert health.status_code == 200 and health.json()["data"]["status"] == "healthy"
        auth = {"Authorization": f"Bearer {CYBERPANEL_API_KEY}"}
        test = client.get(f"{proc.url}/test", headers=auth).json()["data"]
        assert test["scopes"] == ["all"]
        created = client.post(f"{proc.url}/vps/create", headers=auth, json=sample_vps_request())
        assert created.status_code == 201
        assert created.headers["X-RateLimit-Limit"] == "30"
        read = {"Authorization": f"Bearer {reader}"}
        assert client.get(f"{proc.url}/test", headers=read).json()["data"]["scopes"] == \
            ["vps:read", "account:read"]
        assert client.get(f"{proc.url}/account", headers=read).json()["data"]["balance"] == \
            "42.50"
        assert client.post(f"{proc.url}/vps/create", headers=read,
                           json=sample_vps_request()).status_code == 403
        config = client.get(f"{proc.admin_url}/config").json()
        assert config["provider"] == "cyberpanel" and config["time_scale"] == 50
        assert config["deploy_delay"] == 5 and config["rate_limit"] == 30
        proc.process.send_signal(signal.SIGTERM)
        assert proc.process.wait(timeout=10) == 0


def test_running_simulator_in_a_thread() -> None:
    with running_simulator("cyberpanel", time_scale=100.0, rate_limit=0,
                           settings={"deploy_delay": 1}) as running, \
            httpx.Client(timeout=5.0) as client:
        assert running.url.endswith("/api/v1")
        auth = {"Authorization": f"Bearer {CYBERPANEL_API_KEY}"}
        created = client.post(f"{running.url}/vps/create", headers=auth,
                              json=sample_vps_request())
        assert created.status_code == 201
        assert running.call(lambda: len(running.simulator.engine.vps)) == 1  # type: ignore[attr-defined]
        assert client.get(f"{running.admin_url}/config").json()["deploy_delay"] == 1
    other = cyberpanel_key()
    with running_simulator("cyberpanel", api_key=other) as running, \
            httpx.Client(timeout=5.0) as client:
        ok = client.get(f"{running.url}/vps", headers={"Authorization": f"Bearer {other}"})
        assert ok.status_code == 200 and ok.headers["X-RateLimit-Limit"] == "60"
    with pytest.raises(ValueError), running_simulator("cyberpanel", api_key="nope"):
        pass
    with pytest.raises(ValueError), running_simulator("cyberpanel",
                                                      settings={"stop_delay": -1}):
        pass


def test_package_exports() -> None:
    assert cloudsim.PROVIDERS["cyberpanel"] is cloudsim.CyberPanelSimulator
    assert cloudsim.CyberPanelSimulator.provider == "cyberpanel"
    assert "CyberPanelSimulator" in cloudsim.__all__ and "CyberPanelSettings" in cloudsim.__all__
    for name in ("krova", "nokyc", "lunanode", "voltagepark"):
        assert name in cloudsim.PROVIDERS


async def test_stats_routes_and_config(api: httpx.AsyncClient, admin: httpx.AsyncClient,
                                       make_vps: MakeVps) -> None:
    vps_id = await make_vps(wait=None)
    await make_vps(wait=None)
    await api.get(f"/vps/{vps_id}")
    await api.get("/vps/summary")
    await api.post(f"/vps/{vps_id}/delete")
    await api.post(f"/vps/{vps_id}/delete")
    stats = (await admin.get("/stats")).json()
    counts = {(r["method"], r["route"], r["status"]): r["count"] for r in stats["requests"]}
    assert counts[("POST", "/api/v1/vps/create", 201)] == 2
    assert counts[("GET", "/api/v1/vps/{id}", 200)] == 1
    assert counts[("GET", "/api/v1/vps/summary", 200)] == 1
    assert counts[("POST", "/api/v1/vps/{id}/delete", 200)] == 1
    assert counts[("POST", "/api/v1/vps/{id}/delete", 400)] == 1
    config = (await admin.get("/config")).json()
    for knob in ("deploy_delay", "start_delay", "stop_delay", "restart_delay",
                 "fail_next_deployments", "fail_at_task", "billing_interval",
                 "rate_limit_per_hour", "max_snapshots", "webhook_timeout", "webhook_retries",
                 "webhook_retry_delay", "tick_interval", "rate_limit", "time_scale"):
        assert knob in config
    assert (await admin.put("/config", json={"deploy_delay": -1})).status_code == 400
    assert (await admin.put("/config", json={"fail_next_deployments": 1.5})).status_code == 400
    assert (await admin.put("/config", json={"bogus": 1})).status_code == 400
    state = (await admin.get("/vps")).json()["vps"]
    assert [v["id"] for v in state] == [vps_id, vps_id + 1] and state[0]["deleted"] is True
