"""Contract tests: the real Krova client over real HTTP against the Krova simulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from cloudsim.testing import RunningSimulator, running_simulator
from cube_operator.providers.krova import (
    CreateCubeRequest,
    KrovaClient,
    Resources,
)

API_KEY = "kro_contract_3b1f9e2a7c5d4e6f8a0b"
SPACE_ID = "sp_contract"
# 60 simulated seconds per real second: a 60 s rate-limit window lasts 1 s, a boot 33 ms.
TIME_SCALE = 60.0
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIContractTestKey contract@test"

T = TypeVar("T")


class Admin:
    """The simulator's admin API (``/_sim``)."""

    def __init__(self, admin_url: str) -> None:
        self._http = httpx.AsyncClient(base_url=admin_url.rstrip("/") + "/", timeout=10.0)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def config(self, **changes: Any) -> dict[str, Any]:
        response = await self._http.put("config", json=changes)
        response.raise_for_status()
        return response.json()

    async def fault(self, **rule: Any) -> dict[str, Any]:
        response = await self._http.post("faults", json=rule)
        response.raise_for_status()
        return response.json()["fault"]

    async def force_state(self, cube_id: str, state: str) -> None:
        """Change a Cube's state out of band, as the platform would."""
        response = await self._http.post(f"cubes/{cube_id}/state", json={"state": state})
        response.raise_for_status()

    async def stats(self) -> list[dict[str, Any]]:
        response = await self._http.get("stats")
        response.raise_for_status()
        return response.json()["requests"]

    async def reset_stats(self) -> None:
        (await self._http.delete("stats")).raise_for_status()

    async def count(self, method: str, route: str, status: int | str | None = None) -> int:
        """Requests seen for ``method`` + route template (relative to /api/v1)."""
        total = 0
        for row in await self.stats():
            if row["method"] != method or row["route"] not in (route, "/api/v1" + route):
                continue
            if status is None or row["status"] == status:
                total += row["count"]
        return total

    async def statuses(self) -> list[int | str]:
        return [row["status"] for row in await self.stats() for _ in range(row["count"])]


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    """A fresh Krova simulator per test, in its own thread and event loop."""
    with running_simulator(
        "krova",
        api_key=API_KEY,
        space_id=SPACE_ID,
        time_scale=TIME_SCALE,
        validate_responses=True,
    ) as server:
        yield server


@pytest.fixture
async def admin(sim: RunningSimulator) -> AsyncIterator[Admin]:
    client = Admin(sim.admin_url)
    yield client
    await client.aclose()


@pytest.fixture
async def make_client(sim: RunningSimulator) -> AsyncIterator[Callable[..., KrovaClient]]:
    """Clients against this test's simulator (closed afterwards)."""
    created: list[KrovaClient] = []

    def factory(**overrides: Any) -> KrovaClient:
        kwargs: dict[str, Any] = {
            "api_key": API_KEY,
            "space_id": SPACE_ID,
            "endpoint": sim.url,
            # Krova's 10 per 60 s, time-scaled like the simulator.
            "rate_limit": 10,
            "rate_period": 60.0 / TIME_SCALE,
            "timeout": 5.0,
        }
        kwargs.update(overrides)
        client = KrovaClient(**kwargs)
        created.append(client)
        return client

    yield factory
    for client in created:
        await client.aclose()


@pytest.fixture
def client(make_client: Callable[..., KrovaClient]) -> KrovaClient:
    return make_client()


@pytest.fixture
def api_key() -> str:
    return API_KEY


@pytest.fixture
def new_cube() -> Callable[..., CreateCubeRequest]:
    return cube_request


@pytest.fixture
def wait_for() -> Callable[..., Awaitable[Any]]:
    return eventually


def cube_request(name: str = "web-1", **overrides: Any) -> CreateCubeRequest:
    fields: dict[str, Any] = {
        "name": name,
        "image": "ubuntu-24.04",
        "resources": Resources(vcpu=1, ram_gb=1, disk_gb=10),
        "ssh_public_key": SSH_KEY,
        "region": "eu-nuremberg",
    }
    fields.update(overrides)
    return CreateCubeRequest(**fields)


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    *,
    timeout: float = 10.0,
    interval: float = 0.03,
) -> T:
    """Poll ``probe`` until ``accept`` holds; fail after ``timeout`` real seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)
