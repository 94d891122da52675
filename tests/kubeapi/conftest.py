"""Fixtures for the kubeapi emulator tests: one emulator per module, run in a thread."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from kubeapi.testing import RunningEmulator, running_emulator, widget_crd


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    with running_emulator(tmp_path_factory.mktemp("kubeapi"), bookmark_interval=0.3) as emu:
        yield emu


@pytest.fixture(scope="module")
def api(emulator: RunningEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, timeout=10,
                      headers={"Authorization": "Bearer anything"}) as client:
        yield client


@pytest.fixture(scope="module")
def widgets(api: httpx.Client) -> str:
    """Registers the example Widget CRD; returns the namespaced collection URL prefix."""
    r = api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=widget_crd())
    assert r.status_code == 201, r.text
    return "/apis/example.test/v1/namespaces"
