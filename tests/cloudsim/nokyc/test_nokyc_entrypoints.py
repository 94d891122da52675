"""``python -m cloudsim nokyc ...`` as a subprocess, running_simulator("nokyc") and the
package exports."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import pytest

import cloudsim
from cloudsim.testing import (
    NOKYC_BILLING_TOKEN,
    NOKYC_READ_TOKEN,
    NOKYC_TOKEN,
    nokyc_ssh_public_key,
    running_simulator,
    sample_server_request,
    simulator_process,
)

OTHER = "nkv_live_" + "q" * 52


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cloudsim", "nokyc", *args], check=False,
                          capture_output=True, text=True, timeout=30)


def test_cli_help() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for flag in ("--token", "--port", "--time-scale", "--rate-limit", "--set",
                 "--allow-http-webhooks", "--webhook-ca-file"):
        assert flag in result.stdout
    top = subprocess.run([sys.executable, "-m", "cloudsim", "--help"], check=False,
                         capture_output=True, text=True, timeout=30)
    assert "nokyc" in top.stdout


def test_cli_subprocess_starts_and_answers() -> None:
    args = ["--token", f"{NOKYC_READ_TOKEN}:read", "--token", f"{NOKYC_BILLING_TOKEN}:billing",
            "--time-scale", "30", "--set", "install_delay=0.5", "--set", "provision_delay=0.5",
            "--allow-http-webhooks"]
    with simulator_process("nokyc", args=args) as proc, httpx.Client(timeout=5.0) as client:
        assert proc.url.endswith("/v1") and proc.admin_url.endswith("/_sim")
        write = {"Authorization": f"Bearer {NOKYC_TOKEN}"}
        regions = client.get(f"{proc.url}/regions", headers=write)
        assert regions.status_code == 200 and regions.headers["X-RateLimit-Limit"] == "60"
        assert client.get(f"{proc.url}/regions").status_code == 401
        read = {"Authorization": f"Bearer {NOKYC_READ_TOKEN}"}
        assert client.post(f"{proc.url}/ssh-keys", headers=read, json={}).status_code == 403
        billing = {"Authorization": f"Bearer {NOKYC_BILLING_TOKEN}"}
        assert client.get(f"{proc.url}/billing/balance", headers=billing).status_code == 200
        assert client.get(f"{proc.url}/billing/balance", headers=write).status_code == 403
        key = client.post(f"{proc.url}/ssh-keys", headers=write,
                          json={"name": "k", "public_key": nokyc_ssh_public_key()}).json()
        created = client.post(f"{proc.url}/servers", headers=write,
                              json=sample_server_request(key["id"]))
        assert created.status_code == 201 and created.headers["X-RateLimit-Limit"] == "200"
        config = client.get(f"{proc.admin_url}/config").json()
        assert config["provider"] == "nokyc" and config["time_scale"] == 30
        assert config["install_delay"] == 0.5 and config["allow_http_webhooks"] is True
        proc.process.send_signal(signal.SIGTERM)
        assert proc.process.wait(timeout=10) == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "--token"),
        (["--token", "nkv_live_short"], "nkv_live_"),
        (["--token", f"{OTHER}:admin"], "scope"),
        (["--token", OTHER, "--set", "nope=1"], "nope"),
        (["--token", OTHER, "--set", "install_delay=-1"], "install_delay"),
    ],
)
def test_cli_rejects_bad_arguments(args: list[str], needle: str) -> None:
    result = _run(*args)
    assert result.returncode == 2 and needle in result.stderr


def test_running_simulator_in_a_thread() -> None:
    with running_simulator(
        "nokyc", tokens={OTHER: "read"}, api_key=NOKYC_TOKEN, time_scale=100.0,
        settings={"provision_delay": 1},
    ) as running, httpx.Client(timeout=5.0) as client:
        assert running.url.endswith("/v1")
        assert running.port == int(running.url.rsplit(":", 1)[1].split("/")[0])
        config = client.get(f"{running.admin_url}/config").json()
        assert config["time_scale"] == 100 and config["provision_delay"] == 1
        write = {"Authorization": f"Bearer {NOKYC_TOKEN}"}
        assert client.post(f"{running.url}/ssh-keys", headers=write, json={
            "name": "k", "public_key": nokyc_ssh_public_key()}).status_code == 201
        read = {"Authorization": f"Bearer {OTHER}"}
        assert client.get(f"{running.url}/ssh-keys", headers=read).status_code == 200
        assert client.post(f"{running.url}/ssh-keys", headers=read, json={}).status_code == 403
        assert running.call(lambda: len(running.simulator.engine.ssh_keys)) == 1  # type: ignore[attr-defined]
    with pytest.raises(httpx.ConnectError), httpx.Client(timeout=2.0) as client:
        client.get(f"{running.url}/regions")


def test_running_simulator_default_tokens() -> None:
    with running_simulator("nokyc") as running, httpx.Client(timeout=5.0) as client:
        for token in (NOKYC_TOKEN, NOKYC_READ_TOKEN, NOKYC_BILLING_TOKEN):
            response = client.get(f"{running.url}/plans",
                                  headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200
        # The defaults are the provider's: rate limits on, real time.
        config = client.get(f"{running.admin_url}/config").json()
        assert config["rate_limit"] == 60 and config["time_scale"] == 1


def test_exports() -> None:
    assert cloudsim.PROVIDERS["nokyc"] is cloudsim.NoKycSimulator
    assert "NoKycSimulator" in cloudsim.__all__
    with pytest.raises(ValueError):
        cloudsim.NoKycSimulator({OTHER: "write"}, settings={"no_such_knob": 1})


def test_every_knob_and_admin_endpoint_is_documented() -> None:
    from cloudsim.nokyc import simulator

    doc = simulator.__doc__ or ""
    sim = cloudsim.NoKycSimulator({OTHER: "write"})
    for knob in sim.config():
        if knob not in ("provider", "public_url"):
            assert f"``{knob}``" in doc, knob
    for resource in sim.app.router.resources():
        path = resource.canonical
        if path.startswith("/_sim/") and not any(
            path.startswith(f"/_sim/{common}") for common in
            ("health", "config", "faults", "stats", "requests")
        ):
            documented = path.replace("{serverId}", "{id}")
            assert documented in doc, path
