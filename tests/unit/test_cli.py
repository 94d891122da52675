"""The command line: a version, and help that shows the defaults."""
from __future__ import annotations


def test_the_cli_has_a_version_and_shows_defaults() -> None:
    import subprocess
    import sys

    version = subprocess.run([sys.executable, "-m", "cube_operator.cli", "--version"], capture_output=True,
                             text=True, check=True, timeout=60).stdout
    assert version.startswith("cube-operator ") and version.split()[1][0].isdigit()
    run_help = subprocess.run([sys.executable, "-m", "cube_operator.cli", "run", "--help"], capture_output=True,
                              text=True, check=True, timeout=60).stdout
    assert "(default: 30.0)" in run_help and "--allow-endpoint" in run_help and "(default: None)" not in run_help
    dev_help = subprocess.run([sys.executable, "-m", "cube_operator.cli", "dev", "--help"], capture_output=True,
                              text=True, check=True, timeout=60).stdout
    assert "Kubernetes API emulator" in dev_help and "(default: krova)" in dev_help
