"""Secrets watched by name against the real emulator over HTTP: a change reaches the
listener within a second, and reads come from the watch, not a GET each."""
from __future__ import annotations

import asyncio
import base64
import os
import subprocess
from pathlib import Path

import pytest

from cube_operator.controllers._kube import Kube, NotFoundError, load_connection
from cube_operator.controllers._secretwatch import SecretWatches
from kubeapi.testing import running_emulator


def kubectl(env: dict[str, str], *args: str) -> None:
    subprocess.run(["kubectl", *args], env=env, check=True, capture_output=True, timeout=30)


async def until(predicate, timeout: float = 1.0) -> float:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not predicate():
        if loop.time() - started > timeout:
            raise AssertionError("not within the time allowed")
        await asyncio.sleep(0.02)
    return loop.time() - started


def value(secret: dict, key: str = "apiKey") -> str:  # type: ignore[type-arg]
    return base64.b64decode(secret["data"][key]).decode()


@pytest.fixture
def emulator(tmp_path: Path):  # type: ignore[no-untyped-def]
    with running_emulator(tmp_path) as emu:
        env = {**os.environ, "KUBECONFIG": str(emu.kubeconfig)}
        kubectl(env, "create", "secret", "generic", "creds", "--from-literal=apiKey=old")
        yield emu, env


async def test_a_change_reaches_the_listener_within_a_second_and_reads_need_no_get(emulator):  # type: ignore[no-untyped-def]
    emu, env = emulator
    kube = Kube(load_connection(str(emu.kubeconfig)))
    watches = SecretWatches(kube)
    heard: list[str] = []
    try:
        watches.listen("default", "creds", "providerconfigs/default/pc", lambda: heard.append("changed"))
        await until(lambda: ("default", "creds") in watches._cache)
        gets = sum(1 for r in emu.request_log if r.method == "GET" and r.name == "creds")
        assert gets >= 1  # the watch's own read
        for _ in range(20):
            assert value(await watches.get_secret("default", "creds")) == "old"
        assert sum(1 for r in emu.request_log if r.method == "GET" and r.name == "creds") == gets

        await asyncio.to_thread(kubectl, env, "patch", "secret", "creds", "-p",
                                '{"stringData":{"apiKey":"new"}}')
        took = await until(lambda: heard == ["changed"])
        assert took < 1.0
        assert value(await watches.get_secret("default", "creds")) == "new"

        await asyncio.to_thread(kubectl, env, "delete", "secret", "creds")
        await until(lambda: heard == ["changed", "changed"])
        with pytest.raises(NotFoundError):
            await watches.get_secret("default", "creds")

        # Nobody listens any more: no watch, and reads are plain GETs again.
        watches.forget("providerconfigs/default/pc")
        assert watches.watched() == set()
        with pytest.raises(NotFoundError):
            await watches.get_secret("default", "creds")
    finally:
        await watches.aclose()
        await kube.aclose()
