"""ProviderConfig reads against the real emulator over HTTP: however many objects ask at
once, one GET per ProviderConfig per CACHE_SECONDS; the controller's verdict is seen at once,
and after a change (its check() forgets the cached copy) the next read has the new spec."""
from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from cube_operator.api import KINDS
from cube_operator.api.crds import crd_for
from cube_operator.controllers._kube import Kube, load_connection
from cube_operator.controllers._sessions import SessionRegistry
from kubeapi.testing import running_emulator

PC = {"apiVersion": "cube-operator.io/v1alpha1", "kind": "ProviderConfig",
      "metadata": {"name": "krova", "namespace": "default"},
      "spec": {"provider": "krova", "credentialsSecretRef": {"name": "creds", "key": "apiKey"},
               "krova": {"spaceId": "sp_unit"}, "pollIntervalSeconds": 30}}


def kubectl(env: dict[str, str], *args: str, input: str | None = None) -> None:
    subprocess.run(["kubectl", *args], env=env, check=True, capture_output=True, timeout=30,
                   input=input, text=True)


@pytest.fixture
def emulator(tmp_path: Path):  # type: ignore[no-untyped-def]
    with running_emulator(tmp_path) as emu:
        env = {**os.environ, "KUBECONFIG": str(emu.kubeconfig)}
        kubectl(env, "apply", "-f", "-", input=yaml.safe_dump_all(
            [crd_for(info) for info in KINDS if info.plural == "providerconfigs"]))
        kubectl(env, "wait", "--for=condition=Established", "crd/providerconfigs.cube-operator.io")
        kubectl(env, "apply", "-f", "-", input=yaml.safe_dump(PC))
        yield emu, env


async def test_reads_are_one_get_and_a_change_is_seen_after_forget(emulator):  # type: ignore[no-untyped-def]
    emu, env = emulator
    kube = Kube(load_connection(str(emu.kubeconfig)))
    registry = SessionRegistry(kube, 30.0)

    def gets() -> int:  # ours (kubectl's own GETs of apply and patch left out)
        return sum(1 for r in emu.request_log
                   if r.method == "GET" and r.resource == "providerconfigs" and r.name == "krova"
                   and not r.user_agent.startswith("kubectl"))

    try:
        bodies = await asyncio.gather(*(registry.provider_config("default", "krova") for _ in range(50)))
        assert {b["spec"]["pollIntervalSeconds"] for b in bodies} == {30}
        assert gets() == 1  # fifty objects asking at once: one GET, the rest waited for it
        for _ in range(20):
            await registry.provider_config("default", "krova")
        assert gets() == 1

        # The controller's verdict is visible to every reader before its status patch lands.
        registry.note_status(bodies[0], {"conditions": [{"type": "Ready", "status": "True"}]})
        noted = await registry.provider_config("default", "krova")
        assert noted["status"]["conditions"][0]["status"] == "True"
        assert gets() == 1

        # A change: the ProviderConfig controller's check() forgets the cached copy first.
        await asyncio.to_thread(kubectl, env, "patch", "providerconfig", "krova", "--type", "merge",
                                "-p", '{"spec":{"pollIntervalSeconds":45}}')
        registry.forget("default", "krova")
        loop = asyncio.get_running_loop()
        started = loop.time()
        fresh = await registry.provider_config("default", "krova")
        assert loop.time() - started < 1.0
        assert fresh["spec"]["pollIntervalSeconds"] == 45
        assert gets() == 2
    finally:
        await kube.aclose()
