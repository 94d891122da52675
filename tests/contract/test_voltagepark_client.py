"""The Voltage Park client against the Voltage Park simulator over real HTTP: every call
the operator makes, both auth headers, offset paging, FastAPI's 422 naming the field,
presets and capacity, cloud-init, tags that find an earlier create."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from cloudsim.testing import RunningSimulator, running_simulator
from cube_operator.providers import (
    CreateAttempt,
    Gpus,
    Invalid,
    NoCapacity,
    NotFound,
    Resources,
    SpecRejected,
    Unauthorized,
    VMSpec,
    VMState,
)
from cube_operator.providers.voltagepark import (
    VoltageParkClient,
    VoltageParkProvider,
    cloud_init_of,
)
from support.contract import admin, until

pytestmark = pytest.mark.timeout(120)

KEY = "vp_contract_" + "0123456789abcdef"
TIME_SCALE = 60.0
SEATTLE = "26346157-1375-56f1-9d71-b420a83b1849"
SSH = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIContractVoltagePark contract@test"


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with running_simulator("voltagepark", api_key=KEY, time_scale=TIME_SCALE) as server:
        yield server


@pytest.fixture
async def client(sim: RunningSimulator) -> AsyncIterator[VoltageParkClient]:
    made = VoltageParkClient(api_key=KEY, endpoint=sim.url, page_size=2)
    yield made
    await made.aclose()


@pytest.fixture
def provider(client: VoltageParkClient) -> VoltageParkProvider:
    return VoltageParkProvider(client)


def spec(name: str, **kw: Any) -> VMSpec:
    base: dict[str, Any] = {"name": name, "image": "Ubuntu 22.04 LTS", "region": SEATTLE,
                            "resources": Resources(4, 16, 40), "gpus": Gpus("h100-sxm5-80gb", 1),
                            "ssh_public_key": SSH}
    base.update(kw)
    return VMSpec(**base)






async def test_both_auth_headers_are_used_and_a_wrong_key_refused(sim: RunningSimulator,
                                                                 provider: VoltageParkProvider) -> None:
    await provider.check_credentials()  # Bearer for VMs, x-api-token for the organization
    async with VoltageParkClient(api_key="vp_wrong", endpoint=sim.url) as stranger:
        with pytest.raises(Unauthorized):
            await stranger.list_vms()
        with pytest.raises(Unauthorized):
            await stranger.organization_ssh_keys()
    rows = (await admin(sim, "GET", "/stats")).json()["requests"]
    assert any(r["route"].endswith("/organization/ssh-keys") and r["status"] == 200 for r in rows)


async def test_create_is_tagged_found_powered_and_deleted(provider: VoltageParkProvider) -> None:
    uid = str(uuid.uuid4())
    attempt = CreateAttempt(uid)
    vm = await provider.create_vm(spec("gpu-1"), attempt)
    assert vm.owner_uid == uid and vm.gpus == (Gpus("h100-sxm5-80gb", 1),)
    assert [v.id for v in await provider.find_vms("gpu-1", attempt)] == [vm.id]
    assert await provider.find_vms("gpu-1", CreateAttempt(str(uuid.uuid4()))) == []
    running = await until(lambda: provider.get_vm(vm.id), lambda v: v.state is VMState.RUNNING)
    assert running.public_ipv4 and running.ssh_forward and running.ssh_forward.host_port
    associated = running.cost_per_hour
    await provider.set_power(vm.id, False)
    stopped = await until(lambda: provider.get_vm(vm.id), lambda v: v.state is VMState.STOPPED)
    assert stopped.cost_per_hour == associated  # a plain stop bills like running
    await provider.set_power(vm.id, True)
    await until(lambda: provider.get_vm(vm.id), lambda v: v.state is VMState.RUNNING)
    provider.stop_mode = "Disassociated"
    await provider.set_power(vm.id, False)
    cheap = await until(lambda: provider.get_vm(vm.id), lambda v: v.provider_state == "StoppedDisassociated")
    assert cheap.state is VMState.STOPPED and cheap.cost_per_hour is not None and associated is not None
    assert cheap.cost_per_hour < associated
    await provider.set_power(vm.id, True)
    await until(lambda: provider.get_vm(vm.id), lambda v: v.state is VMState.RUNNING)
    await provider.delete_vm(vm.id)
    await until(provider.list_vms, lambda vms: vm.id not in {v.id for v in vms})
    with pytest.raises(NotFound):
        await provider.get_vm(vm.id)


async def test_paging_walks_every_page(provider: VoltageParkProvider) -> None:
    made = [await provider.create_vm(spec(f"page-{i}"), CreateAttempt(str(uuid.uuid4()))) for i in range(5)]
    listed = await provider.list_vms()  # page_size=2: three pages
    assert {v.id for v in made} <= {v.id for v in listed} and len(listed) == len({v.id for v in listed})


async def test_fastapi_422_names_the_field(client: VoltageParkClient) -> None:
    with pytest.raises(Invalid) as info:
        await client.create_instant({"config_id": str(uuid.uuid4()), "name": "x", "password": "short"})
    assert info.value.status == 422 and info.value.message.startswith("password:")


async def test_presets_capacity_and_choice(sim: RunningSimulator, provider: VoltageParkProvider) -> None:
    with pytest.raises(SpecRejected) as wrong_os:
        await provider.create_vm(spec("os", image="Windows 11"), CreateAttempt("u"))
    assert "Ubuntu 22.04 LTS" in wrong_os.value.message
    with pytest.raises(SpecRejected) as no_preset:
        await provider.create_vm(spec("big", gpus=Gpus("h100-sxm5-80gb", 3)), CreateAttempt("u"))
    assert "spec.gpus" in no_preset.value.message
    await admin(sim, "PUT", f"/locations/{SEATTLE}/capacity", json={"gpus": 0})
    with pytest.raises(NoCapacity):
        await provider.create_vm(spec("sold-out"), CreateAttempt("u"))
    await admin(sim, "PUT", f"/locations/{SEATTLE}/capacity", json={"gpus": 8})
    assert (await provider.create_vm(spec("back"), CreateAttempt(str(uuid.uuid4())))).id


async def test_cloud_init_is_converted_and_validated(provider: VoltageParkProvider) -> None:
    assert cloud_init_of("#cloud-config\npackages: [nginx]\nruncmd: [echo hi]\n") == {
        "packages": ["nginx"], "runcmd": ["echo hi"]}
    with pytest.raises(SpecRejected) as extra:
        cloud_init_of("#cloud-config\nusers: [ops]\n")
    assert "users" in extra.value.message
    assert await provider.client.validate_cloud_init({"packages": ["nginx"]}) is None
    vm = await provider.create_vm(spec("init", user_data="#cloud-config\npackages: [nginx]\n"),
                                  CreateAttempt(str(uuid.uuid4())))
    assert vm.id


async def test_a_429_becomes_a_wait() -> None:
    with running_simulator("voltagepark", api_key=KEY, time_scale=TIME_SCALE, rate_limit=5) as sim:
        async with VoltageParkClient(api_key=KEY, endpoint=sim.url) as greedy:
            listed = await asyncio.gather(*(greedy.list_vms() for _ in range(12)))
        assert len(listed) == 12
        rows = (await admin(sim, "GET", "/stats")).json()["requests"]
        assert any(r["status"] == 429 for r in rows), "the limit was never reached"
