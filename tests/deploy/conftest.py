"""Shared fixtures of the deploy tests: the real helm (v4, in .tools/bin), lua5.4 and
kubectl binaries, the chart renderer, and deploy/sync.py loaded as a module.

The tools are installed by scripts/install-test-tools.sh when missing, so that
`pytest tests/deploy` works from a fresh clone. A tool that still cannot be found
fails the tests that need it (never skips them)."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy_helpers import (
    HELM,
    INSTALL_TOOLS,
    KUBECTL,
    ROOT,
    Obj,
    Renderer,
    load_all,
    run,
)


def _install_tools() -> None:
    subprocess.run(["bash", str(INSTALL_TOOLS)], check=True, timeout=600)


@pytest.fixture(scope="session")
def helm() -> Path:
    if not HELM.exists():
        _install_tools()
    assert HELM.exists(), f"{HELM} missing after {INSTALL_TOOLS}"
    return HELM


@pytest.fixture(scope="session")
def lua() -> str:
    if shutil.which("lua5.4") is None:
        _install_tools()
    path = shutil.which("lua5.4")
    assert path, "lua5.4 not found after scripts/install-test-tools.sh"
    return path


@pytest.fixture(scope="session")
def kubectl() -> str:
    assert os.access(KUBECTL, os.X_OK), f"{KUBECTL} is needed by the deploy tests"
    return KUBECTL


@pytest.fixture(scope="session")
def render(helm: Path) -> Renderer:
    return Renderer(helm)


@pytest.fixture(scope="session")
def sync_module(helm: Path) -> ModuleType:
    """deploy/sync.py, the generator of deploy/manifests, of the chart's crds/ and of the
    Argo CD files."""
    spec = importlib.util.spec_from_file_location("deploy_sync", ROOT / "deploy" / "sync.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["deploy_sync"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def kustomize(kubectl: str) -> Callable[[Path], list[Obj]]:
    def build(path: Path) -> list[Obj]:
        return load_all(run([kubectl, "kustomize", str(path)]).stdout)
    return build
