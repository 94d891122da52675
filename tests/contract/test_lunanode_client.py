"""The LunaNode client against the LunaNode simulator over real HTTP: every call the
operator makes, the signing (bad signature, wrong partial key), a missing parameter,
string-typed numbers, and the hostname that finds an earlier create."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import struct
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from cloudsim.testing import RunningSimulator, running_simulator
from cube_operator.providers import (
    CallKind,
    CreateAttempt,
    Invalid,
    NotFound,
    Resources,
    SpecRejected,
    Unauthorized,
    VMSpec,
    VMState,
)
from cube_operator.providers.lunanode import LunaNodeClient, LunaNodeProvider, signature, vm_name
from support.contract import until

pytestmark = pytest.mark.timeout(120)

API_ID = "contractid000016"
API_KEY = ("contractkey" + "0123456789abcdef" * 8)[:64] + ("fedcba9876543210" * 4)
TIME_SCALE = 60.0


def ssh_key(seed: str) -> str:
    def s(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b
    return "ssh-ed25519 " + base64.b64encode(s(b"ssh-ed25519") + s(hashlib.sha256(seed.encode()).digest())).decode()


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with running_simulator("lunanode", api_id=API_ID, api_key=API_KEY, time_scale=TIME_SCALE) as server:
        yield server


@pytest.fixture
async def client(sim: RunningSimulator) -> AsyncIterator[LunaNodeClient]:
    made = LunaNodeClient(api_id=API_ID, api_key=API_KEY, endpoint=sim.url)
    yield made
    await made.aclose()


@pytest.fixture
def provider(client: LunaNodeClient) -> LunaNodeProvider:
    return LunaNodeProvider(client, sweep_seconds=300.0)


async def count(sim: RunningSimulator, route: str) -> int:
    async with httpx.AsyncClient(base_url=sim.admin_url) as admin:
        rows = (await admin.get("/stats")).json()["requests"]
    return sum(r["count"] for r in rows if r["route"] == route)


def spec(name: str, **kw: Any) -> VMSpec:
    base: dict[str, Any] = {"name": name, "image": "Ubuntu 22.04 64-bit", "region": "toronto",
                            "resources": Resources(1, 1, 15), "ssh_public_key": ssh_key("contract")}
    base.update(kw)
    return VMSpec(**base)




async def test_every_call_is_signed_and_wrong_credentials_are_refused(sim: RunningSimulator) -> None:
    async with LunaNodeClient(api_id=API_ID, api_key=API_KEY, endpoint=sim.url) as good:
        assert await good.list_plans()
    wrong_half = API_KEY[64:] + API_KEY[:64]  # right characters, wrong partial key and HMAC key
    async with LunaNodeClient(api_id=API_ID, api_key=wrong_half, endpoint=sim.url) as bad:
        with pytest.raises(Unauthorized) as info:
            await bad.list_plans()
        assert "partialkey" in info.value.message and wrong_half not in str(info.value)
        assert wrong_half[:64] not in str(info.value)
    async with LunaNodeClient(api_id="x" * 16, api_key=API_KEY, endpoint=sim.url) as stranger:
        with pytest.raises(Unauthorized):
            await stranger.list_plans()


async def test_a_bad_signature_is_refused(sim: RunningSimulator) -> None:
    req = json.dumps({"api_id": API_ID, "api_partialkey": API_KEY[:64]})
    nonce = str(int(time.time()))
    async with httpx.AsyncClient(base_url=sim.url) as raw:
        good = await raw.post("/plan/list/", data={"req": req, "nonce": nonce,
                                                  "signature": signature(API_KEY, "plan/list/", req, nonce)})
        forged = await raw.post("/plan/list/", data={"req": req, "nonce": nonce,
                                                    "signature": signature(API_KEY, "vm/list/", req, nonce)})
    assert good.json()["success"] == "yes"
    assert forged.status_code == 200 and forged.json() == {"success": "no", "error": "invalid signature"}


async def test_a_missing_parameter_and_string_numbers(client: LunaNodeClient) -> None:
    with pytest.raises(Invalid) as info:
        await client.call("vm", "create", kind=CallKind.PROVISION, plan_id=1, image_id=1)
    assert info.value.message == "required parameter hostname not set"
    plans = await client.list_plans()
    assert plans and all(isinstance(p.plan_id, str) and p.plan_id.isdigit() for p in plans)
    with pytest.raises(NotFound) as missing:
        await client.vm_info("999999")
    assert "invalid vm" in missing.value.message


async def test_create_find_power_snapshot_reimage_delete(provider: LunaNodeProvider, sim: RunningSimulator) -> None:
    uid = str(uuid.uuid4())
    name = vm_name("lab", uid)
    assert name.endswith(uid) and len(name) <= 63
    attempt = CreateAttempt(uid)
    vm = await provider.create_vm(spec(name), attempt)
    assert vm.owner_uid == uid and vm.name == name and vm.cost_per_hour
    creates = await count(sim, "/api/vm/create/")
    assert [v.id for v in await provider.find_vms(name, attempt)] == [vm.id]
    assert await count(sim, "/api/vm/create/") == creates, "find created something"
    assert await provider.find_vms(vm_name("lab", str(uuid.uuid4())), CreateAttempt(str(uuid.uuid4()))) == []

    running = await until(lambda: provider.get_vm(vm.id), lambda v: v.state is VMState.RUNNING)
    assert running.public_ipv4 and running.private_ipv4 and running.provider_state == "Online"
    await provider.set_power(vm.id, False)
    await until(provider.list_vms, lambda vms: any(v.id == vm.id and v.state is VMState.STOPPED for v in vms))
    await provider.set_power(vm.id, True)
    await until(provider.list_vms, lambda vms: any(v.id == vm.id and v.state is VMState.RUNNING for v in vms))

    snap = await provider.create_snapshot(vm.id, "before", CreateAttempt(str(uuid.uuid4())))
    done = await until(lambda: provider.list_snapshots(vm.id),
                       lambda s: any(x.id == snap.id and x.state.value == "complete" for x in s))
    assert [s.name for s in done] == ["before"]
    await provider.restore_snapshot(vm.id, snap.id)
    await until(lambda: provider.get_vm(vm.id), lambda v: v.provider_state == "Rebuilding" or v.state is VMState.RUNNING)
    await until(lambda: provider.get_vm(vm.id), lambda v: v.state is VMState.RUNNING)
    await provider.delete_snapshot(vm.id, snap.id)
    provider._images_at = 0.0
    assert await provider.list_snapshots(vm.id) == []

    await provider.delete_vm(vm.id)
    await until(provider.list_vms, lambda vms: vm.id not in {v.id for v in vms})
    with pytest.raises(NotFound):
        await provider.delete_vm(vm.id)


async def test_observation_asks_vm_info_only_when_needed(provider: LunaNodeProvider, sim: RunningSimulator) -> None:
    vms = [await provider.create_vm(spec(vm_name(f"obs-{i}", str(uuid.uuid4()))), CreateAttempt(str(uuid.uuid4())))
           for i in range(3)]
    await until(provider.list_vms, lambda seen: all(v.state is VMState.RUNNING for v in seen if v.id in
                                                    {x.id for x in vms}))
    before = await count(sim, "/api/vm/info/")
    for _ in range(5):
        await provider.list_vms()
    assert await count(sim, "/api/vm/info/") == before, "settled VMs were asked again before the sweep"
    provider._next_info = dict.fromkeys(provider._next_info, 0.0)  # the sweep is due
    await provider.list_vms()
    assert await count(sim, "/api/vm/info/") == before + 3


async def test_one_ssh_key_and_plan_choice(provider: LunaNodeProvider) -> None:
    first = await provider.ssh_key_id(ssh_key("one"))
    provider._ssh_keys.clear()  # a restarted operator
    assert await provider.ssh_key_id(ssh_key("one")) == first
    assert len([k for k in await provider.client.list_ssh_keys() if k.id == first]) == 1
    with pytest.raises(SpecRejected) as huge:
        await provider.create_vm(spec("huge", resources=Resources(64, 512, 9000)), CreateAttempt("u"))
    assert "spec.resources" in huge.value.message and "m.16" in huge.value.message
    with pytest.raises(SpecRejected) as image:
        await provider.create_vm(spec("noimg", image="TempleOS"), CreateAttempt("u"))
    assert "spec.image" in image.value.message


async def test_tcp_exposure_is_allow_rules_in_the_vms_group(provider: LunaNodeProvider) -> None:
    vm = await provider.create_vm(spec(vm_name("fw", str(uuid.uuid4()))), CreateAttempt(str(uuid.uuid4())))
    await until(lambda: provider.get_vm(vm.id), lambda v: v.state is VMState.RUNNING)
    exposure = await provider.expose(vm.id, vm_port=5432, label="pg", allowed_cidrs=["10.0.0.0/8", "2001:db8::/32"],
                                     attempt=CreateAttempt("x"))
    assert exposure.allowed_cidrs == ("10.0.0.0/8", "2001:db8::/32") and exposure.host_port == 5432
    open_port = await provider.expose(vm.id, vm_port=80, label=None, allowed_cidrs=[], attempt=CreateAttempt("y"))
    assert open_port.allowed_cidrs == ()
    assert sorted(e.vm_port for e in await provider.list_exposures(vm.id)) == [80, 5432]
    await provider.unexpose(vm.id, exposure.id)
    assert [e.vm_port for e in await provider.list_exposures(vm.id)] == [80]
    groups = [g for g in await provider.client.list_groups() if g.name == f"cube-operator-{vm.id}"]
    assert len(groups) == 1


async def test_a_429_becomes_a_wait() -> None:
    # LunaNode documents no limit; the simulator's knob turns one on (5 per simulated minute).
    with running_simulator("lunanode", api_id=API_ID, api_key=API_KEY, time_scale=TIME_SCALE,
                           rate_limit=5) as sim:
        async with LunaNodeClient(api_id=API_ID, api_key=API_KEY, endpoint=sim.url) as greedy:
            plans = await asyncio.gather(*(greedy.list_plans() for _ in range(12)))
        assert all(plans)
        async with httpx.AsyncClient(base_url=sim.admin_url) as admin:
            rows = (await admin.get("/stats")).json()["requests"]
        assert any(r["status"] == 429 for r in rows), "the limit was never reached"
