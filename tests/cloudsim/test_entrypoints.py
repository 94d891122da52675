"""``python -m cloudsim krova ...`` as a subprocess, and the background-thread helper."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx
import pytest

from cloudsim.testing import running_simulator, sample_cube_request, simulator_process


def test_cli_subprocess_starts_and_answers() -> None:
    args = ["--api-key", "kro_two:sp_two", "--api-key", "kro_ro:sp_main:view",
            "--time-scale", "30", "--rate-limit", "2", "--set", "provision_delay=0.5"]
    with simulator_process(
        "krova", api_key="kro_main", space_id="sp_main", args=args
    ) as proc, httpx.Client(timeout=5.0) as client:
        assert proc.url.endswith("/api/v1")
        assert client.get(f"{proc.url}/regions").status_code == 200
        main = {"X-API-KEY": "kro_main"}
        assert client.get(f"{proc.url}/space", headers=main).json()["id"] == "sp_main"
        two = {"X-API-KEY": "kro_two"}
        assert client.get(f"{proc.url}/space", headers=two).json()["id"] == "sp_two"
        assert client.get(f"{proc.url}/spaces/sp_main/cubes", headers=two).status_code == 403
        readonly = client.post(
            f"{proc.url}/spaces/sp_main/cubes", headers={"X-API-KEY": "kro_ro"},
            json=sample_cube_request(),
        )
        assert readonly.status_code == 403
        config = client.get(f"{proc.admin_url}/config").json()
        assert config["time_scale"] == 30 and config["rate_limit"] == 2
        assert config["provision_delay"] == 0.5
        proc.process.send_signal(signal.SIGTERM)
        assert proc.process.wait(timeout=10) == 0


def test_cli_rejects_bad_arguments() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cloudsim", "krova", "--api-key", "kro_nospace"],
        check=False, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2 and "--space-id" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "cloudsim", "krova", "--api-key", "k:s", "--set", "nope=1"],
        check=False, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2 and "nope" in result.stderr


def test_running_simulator_in_a_thread() -> None:
    with running_simulator(
        "krova", api_key="kro_t", space_id="sp_t", time_scale=100.0
    ) as running, httpx.Client(timeout=5.0) as client:
        assert running.url.endswith("/api/v1") and running.admin_url.endswith("/_sim")
        response = client.post(
            f"{running.url}/spaces/sp_t/cubes", headers={"X-API-KEY": "kro_t"},
            json=sample_cube_request(),
        )
        assert response.status_code == 201
        assert response.headers["X-RateLimit-Limit"] == "10"
        assert running.call(lambda: len(running.simulator.engine.cubes)) == 1  # type: ignore[attr-defined]
    with pytest.raises(httpx.ConnectError), httpx.Client(timeout=2.0) as client:
        client.get(f"{running.url}/regions")
    with pytest.raises(ValueError), running_simulator("no-such-provider"):
        pass


def _signature_knob(args: list[str]) -> str:
    with simulator_process("krova", args=args) as proc, httpx.Client(timeout=5.0) as client:
        value: str = client.get(f"{proc.admin_url}/config").json()["webhook_signature"]
        proc.process.send_signal(signal.SIGTERM)
        assert proc.process.wait(timeout=10) == 0
    return value


def test_cli_webhook_signature_flag() -> None:
    assert _signature_knob([]) == "sha256"
    assert _signature_knob(["--webhook-signature", "v1"]) == "v1"
    assert _signature_knob(["--set", "webhook_signature=v1"]) == "v1"
    # The dedicated flag wins over --set.
    assert _signature_knob(["--set", "webhook_signature=v1", "--webhook-signature", "sha256"]) == (
        "sha256"
    )
    result = subprocess.run(
        [sys.executable, "-m", "cloudsim", "krova", "--api-key", "k:s",
         "--webhook-signature", "md5"],
        check=False, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2 and "--webhook-signature" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "cloudsim", "krova", "--api-key", "k:s",
         "--set", "webhook_signature=md5"],
        check=False, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2 and "webhook_signature" in result.stderr


def test_cli_help_is_plain_text() -> None:
    """``python -m cloudsim --help`` reads as plain text: no reStructuredText markup."""
    result = subprocess.run([sys.executable, "-m", "cloudsim", "--help"], check=False,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    help_text = result.stdout
    assert "``" not in help_text and "::" not in help_text
    assert not re.search(r":[a-z]+:`", help_text)
    assert "--port 0 picks a free port" in " ".join(help_text.split())  # was ``--port 0``
    assert "cloudsim krova listening on http://HOST:PORT/api/v1 (admin http://HOST:PORT/_sim)" in help_text
    assert "python -m cloudsim krova --port 8081 --api-key kro_key --space-id sp_1 \\" in help_text
    assert max(len(line) for line in help_text.splitlines()) <= 100
    # The module docstring (what the code's readers see) keeps its markup.
    import cloudsim.cli

    assert "``--port 0``" in (cloudsim.cli.__doc__ or "")


def test_plain_text_drops_markup_and_keeps_command_blocks() -> None:
    from cloudsim.cli import plain_text

    doc = """Run ``x`` (see :class:`cloudsim.KrovaSimulator` and
    :func:`~cloudsim.testing.running_simulator`) like this::

        python -m cloudsim krova --port 0 \\\\
            --api-key ``k``

    Done."""
    assert plain_text(doc) == (
        "Run x (see cloudsim.KrovaSimulator and cloudsim.testing.running_simulator) like this:\n\n"
        "    python -m cloudsim krova --port 0 \\\\\n        --api-key k\n\nDone.")
